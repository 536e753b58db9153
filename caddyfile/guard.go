package caddyfile

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/caddy-tokengate/module"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("tokengate", parseGuard)
	// With the authentication handlers, like basic_auth, so a site-wide
	// tokengate runs before reverse_proxy and no Caddyfile needs an order
	// line.
	httpcaddyfile.RegisterDirectiveOrder("tokengate", httpcaddyfile.After, "basic_auth")
}

// parseGuard sets up the guard handler. Syntax:
//
//	tokengate [<matcher>] [<scope>...] [{
//		<METHOD> <scope> [<scope>...]
//		*        <scope> [<scope>...]
//		resource <uri>
//		forward_authorization
//		upstream_jwt {
//			secret   <secret>
//			ttl      <duration>
//			audience <aud>
//			claim    <name> <value>
//		}
//	}]
//
// With no scope and no rule line any valid token passes. Scopes on the
// directive's line are the rule for every method (the same as a "*" line);
// they may be followed by a block of options, but not by rule lines, which
// would leave it unclear whether a method needs its line's scopes, the
// inline ones, or both. A METHOD is written in upper case, each at most
// once; "*" covers every method without a line of its own. resource names
// the protected resource (RFC 9728) whose metadata the site's
// tokengate_endpoints serve.
func parseGuard(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // consume directive name
	app, err := globalApp(h, "tokengate")
	if err != nil {
		return nil, err
	}
	guard := new(module.Guard)
	inline := h.RemainingArgs()
	if len(inline) > 0 {
		if err := app.ValidateScopes("tokengate directive", map[string][]string{"*": inline}); err != nil {
			return nil, h.WrapErr(err)
		}
		guard.Methods = map[string][]string{"*": inline}
	}
	seen := seenOptions{}
	for h.NextBlock(0) {
		switch h.Val() {
		case "resource":
			if err := seen.once(h.Dispenser); err != nil {
				return nil, err
			}
			if guard.Resource, err = oneArg(h.Dispenser); err != nil {
				return nil, err
			}
			if err := module.CheckResourceURI(guard.Resource); err != nil {
				return nil, h.Errf("%v", err)
			}
		case "forward_authorization":
			if err := seen.once(h.Dispenser); err != nil {
				return nil, err
			}
			if err := noArgs(h.Dispenser); err != nil {
				return nil, err
			}
			guard.ForwardAuthorization = true
		case "upstream_jwt":
			if err := seen.once(h.Dispenser); err != nil {
				return nil, err
			}
			if guard.UpstreamJWT, err = parseUpstreamJWT(h.Dispenser); err != nil {
				return nil, err
			}
		default:
			if err := parseRule(h.Dispenser, app, guard, len(inline) > 0); err != nil {
				return nil, err
			}
		}
	}
	// upstream_jwt replaces the Authorization header that
	// forward_authorization would keep; one of them would be ignored.
	if guard.ForwardAuthorization && guard.UpstreamJWT != nil {
		return nil, h.Err("forward_authorization and upstream_jwt cannot be used together: upstream_jwt replaces the Authorization header")
	}
	return guard, nil
}

// parseRule reads a "<METHOD> <scope> [<scope>...]" line into guard.
func parseRule(d *caddyfile.Dispenser, app *module.App, guard *module.Guard, inline bool) error {
	method, err := ruleMethod(d)
	if err != nil {
		return err
	}
	if inline {
		return d.Errf("the %s line cannot follow scopes given on the directive's line; write every rule in the block (a * line for the other methods)", method)
	}
	if _, dup := guard.Methods[method]; dup {
		return d.Errf("method %s is listed twice", method)
	}
	scopes, err := someArgs(d)
	if err != nil {
		return err
	}
	rule := map[string][]string{method: scopes}
	if err := app.ValidateScopes("tokengate directive", rule); err != nil {
		return d.WrapErr(err)
	}
	if guard.Methods == nil {
		guard.Methods = make(map[string][]string)
	}
	guard.Methods[method] = scopes
	return nil
}

// ruleMethod checks the method that starts a rule line. Methods are
// case-sensitive (RFC 9110 9.1) and the guard compares them as sent, so a
// "get" line would never match a browser's GET: refuse it here instead.
func ruleMethod(d *caddyfile.Dispenser) (string, error) {
	m := d.Val()
	if m == "*" || isUpperLetters(m) {
		return m, nil
	}
	upper := strings.ToUpper(m)
	if standardMethods[upper] {
		return "", d.Errf("method %q must be written in upper case: %s", m, upper)
	}
	if isUpperLetters(upper) {
		return "", d.Errf("unrecognized tokengate subdirective %q (an HTTP method is written in upper case)", m)
	}
	return "", d.Errf("unrecognized tokengate subdirective %q", m)
}

// standardMethods are the methods of RFC 9110 9.3 and RFC 5789, to tell a
// lower-case method from a misspelled option.
var standardMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

func isUpperLetters(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
