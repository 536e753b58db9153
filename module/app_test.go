package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
	"github.com/tokengate/caddy-tokengate/oauth/sqlstore"
)

func TestMain(m *testing.M) {
	// Caddy's data directory (tokengate's default SQLite file, Caddy's own
	// storage) stays out of the developer's home.
	dir, err := os.MkdirTemp("", "tokengate-module-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// startOnTestStore does for app what Provision and Start would: its
// client registry, then a shared state on a fresh SQLite store, and the
// start signal closed.
func startOnTestStore(t *testing.T, app *App) {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), sqlstore.DriverSQLite, filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	v, err := oauth.NewValidator(store, oauth.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if app.clients, err = app.newClientRegistry(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	app.use(&sharedState{store: store, validator: v, clients: oauth.NewStoredClients(store)})
	app.started = newStartSignal()
	app.started.close()
}

// startedApp is an App as Start leaves it, on state, for tests that build
// handlers by hand.
func startedApp(state *sharedState) *App {
	a := &App{state: state, started: newStartSignal()}
	a.started.close()
	return a
}

// testAppJSON is a tokengate app with a client and a users block, on the
// given database ("" for the default).
func testAppJSON(database string) string {
	db := ""
	if database != "" {
		db = `"database": ` + database + `,`
	}
	return `{
		"issuer": "https://api.example.com",` + db + `
		"users": {"jwt_secret": "module-test-user-jwt-secret-0123456789"},
		"scopes": [{"name": "chargers:read"}],
		"clients": [{"id": "app", "secret": "s3cret", "redirect_uris": ["https://app.example.com/cb"]}]
	}`
}

// validateConfig runs what `caddy validate` runs on a config with the
// tokengate app and an http server using both handlers.
func validateConfig(t *testing.T, database string) {
	t.Helper()
	raw := `{
		"admin": {"disabled": true},
		"apps": {
			"tokengate": ` + testAppJSON(database) + `,
			"http": {"servers": {"s": {
				"listen": ["127.0.0.1:0"],
				"automatic_https": {"disable": true},
				"routes": [{"handle": [
					{"handler": "tokengate_endpoints"},
					{"handler": "tokengate", "methods": {"GET": ["chargers:read"]}}
				]}]
			}}}
		}
	}`
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("caddy.Validate: %v", err)
	}
}

// provisionApp provisions the app of testAppJSON(database) as Caddy would,
// without starting it. The app is cleaned up when t ends.
func provisionApp(t *testing.T, database string) *App {
	t.Helper()
	a := new(App)
	if err := json.Unmarshal([]byte(testAppJSON(database)), a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := a.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return a
}

func sqliteDatabase(path string) string {
	b, _ := json.Marshal(path)
	return `{"driver": "sqlite", "path": ` + string(b) + `}`
}

func assertAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists after validation (stat: %v)", path, err)
	}
}

// TestValidateCreatesNoSQLiteFile: `caddy validate` provisions and cleans
// up without starting, so it must not create the SQLite file or its
// directory, at a given path or at the default one; Start does create it.
func TestValidateCreatesNoSQLiteFile(t *testing.T) {
	t.Run("given path", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		path := filepath.Join(dir, "tokengate.db")
		validateConfig(t, sqliteDatabase(path))
		assertAbsent(t, dir)

		// The same config, started, does create it: the check above
		// looks where the store would be.
		a := provisionApp(t, sqliteDatabase(path))
		if err := a.Start(); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("started app did not create its SQLite file: %v", err)
		}
	})
	t.Run("default path", func(t *testing.T) {
		data := t.TempDir()
		t.Setenv("XDG_DATA_HOME", data)
		validateConfig(t, "")
		assertAbsent(t, filepath.Join(data, "caddy", "tokengate"))
	})
}

