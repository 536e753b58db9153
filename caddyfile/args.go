package caddyfile

import (
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/tokengate/caddy-tokengate/module"
)

// seenOptions remembers the options a block has used. A repeated option is
// an error rather than "last one wins": in an auth config a second secret
// or TTL line is far more likely a paste mistake than an intent.
type seenOptions map[string]bool

// once fails if the option under the cursor was already used in this block.
func (s seenOptions) once(d *caddyfile.Dispenser) error {
	opt := d.Val()
	if s[opt] {
		return d.Errf("%s is given more than once", opt)
	}
	s[opt] = true
	return nil
}

// oneArg reads the single argument of the option under the cursor.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	opt := d.Val()
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, noBlock(d, opt)
}

// someArgs reads the one or more arguments of the option under the cursor.
func someArgs(d *caddyfile.Dispenser) ([]string, error) {
	opt := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.ArgErr()
	}
	return args, noBlock(d, opt)
}

// noArgs checks that the option under the cursor stands alone on its line.
func noArgs(d *caddyfile.Dispenser) error {
	opt := d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return noBlock(d, opt)
}

// noBlock refuses a block after an option that takes none; unchecked, its
// lines would be read as options of the enclosing block.
func noBlock(d *caddyfile.Dispenser, opt string) error {
	if d.NextBlock(d.Nesting()) {
		d.Prev() // report the line that opens the block
		return d.Errf("%s does not take a block", opt)
	}
	return nil
}

// durationArg reads a duration (caddy.ParseDuration, so "30d" works too).
// Zero is refused unless allowZero: in the JSON a zero lifetime means "use
// the default", so accepting "code_ttl 0" would silently mean 10m.
func durationArg(d *caddyfile.Dispenser, allowZero bool) (caddy.Duration, error) {
	opt := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("%s: invalid duration %q: %v", opt, v, err)
	}
	if dur < 0 {
		return 0, d.Errf("%s must not be negative, got %s", opt, v)
	}
	if dur == 0 && !allowZero {
		return 0, d.Errf("%s must be greater than zero", opt)
	}
	return caddy.Duration(dur), nil
}

// globalApp returns the app parsed from the tokengate global option, so a
// directive can be checked against it (declared scopes) at adapt time.
func globalApp(h httpcaddyfile.Helper, directive string) (*module.App, error) {
	opt, ok := h.Option("tokengate").(httpcaddyfile.App)
	if !ok {
		return nil, h.Errf("%s directive needs the tokengate global option block", directive)
	}
	app := new(module.App)
	if err := json.Unmarshal(opt.Value, app); err != nil {
		return nil, h.Errf("%s directive: reading the tokengate global options: %v", directive, err)
	}
	return app, nil
}

// positiveInt reads a count. Zero is refused because in the JSON it means
// "use the default".
func positiveInt(d *caddyfile.Dispenser) (int64, error) {
	opt := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, d.Errf("%s must be a positive integer, got %q", opt, v)
	}
	return n, nil
}
