package module

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// adminEnv is the admin API over a started app with a fresh SQLite store,
// the static clients home-app (confidential) and mobile (public), and an
// audit log the test reads.
type adminEnv struct {
	api   *AdminAPI
	app   *App
	audit *observer.ObservedLogs
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	app := &App{
		Issuer: "https://api.example.com",
		Scopes: []ScopeConfig{{Name: "chargers:read"}, {Name: "sessions:read"}, {Name: "energy:read"}},
		Clients: []ClientConfig{
			{ID: "home-app", Name: "Home Energy App", Secret: "home-secret", RedirectURIs: []string{"https://home.example.com/cb"}, Scopes: []string{"chargers:read"}},
			{ID: "mobile", RedirectURIs: []string{"com.example.mobile:/oauth"}},
		},
		metrics: tokengateMetrics(),
		logger:  zap.NewNop(),
		audit:   auditLog{logger: zap.New(core)},
	}
	if err := app.Validate(); err != nil {
		t.Fatal(err)
	}
	startOnTestStore(t, app)
	return &adminEnv{api: &AdminAPI{app: app, logger: zap.NewNop()}, app: app, audit: logs}
}

// adminAnswer is an answer of the admin API as Caddy's admin endpoint
// writes it: a handler's APIError becomes {"error":"<message>"}.
type adminAnswer struct {
	status int
	header http.Header
	body   string
}

func adminCall(t *testing.T, api *AdminAPI, method, path, body string) adminAnswer {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	err := api.serve(w, r)
	if err == nil {
		return adminAnswer{w.Code, w.Header(), w.Body.String()}
	}
	var apiErr caddy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("%s %s: error %v is not a caddy.APIError (Caddy would answer 500)", method, path, err)
	}
	msg := apiErr.Message
	if msg == "" {
		msg = apiErr.Err.Error()
	}
	b, _ := json.Marshal(map[string]string{"error": msg})
	return adminAnswer{apiErr.HTTPStatus, w.Header(), string(b)}
}

func (a adminAnswer) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("answer %q is not a JSON object: %v", a.body, err)
	}
	return m
}

func (a adminAnswer) errorMessage(t *testing.T) string {
	t.Helper()
	msg, _ := a.object(t)["error"].(string)
	return msg
}

func (e *adminEnv) auditMessages() []string {
	var out []string
	for _, entry := range e.audit.All() {
		out = append(out, entry.Message)
	}
	return out
}

// The routes that do not exist, the wrong methods, and an app that is
// missing or not started.
func TestAdminRouting(t *testing.T) {
	env := newAdminEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/tokengate/", 404, "resource not found"},
		{"GET", "/tokengate/nothing", 404, "resource not found"},
		{"GET", "/tokengate/clients/home-app/other", 404, "resource not found"},
		{"GET", "/tokengate/users/alice/other", 404, "resource not found"},
		{"GET", "/tokengate/users/alice/grants/home-app/x", 404, "resource not found"},
		{"GET", "/tokengate/users/alice", 405, "method not allowed: GET"},
		{"POST", "/tokengate/users/alice/grants", 405, "method not allowed: POST"},
		{"GET", "/tokengate/users/alice/grants/home-app", 405, "method not allowed: GET"},
		{"PATCH", "/tokengate/clients", 405, "method not allowed: PATCH"},
		{"POST", "/tokengate/clients/home-app", 405, "method not allowed: POST"},
		{"GET", "/tokengate/clients/home-app/secret", 405, "method not allowed: GET"},
		{"GET", "/tokengate/users/alice/personal-token", 405, "method not allowed: GET"},
	} {
		got := adminCall(t, env.api, tc.method, tc.path, "")
		if got.status != tc.status || !strings.Contains(got.errorMessage(t), tc.want) {
			t.Errorf("%s %s = %d %s, want %d with %q", tc.method, tc.path, got.status, got.body, tc.status, tc.want)
		}
	}
	if got := adminCall(t, env.api, "PATCH", "/tokengate/clients", ""); got.header.Get("Allow") != "GET, POST" {
		t.Errorf("405 Allow = %q, want GET, POST", got.header.Get("Allow"))
	}

	none := &AdminAPI{logger: zap.NewNop()}
	if got := adminCall(t, none, "GET", "/tokengate/clients", ""); got.status != 404 || !strings.Contains(got.errorMessage(t), "no tokengate app") {
		t.Errorf("without the app: %d %s, want 404", got.status, got.body)
	}
	// An app whose Start has not run (yet): the handlers' wait, then 503.
	waiting := &App{started: newStartSignal(), startWait: time.Millisecond}
	got := adminCall(t, &AdminAPI{app: waiting, logger: zap.NewNop()}, "GET", "/tokengate/clients", "")
	if got.status != 503 || !strings.Contains(got.errorMessage(t), "store is not open") {
		t.Errorf("before Start: %d %s, want 503", got.status, got.body)
	}
}

// POST issues (or rotates) a user's personal token as the
// api_token endpoint does; DELETE deactivates it, also when there is none.
func TestAdminPersonalToken(t *testing.T) {
	env := newAdminEnv(t)
	ctx := context.Background()
	path := "/tokengate/users/" + "user%2F1" + "/personal-token"
	first := adminCall(t, env.api, "POST", path, "")
	if first.status != 201 {
		t.Fatalf("POST: %d %s", first.status, first.body)
	}
	m := first.object(t)
	tok, _ := m["token"].(string)
	created, _ := m["created_at"].(string)
	if _, err := time.Parse(time.RFC3339, created); err != nil || !strings.HasPrefix(tok, "tgp_") || len(m) != 2 {
		t.Fatalf("POST answer %s: want {token, created_at}", first.body)
	}
	if first.header.Get("Cache-Control") != "no-store" {
		t.Error("an answer with a token is not no-store")
	}
	p, err := env.app.state.validator.Validate(ctx, tok)
	if err != nil || p.UserID != "user/1" {
		t.Fatalf("issued token: %+v, %v; want user/1 (the id unescaped)", p, err)
	}
	second := adminCall(t, env.api, "POST", path, "")
	if _, err := env.app.state.validator.Validate(ctx, tok); second.status != 201 || err == nil {
		t.Errorf("after a second POST (%d) the first token still works", second.status)
	}
	for range 2 {
		if got := adminCall(t, env.api, "DELETE", path, ""); got.status != 204 || got.body != "" {
			t.Errorf("DELETE: %d %q, want 204 with no body", got.status, got.body)
		}
	}
	newer, _ := second.object(t)["token"].(string)
	if _, err := env.app.state.validator.Validate(ctx, newer); err == nil {
		t.Error("the token still works after DELETE")
	}
	want := "personal token activated,personal token rotated,personal token deactivated"
	if got := strings.Join(env.auditMessages(), ","); got != want {
		t.Errorf("audit %q, want %q", got, want)
	}
	if got := adminCall(t, env.api, "POST", "/tokengate/users/bad%0Aid/personal-token", ""); got.status != 400 {
		t.Errorf("a user id with a newline: %d, want 400", got.status)
	}
	if got := adminCall(t, env.api, "POST", path, strings.Repeat("x", maxAdminBody+1)); got.status != 413 {
		t.Errorf("a body above 64 KiB: %d, want 413", got.status)
	}
}