// userTables counts the tables in the database's non-system schemas.
func userTables(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(context.Background(),
		`SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestValidateCreatesNoPostgresTables: `caddy validate` must not migrate a
// PostgreSQL database; Start does.
func TestValidateCreatesNoPostgresTables(t *testing.T) {
	dsn := pgtest.Start(t)
	b, _ := json.Marshal(dsn)
	database := `{"driver": "postgres", "dsn": ` + string(b) + `}`
	validateConfig(t, database)
	if n := userTables(t, dsn); n != 0 {
		t.Errorf("validation created %d tables", n)
	}

	a := provisionApp(t, database)
	if err := a.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if n := userTables(t, dsn); n == 0 {
		t.Error("started app created no tables")
	}
}

// TestStoreReferences: a started config holds one reference to the shared
// state and Cleanup gives it back once, however often it runs; a config
// that is provisioned but never started (caddy validate, or a config whose
// start failed) takes none and gives none back, even while another config
// uses the same store; Cleanup tolerates a config that failed to provision.
func TestStoreReferences(t *testing.T) {
	database := sqliteDatabase(filepath.Join(t.TempDir(), "tg.db"))
	refs := func(a *App) int {
		n, _ := sharedStates.References(a.stateKey)
		return n
	}
	running := provisionApp(t, database)
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	if n := refs(running); n != 1 {
		t.Fatalf("after Start: %d references, want 1", n)
	}

	// A reload: the next config starts before the old one is stopped and
	// cleaned up, and the store carries over.
	next := provisionApp(t, database)
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	if next.state != running.state {
		t.Error("the next config opened a store of its own")
	}
	if n := refs(next); n != 2 {
		t.Fatalf("two started configs: %d references, want 2", n)
	}
	validated := provisionApp(t, database)
	if err := validated.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n := refs(next); n != 2 {
		t.Fatalf("after cleaning up a config that never started: %d references, want 2", n)
	}
	if err := running.Stop(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := running.Cleanup(); err != nil {
			t.Fatal(err)
		}
	}
	if n := refs(next); n != 1 {
		t.Fatalf("after stopping and cleaning up the old config: %d references, want 1", n)
	}
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n := refs(next); n != 0 {
		t.Fatalf("after cleaning up the last config: %d references, want 0", n)
	}

	t.Setenv("TOKENGATE_MODULE_TEST_UNSET", "")
	for name, a := range map[string]*App{
		"never provisioned":   new(App),
		"failed provisioning": {Database: &DatabaseConfig{Driver: "postgres", DSN: "{env.TOKENGATE_MODULE_TEST_UNSET}"}},
	} {
		if name == "failed provisioning" {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			if err := a.Provision(ctx); err == nil {
				t.Fatalf("%s: Provision succeeded", name)
			}
			cancel()
		}
		if err := a.Cleanup(); err != nil {
			t.Errorf("%s: Cleanup: %v", name, err)
		}
	}
}

// notStartedHandlers are the guard and the endpoints on a provisioned app
// whose Start has not run.
func notStartedHandlers(t *testing.T) (*App, *Guard, *Endpoints) {
	t.Helper()
	a := provisionApp(t, sqliteDatabase(filepath.Join(t.TempDir(), "tg.db")))
	g := &Guard{Methods: map[string][]string{"GET": {"chargers:read"}}, app: a, logger: zap.NewNop()}
	e := &Endpoints{
		Authorize: "/oauth/authorize", Token: "/oauth/token", Revoke: "/oauth/revoke",
		Introspect: "/oauth/introspect", APIToken: "/api-token",
		app: a, logger: zap.NewNop(), consentPage: defaultConsentTemplate,
	}
	return a, g, e
}

type served struct {
	status int
	body   string
	passed bool
}

func serve(t *testing.T, h caddyhttp.MiddlewareHandler, r *http.Request) served {
	t.Helper()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	rec := httptest.NewRecorder()
	var out served
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		out.passed = true
		return nil
	})
	if err := h.ServeHTTP(rec, r, next); err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	out.status, out.body = rec.Code, rec.Body.String()
	return out
}

func bearerRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	text, _, err := oauth.NewToken(oauth.KindPersonal)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Authorization", "Bearer "+text)
	return r
}

// TestHandlersBeforeStart: Caddy may start the http app before the
// tokengate app, so a request can reach a handler before the store is
// open. Past the wait it is answered as if the store were unreachable
// (503 from the guard; temporarily_unavailable from the endpoints),
// never with a panic; what needs no store is served at once.
func TestHandlersBeforeStart(t *testing.T) {
	a, g, e := notStartedHandlers(t)
	a.startWait = 0

	form := func(target, body string) *http.Request {
		r := httptest.NewRequest("POST", target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	for _, c := range []struct {
		name    string
		handler caddyhttp.MiddlewareHandler
		req     *http.Request
		status  int
		body    string
	}{
		{"guard with a token", g, bearerRequest(t, "GET", "/api/chargers"), 503, bodyUnavailable},
		{"guard without a token", g, httptest.NewRequest("GET", "/api/chargers", nil), 401, bodyInvalidToken},
		{"token endpoint", e, form("/oauth/token", "grant_type=refresh_token&refresh_token=x&client_id=app&client_secret=s3cret"), 503, `"error":"temporarily_unavailable"`},
		{"revocation endpoint", e, form("/oauth/revoke", "token=x&client_id=app&client_secret=s3cret"), 503, `"error":"temporarily_unavailable"`},
		{"introspection endpoint", e, form("/oauth/introspect", "token=x&client_id=app&client_secret=s3cret"), 503, `"error":"temporarily_unavailable"`},
		{"personal token endpoint", e, httptest.NewRequest("GET", "/api-token", nil), 503, `"error":"temporarily_unavailable"`},
		{"authorization endpoint, browser", e, httptest.NewRequest("GET", "/oauth/authorize?client_id=app", nil), 503, "Temporarily unavailable"},
		{"metadata needs no store", e, httptest.NewRequest("GET", metadataPath, nil), 200, `"issuer":"https://api.example.com"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := serve(t, c.handler, c.req)
			if got.passed || got.status != c.status || !strings.Contains(got.body, c.body) {
				t.Errorf("got %d %q (passed on: %v), want %d with %q", got.status, got.body, got.passed, c.status, c.body)
			}
		})
	}
}

