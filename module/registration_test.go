package module

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// regEnv is the registration endpoint on /oauth/register over the admin
// API's test app (newAdminEnv), open unless a test sets an initial access
// token.
type regEnv struct {
	*adminEnv
	endpoints *Endpoints
}

func newRegEnv(t *testing.T) *regEnv {
	t.Helper()
	env := newAdminEnv(t)
	env.app.Registration = &RegistrationConfig{Open: true}
	// The limiters are per store; each test its own.
	env.app.stateKey = t.Name()
	e := &Endpoints{
		Authorize: "/oauth/authorize", Token: "/oauth/token", Revoke: "/oauth/revoke",
		Introspect: "/oauth/introspect", APIToken: "/api-token", Grants: "/oauth/grants",
		Registration: "/oauth/register", app: env.app, logger: zap.NewNop(),
	}
	return &regEnv{adminEnv: env, endpoints: e}
}

// call sends a request from addr (a default one when empty); headers are
// name, value pairs. JSON bodies get their Content-Type unless one is
// given.
func (e *regEnv) call(t *testing.T, method, path, body, addr string, headers ...string) adminAnswer {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if addr != "" {
		r.RemoteAddr = addr + ":4711"
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	if err := e.endpoints.ServeHTTP(w, r, next); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return adminAnswer{w.Code, w.Header(), w.Body.String()}
}

// register registers body and returns the answer's object.
func (e *regEnv) register(t *testing.T, body string) map[string]any {
	t.Helper()
	got := e.call(t, "POST", "/oauth/register", body, "")
	if got.status != http.StatusCreated {
		t.Fatalf("POST /oauth/register %s: %d %s, want 201", body, got.status, got.body)
	}
	return got.object(t)
}

const regPublic = `{"redirect_uris":["http://127.0.0.1/callback"],"client_name":"Agent","token_endpoint_auth_method":"none","scope":"chargers:read sessions:read","software_id":"ignored","logo_uri":"https://x.example/logo.png"}`

// TestRegisterClient: a registration (RFC 7591 3.1) answers 201 with the
// metadata as stored and the credentials (RFC 7591 3.2.1); the client is
// a stored client of source registration, in every flow and the admin
// API, and its addition is in the audit log.
func TestRegisterClient(t *testing.T) {
	env := newRegEnv(t)
	got := env.call(t, "POST", "/oauth/register", regPublic, "")
	if got.status != 201 || got.header.Get("Cache-Control") != "no-store" || got.header.Get("Pragma") != "no-cache" {
		t.Fatalf("POST: %d %v %s", got.status, got.header, got.body)
	}
	obj := got.object(t)
	id, _ := obj["client_id"].(string)
	token, _ := obj["registration_access_token"].(string)
	if !strings.HasPrefix(id, "c_") || !strings.HasPrefix(token, "tgx_") {
		t.Fatalf("client_id %q, registration_access_token %.4s...", id, token)
	}
	if _, ok := obj["client_secret"]; ok {
		t.Errorf("a public client got a secret: %s", got.body)
	}
	issued, _ := obj["client_id_issued_at"].(float64)
	delete(obj, "client_id_issued_at")
	want := map[string]any{
		"client_id": id, "client_secret_expires_at": 0.0,
		"registration_access_token": token, "registration_client_uri": "https://api.example.com/oauth/register/" + id,
		"client_name": "Agent", "redirect_uris": []any{"http://127.0.0.1/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []any{"authorization_code", "refresh_token"},
		"response_types": []any{"code"}, "scope": "chargers:read sessions:read",
	}
	if !reflect.DeepEqual(obj, want) || issued == 0 {
		t.Errorf("answer %s\nwant  %v and client_id_issued_at", got.body, want)
	}

	rec, err := env.app.state.store.GetClient(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	if rec.Source != "registration" || string(rec.RegistrationTokenHash) != string(sum[:]) || rec.CreatedAt.Unix() != int64(issued) {
		t.Errorf("stored %+v", rec)
	}
	if c, err := env.app.registry.FindClient(context.Background(), id); err != nil || c.Confidential() || !c.MatchRedirectURI("http://127.0.0.1:5000/callback") {
		t.Errorf("FindClient: %+v %v", c, err)
	}
	listed := adminCall(t, env.api, "GET", "/tokengate/clients/"+id, "")
	if o := listed.object(t); o["source"] != "registration" || o["public"] != true || o["name"] != "Agent" {
		t.Errorf("admin API: %s", listed.body)
	}
	if msgs := env.auditMessages(); len(msgs) == 0 || msgs[len(msgs)-1] != "client added" {
		t.Errorf("audit %v", msgs)
	}

	// The defaults (RFC 7591 2): a confidential client named by its id,
	// with every declared scope.
	conf := env.register(t, `{"redirect_uris":["https://agent.example/cb"]}`)
	if s, _ := conf["client_secret"].(string); !strings.HasPrefix(s, "tgs_") ||
		conf["token_endpoint_auth_method"] != "client_secret_basic" || conf["client_name"] != conf["client_id"] ||
		conf["scope"] != "chargers:read sessions:read energy:read" {
		t.Errorf("defaults: %v", conf)
	}
	c, err := env.app.registry.Authenticate(context.Background(), conf["client_id"].(string), conf["client_secret"].(string), true)
	if err != nil || !c.Confidential() {
		t.Errorf("the confidential client cannot authenticate: %v", err)
	}
	post := env.register(t, `{"redirect_uris":["https://agent.example/cb"],"token_endpoint_auth_method":"client_secret_post","grant_types":["authorization_code"],"response_types":["code"]}`)
	if post["client_secret"] == nil || !reflect.DeepEqual(post["grant_types"], []any{"authorization_code"}) {
		t.Errorf("client_secret_post: %v", post)
	}

	// The metadata document names the endpoint; without the path, not.
	meta := env.call(t, "GET", metadataPath, "", "")
	if !strings.Contains(meta.body, `"registration_endpoint":"https://api.example.com/oauth/register"`) {
		t.Errorf("metadata: %s", meta.body)
	}
	env.endpoints.Registration = ""
	if meta := env.call(t, "GET", metadataPath, "", ""); strings.Contains(meta.body, "registration_endpoint") {
		t.Errorf("metadata without registration: %s", meta.body)
	}
	if got := env.call(t, "POST", "/oauth/register", regPublic, ""); got.status != http.StatusTeapot {
		t.Errorf("POST with the endpoint off: %d, want it passed on", got.status)
	}
}

// TestRegisterMachineClient: a client may register for client_credentials
// alone, with no redirect URI, and ask for DPoP-bound tokens (RFC 9449
// 5.2); it then gets a client token and nothing that needs a browser.
func TestRegisterMachineClient(t *testing.T) {
	env := newRegEnv(t)
	obj := env.register(t, `{"client_name":"Tariff sync","grant_types":["client_credentials"],"scope":"energy:read","dpop_bound_access_tokens":true}`)
	if !reflect.DeepEqual(obj["grant_types"], []any{"client_credentials"}) || obj["dpop_bound_access_tokens"] != true ||
		!reflect.DeepEqual(obj["redirect_uris"], []any{}) {
		t.Fatalf("answer %v", obj)
	}
	ctx := context.Background()
	c, err := env.app.registry.Authenticate(ctx, obj["client_id"].(string), obj["client_secret"].(string), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, oerr := env.app.auth.ClientCredentials(ctx, c, ""); oerr == nil || oerr.Code != "invalid_dpop_proof" {
		t.Errorf("client_credentials without a proof: %v, want invalid_dpop_proof (dpop required)", oerr)
	}
	if _, oerr := env.app.auth.ClientCredentialsDPoP(ctx, c, "", "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"); oerr != nil {
		t.Errorf("client_credentials with a proof key: %v", oerr)
	}
	if _, oerr := env.app.auth.Exchange(ctx, c, "tgc_x", "https://a.example/cb", ""); oerr == nil || oerr.Code != "unauthorized_client" {
		t.Errorf("authorization_code for a machine client: %v, want unauthorized_client", oerr)
	}
}

// TestRegisterClientErrors: what breaks a rule of the config's clients is
// 400 invalid_redirect_uri or invalid_client_metadata, naming the culprit
// (RFC 7591 3.2.2); nothing is stored.
func TestRegisterClientErrors(t *testing.T) {
	env := newRegEnv(t)
	for _, c := range []struct {
		name, contentType, body, code, description string
	}{
		{"no redirect_uris", "", `{"client_name":"x"}`, "invalid_redirect_uri", "redirect_uris must list at least one redirect URI"},
		{"empty redirect_uris", "", `{"redirect_uris":[]}`, "invalid_redirect_uri", "at least one"},
		{"http redirect URI, not loopback (RFC 8252 8.3)", "", `{"redirect_uris":["http://agent.example/cb"]}`, "invalid_redirect_uri", `redirect_uri "http://agent.example/cb" uses http with a host that is not loopback`},
		{"redirect URI with a fragment (RFC 6749 3.1.2)", "", `{"redirect_uris":["https://agent.example/cb#x"]}`, "invalid_redirect_uri", `"https://agent.example/cb#x" must not have a fragment`},
		{"relative redirect URI", "", `{"redirect_uris":["/cb"]}`, "invalid_redirect_uri", `"/cb" is not an absolute URI`},
		{"redirect_uris not an array", "", `{"redirect_uris":"https://agent.example/cb"}`, "invalid_client_metadata", "redirect_uris must be an array of strings"},
		{"client_name not a string", "", `{"redirect_uris":["https://a.example/cb"],"client_name":7}`, "invalid_client_metadata", "client_name must be a string"},
		{"client_name with a control character", "", `{"redirect_uris":["https://a.example/cb"],"client_name":"a\u0007b"}`, "invalid_client_metadata", "client_name: name must not contain control characters"},
		{"unsupported auth method", "", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, "invalid_client_metadata", `token_endpoint_auth_method "private_key_jwt" is not supported`},
		{"unsupported grant type", "", `{"redirect_uris":["https://a.example/cb"],"grant_types":["authorization_code","implicit"]}`, "invalid_client_metadata", `grant_types: "implicit" is not supported`},
		{"refresh_token alone", "", `{"redirect_uris":["https://a.example/cb"],"grant_types":["refresh_token"]}`, "invalid_client_metadata", "grant_types must include authorization_code, client_credentials or"},
		{"client_credentials for a public client", "", `{"token_endpoint_auth_method":"none","grant_types":["client_credentials"]}`, "invalid_client_metadata", "grant_types: grant type client_credentials needs a confidential client"},
		{"authorization_code without redirect URIs", "", `{"grant_types":["authorization_code"]}`, "invalid_redirect_uri", "redirect_uris must list at least one"},
		{"dpop_bound_access_tokens not a boolean", "", `{"redirect_uris":["https://a.example/cb"],"dpop_bound_access_tokens":"yes"}`, "invalid_client_metadata", "dpop_bound_access_tokens must be true or false"},
		{"unsupported response type", "", `{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`, "invalid_client_metadata", `response_types: "token" is not supported`},
		{"undeclared scope", "", `{"redirect_uris":["https://a.example/cb"],"scope":"chargers:read chargers:delete"}`, "invalid_client_metadata", `scope: "chargers:delete" is not a scope of this server`},
		{"scope not a string", "", `{"redirect_uris":["https://a.example/cb"],"scope":["chargers:read"]}`, "invalid_client_metadata", "scope must be a string"},
		{"client_name above 8 KiB", "", `{"redirect_uris":["https://a.example/cb"],"client_name":"` + strings.Repeat("a", 8193) + `"}`, "invalid_client_metadata", "client_name is longer than 8192 bytes"},
		{"a redirect URI above 8 KiB", "", `{"redirect_uris":["https://a.example/` + strings.Repeat("a", 8193) + `"]}`, "invalid_client_metadata", "a value of redirect_uris is longer than 8192 bytes"},
		{"not JSON", "", `redirect_uris=https://a.example/cb`, "invalid_client_metadata", "the body must be one JSON object"},
		{"a JSON array", "", `[{"redirect_uris":["https://a.example/cb"]}]`, "invalid_client_metadata", "the body must be one JSON object"},
		{"JSON null", "", `null`, "invalid_client_metadata", "the body must be one JSON object"},
		{"a form body", "application/x-www-form-urlencoded", `redirect_uris=https://a.example/cb`, "invalid_client_metadata", "the body must be application/json"},
		{"invalid UTF-8", "", "{\"redirect_uris\":[\"https://a.example/cb\"],\"client_name\":\"\xff\"}", "invalid_client_metadata", "not valid UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var headers []string
			if c.contentType != "" {
				headers = []string{"Content-Type", c.contentType}
			}
			got := env.call(t, "POST", "/oauth/register", c.body, "", headers...)
			var e oauthError
			if err := json.Unmarshal([]byte(got.body), &e); err != nil || got.status != 400 || e.Error != c.code || !strings.Contains(e.Description, c.description) {
				t.Errorf("%d %s, want 400 %s with %q", got.status, got.body, c.code, c.description)
			}
		})
	}
	if list, _ := env.app.state.store.ListClients(context.Background()); len(list) != 0 {
		t.Errorf("refused registrations stored %d clients", len(list))
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		if got := env.call(t, m, "/oauth/register", "", ""); got.status != 405 || got.header.Get("Allow") != "POST" {
			t.Errorf("%s /oauth/register: %d Allow %q", m, got.status, got.header.Get("Allow"))
		}
	}
	if got := env.call(t, "POST", "/oauth/register/c_1", "", ""); got.status != 405 || got.header.Get("Allow") != "GET, PUT, DELETE" {
		t.Errorf("POST on a client's URL: %d Allow %q", got.status, got.header.Get("Allow"))
	}
	if got := env.call(t, "POST", "/oauth/register", `{"pad":"`+strings.Repeat("x", maxBodyBytes)+`"}`, ""); got.status != 413 {
		t.Errorf("a body above the limit: %d", got.status)
	}
}

// TestRegistrationInitialAccessToken: with registration token, POST
// needs the initial access token as a bearer token (RFC 7591 3); any
// other answer is 401 invalid_token.
func TestRegistrationInitialAccessToken(t *testing.T) {
	env := newRegEnv(t)
	env.app.Registration = &RegistrationConfig{InitialAccessToken: "{env.TOKENGATE_TEST_IAT}"}
	t.Setenv("TOKENGATE_TEST_IAT", "initial-access-token-0123456789")
	var err error
	if env.app.registrationTokenHash, err = env.app.resolveRegistrationToken(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, authorization, challenge string
	}{
		{"no token", "", `Bearer realm="tokengate"`},
		{"wrong token", "Bearer initial-access-token-012345678", `Bearer realm="tokengate", error="invalid_token"`},
		{"longer token", "Bearer initial-access-token-0123456789x", `Bearer realm="tokengate", error="invalid_token"`},
		{"the placeholder as written", "Bearer {env.TOKENGATE_TEST_IAT}", `Bearer realm="tokengate", error="invalid_token"`},
		{"Basic", "Basic aW5pdGlhbDp4", `Bearer realm="tokengate", error="invalid_token"`},
	} {
		var headers []string
		if c.authorization != "" {
			headers = []string{"Authorization", c.authorization}
		}
		got := env.call(t, "POST", "/oauth/register", regPublic, "", headers...)
		if got.status != 401 || got.header.Get("WWW-Authenticate") != c.challenge || !strings.Contains(got.body, `"error":"invalid_token"`) {
			t.Errorf("%s: %d %q %s", c.name, got.status, got.header.Get("WWW-Authenticate"), got.body)
		}
	}
	if got := env.call(t, "POST", "/oauth/register", regPublic, "", "Authorization", "bearer  initial-access-token-0123456789"); got.status != 201 {
		t.Errorf("with the token: %d %s", got.status, got.body)
	}

	// The token must be one a bearer header can carry.
	t.Setenv("TOKENGATE_TEST_IAT", "has space")
	if _, err := env.app.resolveRegistrationToken(caddy.NewReplacer()); err == nil || !strings.Contains(err.Error(), "registration token must be") {
		t.Errorf("a token with a space: %v", err)
	}
	t.Setenv("TOKENGATE_TEST_IAT", "")
	if _, err := env.app.resolveRegistrationToken(caddy.NewReplacer()); err == nil || !strings.Contains(err.Error(), "registration token: placeholder {env.TOKENGATE_TEST_IAT} is empty") {
		t.Errorf("an empty placeholder: %v", err)
	}
}

// TestRegistrationLimit: at most 10 registrations an hour from one
// address, then 429 with Retry-After; refused requests do not count, and
// another address is not held back.
func TestRegistrationLimit(t *testing.T) {
	env := newRegEnv(t)
	for i := range maxRegistrations {
		if got := env.call(t, "POST", "/oauth/register", `{"redirect_uris":[]}`, "198.51.100.7"); got.status != 400 {
			t.Fatalf("bad request %d: %d", i, got.status)
		}
		if got := env.call(t, "POST", "/oauth/register", regPublic, "198.51.100.7"); got.status != 201 {
			t.Fatalf("registration %d: %d %s", i+1, got.status, got.body)
		}
	}
	got := env.call(t, "POST", "/oauth/register", regPublic, "198.51.100.7")
	if got.status != 429 || got.header.Get("Retry-After") == "" || got.header.Get("Retry-After") == "0" {
		t.Errorf("registration %d: %d Retry-After %q, want 429", maxRegistrations+1, got.status, got.header.Get("Retry-After"))
	}
	if got := env.call(t, "POST", "/oauth/register", regPublic, "198.51.100.8"); got.status != 201 {
		t.Errorf("another address: %d", got.status)
	}
	if list, _ := env.app.state.store.ListClients(context.Background()); len(list) != maxRegistrations+1 {
		t.Errorf("%d clients stored, want %d", len(list), maxRegistrations+1)
	}
}

// TestClientConfiguration: the registration access token reads, replaces
// and removes its client (RFC 7592 2); without it, or with any other
// token, every request gets the same 401, whether the client exists or
// not.
func TestClientConfiguration(t *testing.T) {
	env := newRegEnv(t)
	conf := env.register(t, `{"redirect_uris":["https://agent.example/cb"],"client_name":"Agent","scope":"chargers:read"}`)
	id, token, secret := conf["client_id"].(string), conf["registration_access_token"].(string), conf["client_secret"].(string)
	other := env.register(t, regPublic)
	uri := "/oauth/register/" + id
	bearer := []string{"Authorization", "Bearer " + token}

	// Read (RFC 7592 2.1): the metadata as registered, without the secret.
	got := env.call(t, "GET", uri, "", "", bearer...)
	read := got.object(t)
	delete(conf, "client_secret")
	if got.status != 200 || got.header.Get("Cache-Control") != "no-store" || !reflect.DeepEqual(read, conf) {
		t.Errorf("GET: %d %s\nwant %v", got.status, got.body, conf)
	}

	// Refusals look alike.
	refused := func(what, method, path, body string, headers ...string) {
		t.Helper()
		got := env.call(t, method, path, body, "", headers...)
		if got.status != 401 || !strings.Contains(got.body, `"error":"invalid_token"`) || !strings.HasPrefix(got.header.Get("WWW-Authenticate"), `Bearer realm="tokengate"`) {
			t.Errorf("%s: %d %q %s", what, got.status, got.header.Get("WWW-Authenticate"), got.body)
		}
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		body := ""
		if m == "PUT" {
			body = `{"client_id":"` + id + `","redirect_uris":["https://agent.example/cb"]}`
		}
		refused(m+" without a token", m, uri, body)
		refused(m+" with another client's token", m, uri, body, "Authorization", "Bearer "+other["registration_access_token"].(string))
		refused(m+" with the client secret", m, uri, body, "Authorization", "Bearer "+secret)
		refused(m+" with a made-up token", m, uri, body, "Authorization", "Bearer tgx_made_up")
		refused(m+" on a client that does not exist", m, "/oauth/register/c_nothere", body, bearer...)
		refused(m+" on a client of the config", m, "/oauth/register/home-app", body, bearer...)
	}
	wrong := env.call(t, "GET", uri, "", "", "Authorization", "Bearer tgx_made_up")
	missing := env.call(t, "GET", "/oauth/register/c_nothere", "", "", "Authorization", "Bearer tgx_made_up")
	if wrong.body != missing.body || wrong.header.Get("WWW-Authenticate") != missing.header.Get("WWW-Authenticate") {
		t.Errorf("a wrong token on a client (%s) and on none (%s) differ", wrong.body, missing.body)
	}

	// Update (RFC 7592 2.2): the whole metadata again, with client_id.
	for _, c := range []struct{ name, body, want string }{
		{"no client_id", `{"redirect_uris":["https://agent.example/cb"]}`, `client_id must be given and be \"` + id + `\"`},
		{"another client_id", `{"client_id":"c_x","redirect_uris":["https://agent.example/cb"]}`, "client_id must be given"},
		{"a wrong client_secret", `{"client_id":"` + id + `","client_secret":"tgs_x","redirect_uris":["https://agent.example/cb"]}`, "client_secret is not the client's secret"},
		{"becoming public", `{"client_id":"` + id + `","token_endpoint_auth_method":"none","redirect_uris":["https://agent.example/cb"]}`, "token_endpoint_auth_method cannot change"},
		{"a bad redirect URI", `{"client_id":"` + id + `","redirect_uris":["http://agent.example/cb"]}`, "uses http with a host that is not loopback"},
	} {
		got := env.call(t, "PUT", uri, c.body, "", bearer...)
		if got.status != 400 || !strings.Contains(got.body, c.want) {
			t.Errorf("PUT, %s: %d %s, want 400 with %q", c.name, got.status, got.body, c.want)
		}
	}
	got = env.call(t, "PUT", uri, `{"client_id":"`+id+`","client_secret":"`+secret+`","client_name":"Agent 2","redirect_uris":["https://agent.example/cb2"],"scope":"sessions:read","registration_access_token":"ignored"}`, "", bearer...)
	updated := got.object(t)
	if got.status != 200 || updated["client_name"] != "Agent 2" || !reflect.DeepEqual(updated["redirect_uris"], []any{"https://agent.example/cb2"}) ||
		updated["scope"] != "sessions:read" || updated["registration_access_token"] != token || updated["client_secret"] != nil {
		t.Errorf("PUT: %d %s", got.status, got.body)
	}
	if c, err := env.app.registry.FindClient(context.Background(), id); err != nil || c.Name != "Agent 2" || !c.MatchRedirectURI("https://agent.example/cb2") {
		t.Errorf("after PUT the flows see %+v, %v", c, err)
	}
	if msgs := env.auditMessages(); msgs[len(msgs)-1] != "client updated" {
		t.Errorf("audit %v", msgs)
	}

	// Delete (RFC 7592 2.3), as the admin API deletes.
	if got := env.call(t, "DELETE", uri, "", "", bearer...); got.status != 204 {
		t.Fatalf("DELETE: %d %s", got.status, got.body)
	}
	refused("GET after DELETE", "GET", uri, "", bearer...)
	if _, err := env.app.registry.FindClient(context.Background(), id); err == nil {
		t.Error("the deleted client is still found")
	}
	if msgs := env.auditMessages(); msgs[len(msgs)-1] != "client removed" {
		t.Errorf("audit %v", msgs)
	}
	// A registered client the admin API removes is gone for its token too.
	otherID, otherToken := other["client_id"].(string), other["registration_access_token"].(string)
	if got := adminCall(t, env.api, "DELETE", "/tokengate/clients/"+otherID, ""); got.status != 204 {
		t.Fatalf("admin DELETE: %d %s", got.status, got.body)
	}
	refused("GET after the admin API's DELETE", "GET", "/oauth/register/"+otherID, "", "Authorization", "Bearer "+otherToken)
}

// TestRegistrationPathNeedsOption: in JSON as in a Caddyfile, a
// registration path without the app's registration option is a config
// error that says what is missing.
func TestRegistrationPathNeedsOption(t *testing.T) {
	raw := `{
		"admin": {"disabled": true},
		"apps": {
			"tokengate": ` + testAppJSON(sqliteDatabase(t.TempDir()+"/tg.db")) + `,
			"http": {"servers": {"s": {
				"listen": ["127.0.0.1:0"],
				"automatic_https": {"disable": true},
				"routes": [{"handle": [{"handler": "tokengate_endpoints", "registration": "/oauth/register"}]}]
			}}}
		}
	}`
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	err := caddy.Validate(&cfg)
	if err == nil || !strings.Contains(err.Error(), "the registration path /oauth/register needs the registration global option") {
		t.Errorf("caddy.Validate: %v", err)
	}
}
