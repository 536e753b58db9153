package module

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/caddy-tokengate/oauth"
)

const meterSecret = "meter-secret-0123456789"

// machineEnv is a started app on a fresh SQLite store with the static
// clients home-app (confidential, default grant types), mobile (public)
// and meter (confidential, client_credentials only, two of the three
// declared scopes), its endpoints and its admin API.
type machineEnv struct {
	app       *App
	endpoints *Endpoints
	api       *AdminAPI
	audit     *observer.ObservedLogs
}

func newMachineEnv(t *testing.T, clients ...ClientConfig) *machineEnv {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	if clients == nil {
		clients = []ClientConfig{
			{ID: "home-app", Secret: "home-secret", RedirectURIs: []string{"https://home.example.com/cb"}},
			{ID: "mobile", RedirectURIs: []string{"com.example.mobile:/oauth"}},
			{ID: "meter", Secret: meterSecret, Scopes: []string{"energy:read", "chargers:read"}, GrantTypes: []string{"client_credentials"}},
		}
	}
	app := &App{
		Issuer:  "https://api.example.com",
		Scopes:  []ScopeConfig{{Name: "chargers:read"}, {Name: "sessions:read"}, {Name: "energy:read"}},
		Clients: clients,
		metrics: tokengateMetrics(),
		logger:  zap.NewNop(),
		audit:   auditLog{logger: zap.New(core)},
	}
	if err := app.Validate(); err != nil {
		t.Fatal(err)
	}
	startOnTestStore(t, app)
	e := &Endpoints{
		Authorize: "/oauth/authorize", Token: "/oauth/token", Revoke: "/oauth/revoke",
		Introspect: "/oauth/introspect", APIToken: "/api-token",
		app: app, logger: zap.NewNop(), consentPage: defaultConsentTemplate,
	}
	return &machineEnv{app: app, endpoints: e, api: &AdminAPI{app: app, logger: zap.NewNop()}, audit: logs}
}

// post sends a form to the endpoints, with HTTP Basic for id and secret
// when id is set, and returns the answer.
func (env *machineEnv) post(t *testing.T, path, id, secret string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Fatalf("%s passed to the next handler", path)
		return nil
	})
	if err := env.endpoints.ServeHTTP(w, r, next); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return w
}

// counterValue reads a Prometheus counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func jsonObject(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%q is not a JSON object: %v", body, err)
	}
	return m
}

// clientToken gets a client_credentials token for meter with scope.
func (env *machineEnv) clientToken(t *testing.T, scope string) map[string]any {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	w := env.post(t, "/oauth/token", "meter", meterSecret, form)
	if w.Code != http.StatusOK {
		t.Fatalf("client_credentials: %d %s", w.Code, w.Body)
	}
	return jsonObject(t, w.Body.String())
}

