package module

import (
	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(Guard{})
}

// Guard lets a request through only with a valid bearer token that has the
// scopes its method needs (SPEC 3), and tells the next handler who called.
type Guard struct {
	// Methods maps an upper-case HTTP method, or "*" for every method not
	// listed, to the scopes a request needs, all of them. HEAD falls back to
	// GET's line, then to "*". A method with no line is refused with 403.
	// With no entries at all, any valid token passes.
	Methods map[string][]string `json:"methods,omitempty"`
	// ForwardAuthorization keeps the caller's Authorization header for the
	// next handler. By default it is removed.
	ForwardAuthorization bool `json:"forward_authorization,omitempty"`
	// UpstreamJWT, when set, replaces the Authorization header with a JWT
	// describing the caller.
	UpstreamJWT *UpstreamJWT `json:"upstream_jwt,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Guard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tokengate",
		New: func() caddy.Module { return new(Guard) },
	}
}
