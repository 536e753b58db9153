package module

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestRequiredScopes checks the method lines' order: the request's own method,
// then for HEAD the GET line, then "*"; no line at all is refused.
func TestRequiredScopes(t *testing.T) {
	block := map[string][]string{
		"GET":  {"chargers:read"},
		"POST": {"chargers:write", "chargers:read"},
		"*":    {"energy:read"},
	}
	getOnly := map[string][]string{"GET": {"chargers:read"}}
	cases := []struct {
		name    string
		methods map[string][]string
		method  string
		want    []string
		ok      bool
	}{
		{"own method line", block, "POST", []string{"chargers:write", "chargers:read"}, true},
		{"HEAD falls back to GET", block, "HEAD", []string{"chargers:read"}, true},
		{"star covers unlisted methods", block, "DELETE", []string{"energy:read"}, true},
		{"HEAD without GET line uses star", map[string][]string{"*": {"energy:read"}}, "HEAD", []string{"energy:read"}, true},
		{"method with no line is refused", getOnly, "POST", nil, false},
		{"HEAD with GET line only", getOnly, "HEAD", []string{"chargers:read"}, true},
		{"bare tokengate needs no scope", nil, "PATCH", nil, true},
		{"methods are case-sensitive", getOnly, "get", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &Guard{Methods: c.methods}
			got, ok := g.requiredScopes(c.method)
			if ok != c.ok || !slices.Equal(got, c.want) {
				t.Errorf("requiredScopes(%s) = %v, %v; want %v, %v", c.method, got, ok, c.want, c.ok)
			}
		})
	}
}

// TestStripClientHeaders: the guard removes client copies of the identity
// headers and the method override headers in any letter case or with "_"
// for "-", and nothing else.
func TestStripClientHeaders(t *testing.T) {
	h := http.Header{
		"X-Authenticated-Userid":     {"a"},
		"x-authenticated-scope":      {"b"},
		"X_Authenticated_Client_Id":  {"c"},
		"X-AUTHENTICATED-TOKEN-TYPE": {"d"},
		"X-Authenticated_Userid":     {"e"},
		"X-Http-Method-Override":     {"DELETE"}, // as Go's server canonicalises it
		"x-http-method":              {"PUT"},
		"X_HTTP_METHOD_OVERRIDE":     {"PATCH"},
		"X-Method-Override":          {"DELETE"},
		"x_method_override":          {"DELETE"},
		"X-HTTP_Method":              {"DELETE"},
		"X-Authenticated-User":       {"keep"},
		"X-Authenticated-Userids":    {"keep"},
		"X-Http-Method-Overrides":    {"keep"},
		"X-Method":                   {"keep"},
		"Authorization":              {"keep"},
		"X-Request-Id":               {"keep"},
	}
	if stripClientHeaders(h) {
		t.Error("reported a Connection header where there is none")
	}
	want := []string{"Authorization", "X-Authenticated-User", "X-Authenticated-Userids", "X-Http-Method-Overrides", "X-Method", "X-Request-Id"}
	got := slices.Sorted(maps.Keys(h))
	if !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	if !stripClientHeaders(http.Header{"Connection": {"close"}, "User-Agent": {"x"}}) {
		t.Error("did not report the Connection header")
	}
}