// TestTokenEndpointClientCredentials: RFC 6749 4.4.2 and 4.4.3 at the token
// endpoint, and unauthorized_client (RFC 6749 5.2) for every grant a
// client's grant types leave out.
func TestTokenEndpointClientCredentials(t *testing.T) {
	env := newMachineEnv(t)

	form := url.Values{"grant_type": {"client_credentials"}}
	w := env.post(t, "/oauth/token", "meter", meterSecret, form)
	if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("client_credentials: %d %v %s", w.Code, w.Header(), w.Body)
	}
	got := jsonObject(t, w.Body.String())
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"access_token", "expires_in", "scope", "token_type"}; !slices.Equal(keys, want) {
		t.Errorf("members %v, want %v: never a refresh_token", keys, want)
	}
	if got["token_type"] != "Bearer" || got["expires_in"] != float64(3600) || got["scope"] != "chargers:read energy:read" {
		t.Errorf("answer %v; want Bearer, 3600, the client's scopes in declared order", got)
	}
	if tok, _ := got["access_token"].(string); !strings.HasPrefix(tok, "tga_") {
		t.Errorf("access_token %q is not a tga_ token", oauth.TokenHint(tok))
	}
	if s := env.clientToken(t, "energy:read")["scope"]; s != "energy:read" {
		t.Errorf("scope energy:read gave %v", s)
	}
	if n := counterValue(t, env.app.metrics.issuedByGrant[oauth.GrantClientCredentials]); n != 2 {
		t.Errorf("tokens_issued_total{grant=client_credentials} = %v, want 2", n)
	}

	for _, tc := range []struct {
		name, id, secret string
		form             url.Values
		status           int
		code             string
	}{
		{"RFC 6749 3.3 a scope the client may not ask for", "meter", meterSecret,
			url.Values{"grant_type": {"client_credentials"}, "scope": {"sessions:read"}}, 400, "invalid_scope"},
		{"RFC 6749 4.4 a public client", "", "",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {"mobile"}}, 400, "unauthorized_client"},
		{"a client without client_credentials", "home-app", "home-secret",
			url.Values{"grant_type": {"client_credentials"}}, 400, "unauthorized_client"},
		{"a client without authorization_code", "meter", meterSecret,
			url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {"https://x.example/cb"}, "code_verifier": {strings.Repeat("v", 43)}}, 400, "unauthorized_client"},
		{"a client without refresh_token", "meter", meterSecret,
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, 400, "unauthorized_client"},
		{"a wrong secret is still invalid_client", "meter", "wrong",
			url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
		{"an unknown grant", "meter", meterSecret,
			url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := env.post(t, "/oauth/token", tc.id, tc.secret, tc.form)
			if w.Code != tc.status || jsonObject(t, w.Body.String())["error"] != tc.code {
				t.Errorf("%d %s, want %d %s", w.Code, w.Body, tc.status, tc.code)
			}
		})
	}

	// One audit line for each token, with the client and no user.
	lines := env.audit.FilterMessage(oauth.AuditTokenIssued).All()
	if len(lines) != 2 {
		t.Fatalf("%d token issued lines, want 2", len(lines))
	}
	f := lines[0].ContextMap()
	if f["client_id"] != "meter" || f["grant"] != "client_credentials" || f["user_id"] != nil {
		t.Errorf("audit fields %v; want client meter, grant client_credentials, no user", f)
	}
}

// TestClientTokenIdentity: the guard, upstream_jwt and introspection name
// the client itself for a client token.
func TestClientTokenIdentity(t *testing.T) {
	env := newMachineEnv(t)
	tok := env.clientToken(t, "")["access_token"].(string)

	signer, err := newUpstreamSigner(&UpstreamJWT{Secret: "upstream-secret-0123456789abcdef"}, "https://api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	g := &Guard{Methods: map[string][]string{"GET": {"energy:read"}}, app: env.app, metrics: env.app.metrics,
		logger: zap.NewNop(), upstream: signer}
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/energy", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("X-Authenticated-Userid", "spoofed-user")
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	var seen http.Header
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Clone()
		return nil
	})
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if seen == nil {
		t.Fatal("a valid client token did not reach the next handler")
	}
	for name, want := range map[string]string{
		headerUserID: "", headerClientID: "meter", headerTokenType: "client", headerScope: "chargers:read energy:read",
	} {
		if got := seen[name]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]string{
		"http.auth.user.id": "", "http.auth.user.client_id": "meter", "http.auth.user.token_type": "client",
	} {
		if got, _ := repl.GetString(name); got != want {
			t.Errorf("{%s} = %q, want %q", name, got, want)
		}
	}
	claims := jwt.MapClaims{}
	upstream := strings.TrimPrefix(seen.Get("Authorization"), "Bearer ")
	if _, err := jwt.ParseWithClaims(upstream, claims, func(*jwt.Token) (any, error) {
		return []byte("upstream-secret-0123456789abcdef"), nil
	}); err != nil {
		t.Fatalf("upstream JWT: %v", err)
	}
	if claims["sub"] != "meter" || claims["client_id"] != "meter" {
		t.Errorf("upstream JWT sub %v, client_id %v; want meter for both", claims["sub"], claims["client_id"])
	}

	// RFC 7662 2.2: sub is the client.
	w := env.post(t, "/oauth/introspect", "meter", meterSecret, url.Values{"token": {tok}})
	got := jsonObject(t, w.Body.String())
	if w.Code != http.StatusOK || got["active"] != true || got["sub"] != "meter" || got["client_id"] != "meter" {
		t.Errorf("introspection %d %v; want active with sub and client_id meter", w.Code, got)
	}
}

