package module

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// The identity headers the guard gives the next handler (docs/reference.md).
const (
	headerUserID    = "X-Authenticated-Userid"
	headerScope     = "X-Authenticated-Scope"
	headerClientID  = "X-Authenticated-Client-Id"
	headerTokenType = "X-Authenticated-Token-Type"
)

var identityHeaders = [...]string{headerUserID, headerScope, headerClientID, headerTokenType}

// stripIdentityHeaders removes every header that a backend could mistake for
// one of the identity headers: any letter case, and "_" for "-", since some
// servers (and CGI) fold both to the same name.
func stripIdentityHeaders(h http.Header) {
	for name := range h {
		if len(name) < len(headerScope) || len(name) > len(headerTokenType) {
			continue
		}
		for _, want := range identityHeaders {
			if sameHeaderName(name, want) {
				delete(h, name)
				break
			}
		}
	}
}

// sameHeaderName compares ignoring ASCII case and treating '_' as '-'.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// setIdentity publishes the principal as request headers and as the
// http.auth.user.* placeholders, so access logs and header_up can use them.
func setIdentity(r *http.Request, p *oauth.Principal) {
	scope := p.ScopeString()
	kind := p.Kind.String()
	// One allocation for the four values; each header gets a slice with
	// no spare capacity, so an append by a later handler cannot spill into
	// its neighbour.
	values := &[4]string{p.UserID, scope, p.ClientID, kind}
	r.Header[headerUserID] = values[0:1:1]
	r.Header[headerScope] = values[1:2:2]
	r.Header[headerClientID] = values[2:3:3]
	r.Header[headerTokenType] = values[3:4:4]
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", p.UserID)
		repl.Set("http.auth.user.scope", scope)
		repl.Set("http.auth.user.client_id", p.ClientID)
		repl.Set("http.auth.user.token_type", kind)
	}
}
