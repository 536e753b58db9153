package caddyfile

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/caddy-tokengate/module"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("tokengate_endpoints", parseEndpoints)
	// Before every authentication handler, tokengate's own guard included:
	// the endpoints authenticate their callers themselves (client
	// credentials, the user's JWT), and a site-wide guard or basic_auth
	// in front of them would make it impossible to obtain the very token
	// the guard asks for.
	httpcaddyfile.RegisterDirectiveOrder("tokengate_endpoints", httpcaddyfile.Before, "basic_auth")
}

// endpointPaths are the endpoints' default paths (docs/reference.md), by
// subdirective. A moved path must not land on another endpoint's path,
// default or not.
var endpointPaths = []struct{ option, path string }{
	{"authorize", "/oauth/authorize"},
	{"token", "/oauth/token"},
	{"revoke", "/oauth/revoke"},
	{"introspect", "/oauth/introspect"},
	{"api_token", "/api-token"},
	{"grants", "/oauth/grants"},
	{"clients", ""}, // off unless given
	{"userinfo", "/oauth/userinfo"},
	{"jwks", "/.well-known/jwks.json"},
	{"registration", ""},
	{"device_authorization", "/oauth/device_authorization"},
	{"device", "/oauth/device"},
	{"metadata", "/.well-known/oauth-authorization-server"},
	{"openid_configuration", "/.well-known/openid-configuration"},
}

// parseEndpoints sets up the endpoints handler. Syntax:
//
//	tokengate_endpoints [<matcher>] [{
//		authorize  <path>
//		token      <path>
//		revoke     <path>
//		introspect <path>
//		api_token  <path>
//		grants     <path>
//		clients    <path>
//		userinfo   <path>
//		jwks       <path>
//		registration <path>
//		device_authorization <path>
//		device     <path>
//		consent_template <file>
//	}]
//
// Every path starts with "/"; an omitted one keeps its default. The
// metadata paths (RFC 8414 3, OpenID Connect Discovery 1.0 4) are fixed.
// The grants endpoint also serves the paths one segment below its own
// (<grants>/<client_id>), so no other endpoint may sit there; likewise the clients endpoint, which is off unless its path
// is given, and serves <clients>/<id> and <clients>/<id>/secret; and the
// registration endpoint (RFC 7591), off unless its path is given, which
// needs the global registration option and serves <registration>/<id>
// (RFC 7592).
// consent_template replaces the browser flow's
// consent page (docs/reference.md) with an html/template file, parsed when
// the config is provisioned.
func parseEndpoints(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // consume directive name
	app, err := globalApp(h, "tokengate_endpoints")
	if err != nil {
		return nil, err
	}
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	e := new(module.Endpoints)
	fields := map[string]*string{
		"authorize":            &e.Authorize,
		"token":                &e.Token,
		"revoke":               &e.Revoke,
		"introspect":           &e.Introspect,
		"api_token":            &e.APIToken,
		"grants":               &e.Grants,
		"clients":              &e.Clients,
		"device_authorization": &e.DeviceAuthorization,
		"device":               &e.Device,
		"userinfo":             &e.Userinfo,
		"jwks":                 &e.JWKS,
	}
	fields["registration"] = &e.Registration
	seen := seenOptions{}
	for h.NextBlock(0) {
		opt := h.Val()
		if opt == "consent_template" {
			if err := seen.once(h.Dispenser); err != nil {
				return nil, err
			}
			file, err := oneArg(h.Dispenser)
			if err != nil {
				return nil, err
			}
			e.ConsentTemplate = file
			continue
		}
		field, ok := fields[opt]
		if !ok {
			return nil, h.Errf("unrecognized tokengate_endpoints subdirective %q", opt)
		}
		if err := seen.once(h.Dispenser); err != nil {
			return nil, err
		}
		path, err := oneArg(h.Dispenser)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(path, "/") {
			return nil, h.Errf("%s path %q must start with /", opt, path)
		}
		*field = path
	}
	// Two endpoints on one path would leave one unreachable; so would one
	// under the grants or the clients path, whose client ids it would
	// hide.
	owner := make(map[string]string, len(endpointPaths))
	paths := make(map[string]string, len(endpointPaths))
	for _, ep := range endpointPaths {
		path := ep.path
		if f := fields[ep.option]; f != nil && *f != "" {
			path = *f
		}
		if path == "" {
			continue // an endpoint that is off
		}
		if other, taken := owner[path]; taken {
			return nil, h.Errf("%s and %s both use the path %s", other, ep.option, path)
		}
		owner[path] = ep.option
		paths[ep.option] = path
	}
	for _, ep := range endpointPaths {
		path, on := paths[ep.option]
		if !on {
			continue
		}
		if grants := paths["grants"]; strings.HasPrefix(path, grants+"/") {
			return nil, h.Errf("%s path %s is under the grants path %s, which serves %s/<client_id>", ep.option, path, grants, grants)
		}
		if clients, on := paths["clients"]; on && strings.HasPrefix(path, clients+"/") {
			return nil, h.Errf("%s path %s is under the clients path %s, which serves %s/<client_id>", ep.option, path, clients, clients)
		}
		if reg, on := paths["registration"]; on && strings.HasPrefix(path, reg+"/") {
			return nil, h.Errf("%s path %s is under the registration path %s, which serves %s/<client_id>", ep.option, path, reg, reg)
		}
	}
	if e.Registration != "" && app.Registration == nil {
		return nil, h.Errf("the registration path %s needs the global option registration open, or registration token <initial access token>, in the tokengate block", e.Registration)
	}
	return e, nil
}