func (env *machineEnv) grantTypesSupported(t *testing.T) []string {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, metadataPath, nil)
	w := httptest.NewRecorder()
	if err := env.endpoints.ServeHTTP(w, r, nil); err != nil {
		t.Fatal(err)
	}
	var m struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	return m.GrantTypes
}

// TestMetadataGrantTypes: RFC 8414 2 grant_types_supported lists
// client_credentials and the device grant only while some client, of the
// config or stored, may use them.
func TestMetadataGrantTypes(t *testing.T) {
	defaults := []string{"authorization_code", "refresh_token"}
	if got := newMachineEnv(t).grantTypesSupported(t); !slices.Equal(got, append(defaults, "client_credentials")) {
		t.Errorf("with a client_credentials client of the config: %v", got)
	}

	env := newMachineEnv(t, ClientConfig{ID: "home-app", Secret: "s", RedirectURIs: []string{"https://home.example.com/cb"}})
	if got := env.grantTypesSupported(t); !slices.Equal(got, defaults) {
		t.Errorf("with no such client: %v, want %v", got, defaults)
	}
	add := adminCall(t, env.api, "POST", "/tokengate/clients",
		`{"client_id":"robot","name":"Robot","grant_types":["client_credentials","urn:ietf:params:oauth:grant-type:device_code"]}`)
	if add.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", add.status, add.body)
	}
	want := append(slices.Clone(defaults), "client_credentials", "urn:ietf:params:oauth:grant-type:device_code")
	if got := env.grantTypesSupported(t); !slices.Equal(got, want) {
		t.Errorf("with a stored client of both: %v, want %v", got, want)
	}
	if del := adminCall(t, env.api, "DELETE", "/tokengate/clients/robot", ""); del.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", del.status, del.body)
	}
	if got := env.grantTypesSupported(t); !slices.Equal(got, defaults) {
		t.Errorf("after its removal: %v, want %v", got, defaults)
	}
}

