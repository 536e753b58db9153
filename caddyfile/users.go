package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/caddy-tokengate/module"
)

// parseUsers reads the users block of the tokengate global option.
func parseUsers(d *caddyfile.Dispenser) (*module.UsersConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	users := new(module.UsersConfig)
	seen := seenOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := seen.once(d); err != nil {
			return nil, err
		}
		var field *string
		switch d.Val() {
		case "jwt_secret":
			field = &users.JWTSecret
		case "jwks_url":
			field = &users.JWKSURL
		case "issuer":
			field = &users.Issuer
		case "audience":
			field = &users.Audience
		case "user_claim":
			field = &users.UserClaim
		case "cookie":
			field = &users.Cookie
		case "login_url":
			field = &users.LoginURL
		default:
			return nil, d.Errf("unrecognized users subdirective %q", d.Val())
		}
		v, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		*field = v
	}
	return users, nil
}