// TestHandlerWaitsForStart: a request that arrives before Start is served
// once Start has run, rather than refused.
func TestHandlerWaitsForStart(t *testing.T) {
	a, g, _ := notStartedHandlers(t)
	a.startWait = startWait
	result := make(chan served, 1)
	r := bearerRequest(t, "GET", "/api/chargers")
	go func() {
		rec := httptest.NewRecorder()
		_ = g.ServeHTTP(rec, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
		result <- served{status: rec.Code, body: rec.Body.String()}
	}()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	// The token is well formed but unknown to the now open store.
	if got := <-result; got.status != 401 {
		t.Errorf("got %d %q, want 401 from the open store", got.status, got.body)
	}
}

// TestHandlersAfterFailedStart: when Start fails, waiting requests are
// answered as for an unreachable store.
func TestHandlersAfterFailedStart(t *testing.T) {
	// A regular file where the database's directory should be.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a := provisionApp(t, sqliteDatabase(filepath.Join(blocker, "tg.db")))
	a.startWait = startWait
	if err := a.Start(); err == nil {
		t.Fatal("Start succeeded with no place for the database")
	}
	g := &Guard{app: a, logger: zap.NewNop()}
	if got := serve(t, g, bearerRequest(t, "GET", "/")); got.status != 503 {
		t.Errorf("got %d %q, want 503", got.status, got.body)
	}
	if n, _ := sharedStates.References(a.stateKey); n != 0 {
		t.Errorf("a failed Start left %d references", n)
	}
}

// TestIssuerPlaceholder: an issuer from a placeholder is expanded when the
// app is provisioned and checked then (RFC 8414 2), as a literal one is
// when the Caddyfile is adapted.
func TestIssuerPlaceholder(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{"https://auth.example.com", ""},
		{"http://auth.example.com", "must use https"},
		{"", "tokengate: issuer: placeholder {env.TOKENGATE_MODULE_TEST_ISSUER} is empty"},
	} {
		t.Setenv("TOKENGATE_MODULE_TEST_ISSUER", c.value)
		a := &App{Issuer: "{env.TOKENGATE_MODULE_TEST_ISSUER}"}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := a.Provision(ctx)
		cancel()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.value, err)
		case c.want == "" && a.Issuer != c.value:
			t.Errorf("%q: issuer is %q after provisioning", c.value, a.Issuer)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: error %v, want one containing %q", c.value, err, c.want)
		}
		if err := a.Cleanup(); err != nil {
			t.Error(err)
		}
	}
}