// TestUnlistGuardedHeaders: a Connection header naming an identity header
// (or Authorization when the guard forwards it) would make reverse_proxy
// drop it as hop-by-hop (RFC 9110 7.6.1); the guard removes those names and
// keeps the others.
func TestUnlistGuardedHeaders(t *testing.T) {
	cases := []struct {
		name          string
		connection    []string
		authorization bool
		want          []string // nil: no Connection header left
	}{
		{"close alone is kept", []string{"close"}, false, []string{"close"}},
		{"keep-alive and upgrade kept as sent", []string{"keep-alive,Upgrade"}, false, []string{"keep-alive,Upgrade"}},
		{"user id after close", []string{"close, X-Authenticated-Userid"}, false, []string{"close"}},
		{"lower case", []string{"x-authenticated-scope, close"}, false, []string{"close"}},
		{"upper case", []string{"X-AUTHENTICATED-CLIENT-ID"}, false, nil},
		{"underscores", []string{"close,x_authenticated_token_type"}, false, []string{"close"}},
		{"mixed underscore and dash", []string{"X-Authenticated_Userid"}, false, nil},
		{"all four among others", []string{"keep-alive, X-Authenticated-Userid,X-Authenticated-Scope , x_authenticated_client_id,\tX-Authenticated-Token-Type, close"}, false, []string{"keep-alive, close"}},
		{"empty elements", []string{",, X-Authenticated-Userid ,,close,"}, false, []string{"close"}},
		{"several header lines", []string{"close", "X-Authenticated-Userid", "keep-alive, x-authenticated-scope"}, false, []string{"close", "keep-alive"}},
		{"only guarded names on several lines", []string{"X-Authenticated-Userid", "x_authenticated_scope"}, false, nil},
		{"longer name is kept", []string{"X-Authenticated-Userids, close"}, false, []string{"X-Authenticated-Userids, close"}},
		{"Authorization kept in Connection when the guard removes it", []string{"close, Authorization"}, false, []string{"close, Authorization"}},
		{"forward_authorization or upstream_jwt", []string{"close, Authorization"}, true, []string{"close"}},
		{"Authorization in any case", []string{"AUTHORIZATION, x-authenticated-userid"}, true, nil},
		{"identity names without authorization option", []string{"authorization, X-Authenticated-Userid"}, false, []string{"authorization"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sent := slices.Clone(c.connection)
			h := http.Header{"Connection": sent, "X-Other": {"x"}}
			unlistGuardedHeaders(h, c.authorization)
			got, present := h["Connection"]
			if c.want == nil {
				if present {
					t.Errorf("Connection %q left, want none", got)
				}
			} else if !slices.Equal(got, c.want) {
				t.Errorf("Connection %q, want %q", got, c.want)
			}
			if !slices.Equal(sent, c.connection) {
				t.Errorf("the request's own slice was written to: %q", sent)
			}
			if h.Get("X-Other") != "x" {
				t.Error("another header was touched")
			}
		})
	}
}

// TestGuardHeadersReachNextHandler runs ServeHTTP with a valid token: the
// next handler gets the identity headers, a Connection header that names
// none of them, no method override, and Authorization as configured.
func TestGuardHeadersReachNextHandler(t *testing.T) {
	cases := []struct {
		name           string
		forward        bool
		upstreamJWT    bool
		headers        http.Header
		wantConnection []string
		wantAuth       bool
	}{
		{"no Connection header", false, false, http.Header{}, nil, false},
		{"identity names with close", false, false, http.Header{
			"Connection": {"close, X-Authenticated-Userid, x_authenticated_scope", "X-AUTHENTICATED-CLIENT-ID,x-authenticated-token-type"},
		}, []string{"close"}, false},
		{"method overrides", false, false, http.Header{
			"X-Http-Method-Override": {"DELETE"},
			"X-Http-Method":          {"DELETE"},
			"X-Method-Override":      {"DELETE"},
			"X_http_method_override": {"DELETE"},
			"Connection":             {"keep-alive"},
		}, []string{"keep-alive"}, false},
		{"forward_authorization keeps Authorization", true, false, http.Header{
			"Connection": {"Authorization, close, X-Authenticated-Token-Type"},
		}, []string{"close"}, true},
		{"upstream_jwt sets Authorization", false, true, http.Header{
			"Connection": {"authorization"},
		}, nil, true},
		{"Authorization left in Connection when removed anyway", false, false, http.Header{
			"Connection": {"Authorization"},
		}, []string{"Authorization"}, false},
	}
	g, valid := newTestGuard(t)
	signer, err := newUpstreamSigner(&UpstreamJWT{Secret: "upstream-secret-0123456789abcdef"}, "https://api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g.ForwardAuthorization = c.forward
			g.upstream = nil
			if c.upstreamJWT {
				g.upstream = signer
			}
			r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/guarded", nil)
			r.Header = c.headers.Clone()
			r.Header.Set("Authorization", "Bearer "+valid)
			var seen http.Header
			next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
				seen = r.Header.Clone()
				return nil
			})
			if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
				t.Fatal(err)
			}
			if seen == nil {
				t.Fatal("the next handler was not called")
			}
			for name, want := range map[string]string{
				headerUserID:    "3f2a9c1e-7b4d-4e8a-9c3f-1d2e3f4a5b6c",
				headerScope:     "chargers:read sessions:read energy:read",
				headerClientID:  "",
				headerTokenType: "personal",
			} {
				if got := seen[name]; len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if got := seen["Connection"]; !slices.Equal(got, c.wantConnection) {
				t.Errorf("Connection %q, want %q", got, c.wantConnection)
			}
			for name := range seen {
				if isMethodOverrideHeader(name) {
					t.Errorf("%s reached the next handler", name)
				}
			}
			if got := seen.Get("Authorization") != ""; got != c.wantAuth {
				t.Errorf("Authorization forwarded: %v, want %v", got, c.wantAuth)
			}
		})
	}
}

