package module

import (
	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(Endpoints{})
}

// Endpoints serves tokengate's HTTP endpoints (SPEC 4) on their paths and
// passes every other request to the next handler.
type Endpoints struct {
	// Authorize is the authorization endpoint's path. Default: /oauth/authorize.
	Authorize string `json:"authorize,omitempty"`
	// Token is the token endpoint's path. Default: /oauth/token.
	Token string `json:"token,omitempty"`
	// Revoke is the revocation endpoint's path. Default: /oauth/revoke.
	Revoke string `json:"revoke,omitempty"`
	// Introspect is the introspection endpoint's path. Default: /oauth/introspect.
	Introspect string `json:"introspect,omitempty"`
	// APIToken is the personal API token endpoint's path. Default: /api-token.
	APIToken string `json:"api_token,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Endpoints) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tokengate_endpoints",
		New: func() caddy.Module { return new(Endpoints) },
	}
}
