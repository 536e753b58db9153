package module

import (
	"net/http"
	"net/textproto"
	"strings"

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

// methodOverrideHeaders ask some frameworks to run another method than the
// request line's; the guard checked the scopes of that one, so they never
// reach the next handler.
var methodOverrideHeaders = [...]string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}

// longestStripped is the longest name stripClientHeaders removes.
const longestStripped = len(headerTokenType)

// strippedByLength lists the names stripClientHeaders removes by their
// length, so that most headers are passed over on their length alone.
var strippedByLength = func() (t [longestStripped + 1][]string) {
	for _, name := range identityHeaders {
		t[len(name)] = append(t[len(name)], name)
	}
	for _, name := range methodOverrideHeaders {
		t[len(name)] = append(t[len(name)], name)
	}
	return t
}()

// stripClientHeaders removes, in one pass over the header names, every
// header that a backend could mistake for one of the identity headers or
// for a method override: any letter case, and "_" for "-", since some
// servers (and CGI) fold both to the same name. It reports whether a
// Connection header is present, so that the caller looks at it only then.
func stripClientHeaders(h http.Header) (connection bool) {
	for name := range h {
		if len(name) > longestStripped {
			continue
		}
		if len(name) == len("Connection") {
			connection = connection || name == "Connection"
			continue
		}
		for _, want := range strippedByLength[len(name)] {
			if sameHeaderName(name, want) {
				delete(h, name)
				break
			}
		}
	}
	return connection
}

func isIdentityHeader(name string) bool {
	for _, want := range identityHeaders {
		if sameHeaderName(name, want) {
			return true
		}
	}
	return false
}

func isMethodOverrideHeader(name string) bool {
	for _, want := range methodOverrideHeaders {
		if sameHeaderName(name, want) {
			return true
		}
	}
	return false
}

// unlistGuardedHeaders removes from every Connection header the names of the
// identity headers, and of Authorization when authorization is true (the
// guard then forwards it or puts the upstream JWT in it). reverse_proxy
// drops every header a Connection header names (RFC 9110 7.6.1), so a
// client naming them would otherwise reach the upstream authorized but
// anonymous. Other names (close, keep-alive, ...) are kept in order; a
// Connection header left with none is removed. The header's slices are
// replaced, never written to, since they may be shared.
func unlistGuardedHeaders(h http.Header, authorization bool) {
	values := h["Connection"]
	changed := false
	for _, v := range values {
		if namesGuardedHeader(v, authorization) {
			changed = true
			break
		}
	}
	if !changed {
		return
	}
	kept := make([]string, 0, len(values))
	for _, v := range values {
		if !namesGuardedHeader(v, authorization) {
			kept = append(kept, v)
			continue
		}
		var names []string
		for part := range strings.SplitSeq(v, ",") {
			name := textproto.TrimString(part)
			if name != "" && !isGuardedHeader(name, authorization) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			kept = append(kept, strings.Join(names, ", "))
		}
	}
	if len(kept) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = kept
}

// namesGuardedHeader reports whether one Connection header value lists a
// header the guard sets. It splits and trims as reverse_proxy does.
func namesGuardedHeader(v string, authorization bool) bool {
	for part := range strings.SplitSeq(v, ",") {
		if isGuardedHeader(textproto.TrimString(part), authorization) {
			return true
		}
	}
	return false
}

func isGuardedHeader(name string, authorization bool) bool {
	return isIdentityHeader(name) || authorization && sameHeaderName(name, "Authorization")
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
	kind := p.TokenType()
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