// TestGuardPreflightHeaders: a CORS preflight passes without a token, and
// still loses spoofed identity headers and method overrides (on
// every request).
func TestGuardPreflightHeaders(t *testing.T) {
	g, _ := newTestGuard(t)
	r := httptest.NewRequest(http.MethodOptions, "http://127.0.0.1/guarded", nil)
	r.Header = http.Header{
		"Origin":                        {"https://app.example.com"},
		"Access-Control-Request-Method": {"GET"},
		"X-Authenticated-Userid":        {"admin"},
		"X-Http-Method-Override":        {"DELETE"},
		"Connection":                    {"keep-alive, X-Authenticated-Userid"},
	}
	var seen http.Header
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Clone()
		return nil
	})
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil || seen == nil {
		t.Fatalf("preflight not passed: %v", err)
	}
	want := http.Header{
		"Origin":                        {"https://app.example.com"},
		"Access-Control-Request-Method": {"GET"},
		"Connection":                    {"keep-alive"},
	}
	if !maps.EqualFunc(seen, want, slices.Equal) {
		t.Errorf("next handler saw %v, want %v", seen, want)
	}
}

// TestHasQueryToken: the guard refuses token and access_token query
// parameters, present with or without a value, even percent-encoded.
func TestHasQueryToken(t *testing.T) {
	for _, c := range []struct {
		query string
		want  bool
	}{
		{"token=abc", true},
		{"access_token=abc", true},
		{"a=1&token", true},
		{"token=", true},
		{"%74oken=x", true},
		{"a=%zz&token=x", true}, // unparsable elsewhere in the query
		{"a=%zz&tokens=x", false},
		{"Token=x", false}, // query names are case-sensitive
		{"mytoken=x&access=1", false},
		{"page=2", false},
	} {
		if got := hasQueryToken(c.query); got != c.want {
			t.Errorf("hasQueryToken(%q) = %v, want %v", c.query, got, c.want)
		}
	}
}

// TestIsCORSPreflight: only OPTIONS with Origin and
// Access-Control-Request-Method passes without a token.
func TestIsCORSPreflight(t *testing.T) {
	mk := func(method string, headers ...string) *http.Request {
		r, _ := http.NewRequest(method, "http://x/", nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		return r
	}
	for _, c := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"preflight", mk("OPTIONS", "Origin", "https://a", "Access-Control-Request-Method", "GET"), true},
		{"OPTIONS without request method", mk("OPTIONS", "Origin", "https://a"), false},
		{"OPTIONS without origin", mk("OPTIONS", "Access-Control-Request-Method", "GET"), false},
		{"GET with CORS headers", mk("GET", "Origin", "https://a", "Access-Control-Request-Method", "GET"), false},
	} {
		if got := isCORSPreflight(c.r); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
