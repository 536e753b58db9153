package module

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// TestCheckResourceURI: a resource identifier is an absolute https URI,
// http only on a loopback host, without fragment (RFC 9728 1.2, RFC 8707
// 2) or query.
func TestCheckResourceURI(t *testing.T) {
	for _, c := range []struct {
		uri, err string
	}{
		{"https://api.example.com/chargers", ""},
		{"https://api.example.com", ""},
		{"https://api.example.com/", ""},
		{"https://api.example.com:8443/v1/energy", ""},
		{"http://127.0.0.1:8080/api", ""},
		{"http://[::1]/api", ""},
		{"http://localhost:9000", ""},
		{"https://api.example.com/a%20b", ""},
		{"http://api.example.com/api", "must use https"},
		{"ftp://api.example.com/api", "must use https"},
		{"/chargers", "not an absolute URI"},
		{"api.example.com/chargers", "not an absolute URI"},
		{"urn:example:chargers", "not an absolute URI"},
		{"https:///chargers", "not an absolute URI"},
		{"https://api.example.com/chargers#top", "must not have a fragment"},
		{"https://api.example.com/chargers#", "must not have a fragment"},
		{"https://api.example.com/chargers?x=1", "must not have a query"},
		{"https://api.example.com/chargers?", "must not have a query"},
		{"https://user@api.example.com/chargers", "must not have user information"},
		{`https://api.example.com/a"b`, "cannot hold unescaped"},
		{`https://api.example.com/a\b`, "cannot hold unescaped"},
		{"https://api.example.com/a b", "cannot hold unescaped"},
		{"https://api.example.com/é", "cannot hold unescaped"},
		{"", "not an absolute URI"},
	} {
		err := CheckResourceURI(c.uri)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v, want accepted", c.uri, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: %v, want an error with %q", c.uri, err, c.err)
		}
	}
}

// TestResourceMetadataPath: the metadata URL inserts the well-known path
// between the host and the resource's path; a path of "/" alone counts as
// none (RFC 9728 3.1).
func TestResourceMetadataPath(t *testing.T) {
	for _, c := range []struct {
		uri, host, path string
	}{
		{"https://resource.example.com/resource1", "resource.example.com", "/.well-known/oauth-protected-resource/resource1"},
		{"https://api.example.com/chargers", "api.example.com", "/.well-known/oauth-protected-resource/chargers"},
		{"https://api.example.com", "api.example.com", "/.well-known/oauth-protected-resource"},
		{"https://api.example.com/", "api.example.com", "/.well-known/oauth-protected-resource"},
		{"https://api.example.com/v1/energy/", "api.example.com", "/.well-known/oauth-protected-resource/v1/energy/"},
		{"http://127.0.0.1:8080/api", "127.0.0.1:8080", "/.well-known/oauth-protected-resource/api"},
	} {
		host, path := resourceMetadataPath(c.uri)
		if host != c.host || path != c.path {
			t.Errorf("%s: host %q path %q, want %q %q", c.uri, host, path, c.host, c.path)
		}
	}
}

// resourceApp is a provisioned-looking app with four declared scopes and
// no store: the metadata needs none.
func resourceApp() *App {
	return &App{
		Issuer: "https://auth.example.com",
		Scopes: []ScopeConfig{{Name: "chargers:read"}, {Name: "chargers:write"}, {Name: "sessions:read"}, {Name: "energy:read"}},
		logger: zap.NewNop(),
	}
}

// guardFor provisions the resource part of a guard on app, as Provision
// does.
func guardFor(t *testing.T, app *App, resource string, methods map[string][]string) *Guard {
	t.Helper()
	g := &Guard{Resource: resource, Methods: methods, app: app, logger: zap.NewNop(), accessLog: zap.NewNop()}
	if err := g.useResource(app); err != nil {
		t.Fatalf("resource %s: %v", resource, err)
	}
	return g
}

func resourceEndpoints(app *App) *Endpoints {
	return &Endpoints{
		Authorize: "/oauth/authorize", Token: "/oauth/token", Revoke: "/oauth/revoke",
		Introspect: "/oauth/introspect", APIToken: "/api-token", Grants: "/oauth/grants",
		app: app, logger: zap.NewNop(),
	}
}

// getResource asks e for path with the given Host.
func getResource(t *testing.T, e *Endpoints, method, host, path string) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	r := httptest.NewRequest(method, "http://"+host+path, nil)
	w := httptest.NewRecorder()
	passed := false
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		passed = true
		return nil
	})
	if err := e.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	return w, passed
}

