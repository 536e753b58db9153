package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/caddy-tokengate/module"
)

// parseClient reads "client <id> { ... }" and appends the client to app.
// Cross-field rules (a redirect URI is required for the code flow, pkce
// optional and client_credentials need a secret, scopes must be declared,
// grant types known) are App.Validate's, after the whole
// block is read, so that the order of lines does not matter.
func parseClient(d *caddyfile.Dispenser, app *module.App) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	c := module.ClientConfig{ID: d.Val()}
	if d.NextArg() {
		return d.ArgErr()
	}
	for _, other := range app.Clients {
		if other.ID == c.ID {
			return d.Errf("duplicate client %q", c.ID)
		}
	}
	seen := seenOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if opt != "redirect_uri" {
			if err := seen.once(d); err != nil {
				return err
			}
		}
		var err error
		switch opt {
		case "name":
			c.Name, err = oneArg(d)
		case "secret":
			c.Secret, err = oneArg(d)
		case "secret_hash":
			c.SecretHash, err = oneArg(d)
		case "redirect_uri":
			var uris []string
			uris, err = someArgs(d)
			c.RedirectURIs = append(c.RedirectURIs, uris...)
		case "scopes":
			c.Scopes, err = someArgs(d)
		case "grant_types":
			c.GrantTypes, err = someArgs(d)
		case "pkce":
			c.PKCE, err = oneArg(d)
			if err == nil && c.PKCE != "optional" && c.PKCE != "required" {
				err = d.Errf("client %q: pkce must be optional or required, not %q", c.ID, c.PKCE)
			}
		case "dpop":
			c.DPoPBoundAccessTokens, err = parseDPoPRule(d, c.ID)
		default:
			return d.Errf("unrecognized client subdirective %q", opt)
		}
		if err != nil {
			return err
		}
	}
	app.Clients = append(app.Clients, c)
	return nil
}

// parseDPoPRule reads "dpop required" (the client's token requests must
// carry a DPoP proof, RFC 9449 5.2) or "dpop optional", the default.
func parseDPoPRule(d *caddyfile.Dispenser, clientID string) (bool, error) {
	rule, err := oneArg(d)
	if err != nil {
		return false, err
	}
	switch rule {
	case "required":
		return true, nil
	case "optional":
		return false, nil
	}
	return false, d.Errf("client %q: dpop must be required or optional, not %q", clientID, rule)
}