// TestAdminClientGrantTypes: the admin API takes and shows grant_types,
// applies their rules, and removing a client stops its own tokens.
func TestAdminClientGrantTypes(t *testing.T) {
	env := newMachineEnv(t)
	got := adminCall(t, env.api, "POST", "/tokengate/clients",
		`{"client_id":"robot","name":"Robot","scopes":["energy:read"],"grant_types":["client_credentials","client_credentials"]}`)
	if got.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", got.status, got.body)
	}
	obj := got.object(t)
	secret, _ := obj["client_secret"].(string)
	if !reflect.DeepEqual(obj["grant_types"], []any{"client_credentials"}) || !reflect.DeepEqual(obj["redirect_uris"], []any{}) {
		t.Errorf("POST answer %v; want grant_types [client_credentials] and no redirect URI", obj)
	}
	if g := adminCall(t, env.api, "GET", "/tokengate/clients/robot", "").object(t); !reflect.DeepEqual(g["grant_types"], []any{"client_credentials"}) {
		t.Errorf("GET grant_types %v", g["grant_types"])
	}
	if g := adminCall(t, env.api, "GET", "/tokengate/clients/home-app", "").object(t); !reflect.DeepEqual(g["grant_types"], []any{"authorization_code", "refresh_token"}) {
		t.Errorf("a static client's default grant_types shown as %v", g["grant_types"])
	}

	for _, tc := range []struct{ name, body, want string }{
		{"unknown grant type", `{"client_id":"x","name":"X","redirect_uris":["https://x.example/cb"],"grant_types":["password"]}`,
			`client "x": unknown grant type "password"`},
		{"RFC 6749 4.4 client_credentials on a public client", `{"client_id":"x","name":"X","public":true,"grant_types":["client_credentials"]}`,
			`client "x": grant type client_credentials needs a confidential client`},
		{"the code flow needs a redirect URI", `{"client_id":"x","name":"X","grant_types":["authorization_code","client_credentials"]}`,
			`client "x" has no redirect_uri`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := adminCall(t, env.api, "POST", "/tokengate/clients", tc.body)
			if got.status != http.StatusBadRequest || !strings.Contains(got.errorMessage(t), tc.want) {
				t.Errorf("%d %s, want 400 with %q", got.status, got.body, tc.want)
			}
		})
	}

	form := url.Values{"grant_type": {"client_credentials"}}
	w := env.post(t, "/oauth/token", "robot", secret, form)
	if w.Code != http.StatusOK {
		t.Fatalf("client_credentials for the stored client: %d %s", w.Code, w.Body)
	}
	tok := jsonObject(t, w.Body.String())["access_token"].(string)
	valid := func() bool {
		_, err := env.app.state.validator.Validate(context.Background(), tok)
		return err == nil
	}
	if !valid() {
		t.Fatal("the stored client's token is refused")
	}

	// PUT takes grant_types away: the grant is refused from then on, the
	// token already issued runs out.
	put := adminCall(t, env.api, "PUT", "/tokengate/clients/robot",
		`{"name":"Robot","redirect_uris":["https://robot.example/cb"],"grant_types":["authorization_code"]}`)
	if put.status != http.StatusOK || !reflect.DeepEqual(put.object(t)["grant_types"], []any{"authorization_code"}) {
		t.Fatalf("PUT: %d %s", put.status, put.body)
	}
	if w := env.post(t, "/oauth/token", "robot", secret, form); w.Code != http.StatusBadRequest ||
		jsonObject(t, w.Body.String())["error"] != "unauthorized_client" {
		t.Errorf("client_credentials after PUT: %d %s, want unauthorized_client", w.Code, w.Body)
	}
	if !valid() {
		t.Error("PUT revoked the token already issued")
	}
	put = adminCall(t, env.api, "PUT", "/tokengate/clients/robot", `{"name":"Robot","grant_types":["client_credentials"]}`)
	if put.status != http.StatusOK {
		t.Fatalf("PUT back: %d %s", put.status, put.body)
	}
	if del := adminCall(t, env.api, "DELETE", "/tokengate/clients/robot", ""); del.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", del.status, del.body)
	}
	if valid() {
		t.Error("the client's own token still works after its removal")
	}
}

// TestSelfClientsGrantTypes: a user's own clients take grant_types too,
// with the same rules.
func TestSelfClientsGrantTypes(t *testing.T) {
	env := newSelfEnv(t)
	obj, _ := env.create(t, "alice", `{"name":"Alice's meter","scopes":["energy:read"],"grant_types":["client_credentials"]}`)
	if !reflect.DeepEqual(obj["grant_types"], []any{"client_credentials"}) || obj["owner"] != "alice" {
		t.Errorf("POST answer %v; want grant_types [client_credentials], owner alice", obj)
	}
	got := env.call(t, "alice", "POST", "/oauth/clients", `{"name":"P","public":true,"grant_types":["client_credentials"]}`)
	if got.status != http.StatusBadRequest || !strings.Contains(got.errorMessage(t), "needs a confidential client") {
		t.Errorf("public client_credentials client: %d %s, want 400", got.status, got.body)
	}
	obj, _ = env.create(t, "alice", selfBilling)
	if !reflect.DeepEqual(obj["grant_types"], []any{"authorization_code", "refresh_token"}) {
		t.Errorf("default grant_types %v", obj["grant_types"])
	}
}