// TestProtectedResourceMetadata: each named resource has its RFC 9728 3.2
// document at its own path, listing every scope its guards require, each
// once, in the order the config declares them; other paths pass on.
func TestProtectedResourceMetadata(t *testing.T) {
	app := resourceApp()
	guardFor(t, app, "https://api.example.com/chargers", map[string][]string{"POST": {"chargers:write", "chargers:read"}})
	guardFor(t, app, "https://api.example.com/chargers", map[string][]string{"GET": {"chargers:read"}, "*": {"sessions:read"}})
	guardFor(t, app, "https://api.example.com", nil)
	guardFor(t, app, "", map[string][]string{"GET": {"energy:read"}})
	e := resourceEndpoints(app)

	for _, c := range []struct {
		path, body string
	}{
		{"/.well-known/oauth-protected-resource/chargers",
			`{"resource":"https://api.example.com/chargers","authorization_servers":["https://auth.example.com"],` +
				`"scopes_supported":["chargers:read","chargers:write","sessions:read"],"bearer_methods_supported":["header"],` +
				`"dpop_signing_alg_values_supported":["ES256","RS256","EdDSA"]}`},
		{"/.well-known/oauth-protected-resource",
			`{"resource":"https://api.example.com","authorization_servers":["https://auth.example.com"],` +
				`"scopes_supported":[],"bearer_methods_supported":["header"],` +
				`"dpop_signing_alg_values_supported":["ES256","RS256","EdDSA"]}`},
	} {
		w, passed := getResource(t, e, "GET", "api.example.com", c.path)
		if passed || w.Code != 200 || w.Body.String() != c.body {
			t.Errorf("GET %s: %d %s (passed on: %v), want 200 %s", c.path, w.Code, w.Body, passed, c.body)
		}
		if ct, cc := w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"); ct != "application/json" || cc != protectedResourceCacheControl {
			t.Errorf("GET %s: Content-Type %q, Cache-Control %q", c.path, ct, cc)
		}
	}
	if w, _ := getResource(t, e, "HEAD", "api.example.com", "/.well-known/oauth-protected-resource/chargers"); w.Code != 200 {
		t.Errorf("HEAD: %d", w.Code)
	}
	if w, _ := getResource(t, e, "POST", "api.example.com", "/.well-known/oauth-protected-resource/chargers"); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d Allow %q, want 405 GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
	for _, path := range []string{
		"/.well-known/oauth-protected-resource/energy",
		"/.well-known/oauth-protected-resource/chargers/",
		"/.well-known/oauth-protected-resource/charger",
	} {
		if _, passed := getResource(t, e, "GET", "api.example.com", path); !passed {
			t.Errorf("GET %s was answered; it is no resource's", path)
		}
	}
	// Without any resource the well-known path is no endpoint's.
	if _, passed := getResource(t, resourceEndpoints(resourceApp()), "GET", "api.example.com", protectedResourcePath); !passed {
		t.Errorf("an app without resources answered %s", protectedResourcePath)
	}
}

// TestProtectedResourceSites: resources of two sites with the same path
// are told apart by the request's host; two identifiers with one
// metadata URL are a config error.
func TestProtectedResourceSites(t *testing.T) {
	app := resourceApp()
	guardFor(t, app, "https://a.example.com/api", map[string][]string{"*": {"chargers:read"}})
	guardFor(t, app, "https://b.example.com/api", map[string][]string{"*": {"energy:read"}})
	e := resourceEndpoints(app)
	for host, want := range map[string]string{"a.example.com": `"resource":"https://a.example.com/api"`, "B.example.com": `"resource":"https://b.example.com/api"`} {
		if w, _ := getResource(t, e, "GET", host, "/.well-known/oauth-protected-resource/api"); w.Code != 200 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("Host %s: %d %s, want %s", host, w.Code, w.Body, want)
		}
	}
	if _, passed := getResource(t, e, "GET", "c.example.com", "/.well-known/oauth-protected-resource/api"); !passed {
		t.Error("a host of neither resource was answered")
	}

	guardFor(t, app, "https://api.example.com", nil)
	g := &Guard{Resource: "https://api.example.com/", app: app}
	err := g.useResource(app)
	if err == nil || !strings.Contains(err.Error(), `resources "https://api.example.com" and "https://api.example.com/" would have the same metadata URL https://api.example.com/.well-known/oauth-protected-resource`) {
		t.Errorf("two identifiers, one metadata URL: %v", err)
	}
}

