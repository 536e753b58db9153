package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/caddy-tokengate/module"
)

// reservedClaims are the claims the guard sets itself in the upstream JWT;
// letting a claim line override one (sub above all) would let a config
// typo forge the caller's identity or the token's lifetime.
var reservedClaims = map[string]bool{
	"sub": true, "scope": true, "client_id": true, "exp": true,
	"iat": true, "iss": true, "aud": true, "nbf": true,
}

// parseUpstreamJWT reads the upstream_jwt block of the tokengate directive:
//
//	upstream_jwt {
//		secret   <secret>
//		ttl      <duration>
//		audience <aud>
//		claim    <name> <value>
//	}
//
// secret is required; claim may be repeated.
func parseUpstreamJWT(d *caddyfile.Dispenser) (*module.UpstreamJWT, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	cfg := new(module.UpstreamJWT)
	seen := seenOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if opt != "claim" {
			if err := seen.once(d); err != nil {
				return nil, err
			}
		}
		var err error
		switch opt {
		case "secret":
			cfg.Secret, err = oneArg(d)
		case "ttl":
			cfg.TTL, err = durationArg(d, false)
		case "audience":
			cfg.Audience, err = oneArg(d)
		case "claim":
			err = parseClaim(d, cfg)
		default:
			return nil, d.Errf("unrecognized upstream_jwt subdirective %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	if cfg.Secret == "" {
		return nil, d.Err("upstream_jwt needs a secret")
	}
	return cfg, nil
}

// parseClaim reads "claim <name> <value>" into cfg.
func parseClaim(d *caddyfile.Dispenser, cfg *module.UpstreamJWT) error {
	var name, value string
	if !d.Args(&name, &value) || d.NextArg() {
		return d.ArgErr()
	}
	if reservedClaims[name] {
		return d.Errf("upstream_jwt: claim %q is set by tokengate and cannot be overridden", name)
	}
	if _, dup := cfg.Claims[name]; dup {
		return d.Errf("upstream_jwt: claim %q is given more than once", name)
	}
	if cfg.Claims == nil {
		cfg.Claims = make(map[string]string)
	}
	cfg.Claims[name] = value
	return noBlock(d, "claim")
}
