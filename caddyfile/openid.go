package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/caddy-tokengate/module"
)

// parseOpenID reads the openid option, bare or with a block:
//
//	openid [{
//		signing_alg  RS256|ES256
//		id_token_ttl <duration>
//		key_rotation <duration>
//		claims       <claim...>
//	}]
//
// Each sub-option is given at most once.
func parseOpenID(d *caddyfile.Dispenser) (*module.OpenIDConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	o := new(module.OpenIDConfig)
	seen := seenOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := seen.once(d); err != nil {
			return nil, err
		}
		var err error
		switch opt := d.Val(); opt {
		case "signing_alg":
			if o.SigningAlg, err = oneArg(d); err == nil && o.SigningAlg != "RS256" && o.SigningAlg != "ES256" {
				err = d.Errf("signing_alg must be RS256 or ES256, not %q", o.SigningAlg)
			}
		case "id_token_ttl":
			o.IDTokenTTL, err = durationArg(d, false)
		case "key_rotation":
			o.KeyRotation, err = durationArg(d, false)
		case "claims":
			o.Claims, err = someArgs(d)
		default:
			err = d.Errf("unrecognized openid subdirective %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	return o, nil
}

// parseAccessTokenFormat reads "access_token_format opaque|jwt".
func parseAccessTokenFormat(d *caddyfile.Dispenser) (string, error) {
	v, err := oneArg(d)
	if err != nil {
		return "", err
	}
	if v != "opaque" && v != "jwt" {
		return "", d.Errf("access_token_format must be opaque or jwt, not %q", v)
	}
	return v, nil
}