// TestResourcesPerConfig: during a reload two configs run at once, each
// with its own app; each answers for the resources of its own guards.
func TestResourcesPerConfig(t *testing.T) {
	old, current := resourceApp(), resourceApp()
	guardFor(t, old, "https://api.example.com/v1", map[string][]string{"*": {"chargers:read"}})
	guardFor(t, current, "https://api.example.com/v2", map[string][]string{"*": {"energy:read"}})
	guardFor(t, current, "https://api.example.com/v1", map[string][]string{"*": {"sessions:read"}})
	for _, c := range []struct {
		app     *App
		path    string
		want    string // "" when the path must pass on
		missing string
	}{
		{old, "/.well-known/oauth-protected-resource/v1", `"scopes_supported":["chargers:read"]`, ""},
		{old, "/.well-known/oauth-protected-resource/v2", "", ""},
		{current, "/.well-known/oauth-protected-resource/v1", `"scopes_supported":["sessions:read"]`, "chargers:read"},
		{current, "/.well-known/oauth-protected-resource/v2", `"scopes_supported":["energy:read"]`, ""},
	} {
		w, passed := getResource(t, resourceEndpoints(c.app), "GET", "api.example.com", c.path)
		switch {
		case c.want == "" && !passed:
			t.Errorf("%s was answered: %s", c.path, w.Body)
		case c.want != "" && (passed || !strings.Contains(w.Body.String(), c.want)):
			t.Errorf("%s: %s, want %s", c.path, w.Body, c.want)
		case c.missing != "" && strings.Contains(w.Body.String(), c.missing):
			t.Errorf("%s: %s names %s, a scope of the other config", c.path, w.Body, c.missing)
		}
	}
}

// TestGuardResourceChallenge: the 401 and 403 answers of a guard with a
// resource end their challenge with resource_metadata, the URL built
// from the resource's own scheme and host whatever Host the request
// named (RFC 9728 5.1); the bodies stay those of the guard without one,
// whose challenges are unchanged.
func TestGuardResourceChallenge(t *testing.T) {
	env := newAdminEnv(t) // a started app on a fresh store
	app := env.app
	app.personal.Scopes = []string{"energy:read"}
	personal, _, err := app.personal.Issue(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string][]string{"GET": {"energy:read"}, "POST": {"chargers:write"}}
	app.Scopes = append(app.Scopes, ScopeConfig{Name: "chargers:write"})
	with := guardFor(t, app, "https://api.example.com/chargers", methods)
	without := &Guard{Methods: methods, app: app, logger: zap.NewNop(), accessLog: zap.NewNop()}
	const meta = `, resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/chargers"`

	for _, c := range []struct {
		name, method, target, authorization string
		status                              int
		challenge, body                     string
	}{
		{"no Authorization header (RFC 6750 3.1)", "GET", "/chargers", "", 401,
			`Bearer realm="tokengate"`, bodyInvalidToken},
		{"unknown token", "GET", "/chargers", "Bearer tgp_unknown", 401,
			`Bearer realm="tokengate", error="invalid_token"`, bodyInvalidToken},
		{"token in the URL", "GET", "/chargers?access_token=x", "", 401,
			`Bearer realm="tokengate", error="invalid_request"`, bodyTokenInURL},
		{"personal token lacking POST's scope", "POST", "/chargers", "Bearer " + personal, 403,
			`Bearer realm="tokengate", error="insufficient_scope", scope="chargers:write"`,
			`{"error":"Insufficient scope","required_scope":"chargers:write"}`},
		{"method without a line", "DELETE", "/chargers", "Bearer " + personal, 403,
			`Bearer realm="tokengate", error="insufficient_scope"`, bodyNoScopeForVerb},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, g := range []*Guard{with, without} {
				want := c.challenge
				if g == with {
					want += meta
				}
				r := httptest.NewRequest(c.method, "http://attacker.example"+c.target, nil)
				if c.authorization != "" {
					r.Header.Set("Authorization", c.authorization)
				}
				w := httptest.NewRecorder()
				if err := g.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
					t.Error("the request reached the next handler")
					return nil
				})); err != nil {
					t.Fatal(err)
				}
				if w.Code != c.status || w.Header().Get("WWW-Authenticate") != want || w.Body.String() != c.body {
					t.Errorf("resource %q: %d %q %s\nwant %d %q %s", g.Resource, w.Code, w.Header().Get("WWW-Authenticate"), w.Body, c.status, want, c.body)
				}
			}
		})
	}

	// A token with the scope passes, and the document lists the scopes.
	r := httptest.NewRequest("GET", "/chargers", nil)
	r.Header.Set("Authorization", "Bearer "+personal)
	if got := serve(t, with, r); !got.passed {
		t.Errorf("a token with energy:read: %d %s", got.status, got.body)
	}
}
