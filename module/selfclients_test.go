package module

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

const selfUserSecret = "self-service user secret of at least 32 bytes"

// selfEnv is the clients endpoint on /oauth/clients over the admin API's
// test app (newAdminEnv), with HS256 user JWTs and a limit of 2 clients
// a user.
type selfEnv struct {
	*adminEnv
	endpoints *Endpoints
}

func newSelfEnv(t *testing.T) *selfEnv {
	t.Helper()
	env := newAdminEnv(t)
	var err error
	env.app.Users = &UsersConfig{Cookie: "sb-access-token"}
	if env.app.users, err = oauth.NewUserVerifier(oauth.UserVerifierConfig{HS256Secret: []byte(selfUserSecret)}); err != nil {
		t.Fatal(err)
	}
	env.app.MaxClientsPerUser = 2
	e := &Endpoints{Grants: "/oauth/grants", Clients: "/oauth/clients", app: env.app, logger: zap.NewNop()}
	return &selfEnv{adminEnv: env, endpoints: e}
}

func selfUserJWT(t *testing.T, user string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(selfUserSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// call sends a request as user (none when empty) and returns the answer.
func (e *selfEnv) call(t *testing.T, user, method, path, body string) adminAnswer {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if user != "" {
		r.Header.Set("Authorization", "Bearer "+selfUserJWT(t, user))
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

const selfBilling = `{"name":"Billing","redirect_uris":["https://billing.example/cb"],"scopes":["chargers:read"]}`

// create registers a client as user and returns its object and secret.
func (e *selfEnv) create(t *testing.T, user, body string) (map[string]any, string) {
	t.Helper()
	got := e.call(t, user, "POST", "/oauth/clients", body)
	if got.status != http.StatusCreated {
		t.Fatalf("POST as %s: %d %s, want 201", user, got.status, got.body)
	}
	obj := got.object(t)
	secret, _ := obj["client_secret"].(string)
	delete(obj, "client_secret")
	return obj, secret
}

// clients: POST answers the client object with its owner and,
// once, its secret; GET lists the user's own clients only, and every
// answer is no-store.
func TestSelfClientsCreateAndList(t *testing.T) {
	env := newSelfEnv(t)
	alice, secret := env.create(t, "alice", selfBilling)
	id, _ := alice["client_id"].(string)
	if !strings.HasPrefix(id, "c_") || !strings.HasPrefix(secret, "tgs_") {
		t.Fatalf("client %q, secret %q: want a generated id and a secret", id, secret)
	}
	if want := append(slices.Clone(clientKeys), "owner"); !reflect.DeepEqual(keysOf(alice), sorted(want)) {
		t.Errorf("members %v, want %v", keysOf(alice), sorted(want))
	}
	if alice["owner"] != "alice" || alice["source"] != "store" || alice["public"] != false {
		t.Errorf("client %v: want owner alice, source store, confidential", alice)
	}
	env.create(t, "bob", `{"name":"Bob's","redirect_uris":["http://127.0.0.1/cb"],"public":true}`)

	list := env.call(t, "alice", "GET", "/oauth/clients", "")
	var objs []map[string]any
	if err := json.Unmarshal([]byte(list.body), &objs); err != nil || list.status != 200 {
		t.Fatalf("GET: %d %s", list.status, list.body)
	}
	if len(objs) != 1 || !reflect.DeepEqual(objs[0], alice) {
		t.Errorf("alice's clients = %s, want only %v", list.body, alice)
	}
	if strings.Contains(list.body, "secret") {
		t.Errorf("the list carries a secret: %s", list.body)
	}
	if none := env.call(t, "carol", "GET", "/oauth/clients", ""); none.body != "[]" {
		t.Errorf("carol's clients = %s, want []", none.body)
	}
	if got := env.call(t, "alice", "GET", "/oauth/clients/"+id, ""); got.status != 200 || !reflect.DeepEqual(got.object(t), alice) {
		t.Errorf("GET %s: %d %s, want %v", id, got.status, got.body, alice)
	}
	for _, h := range []string{"Cache-Control", "Pragma"} {
		if want := map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache"}[h]; list.header.Get(h) != want {
			t.Errorf("%s: %q, want %q", h, list.header.Get(h), want)
		}
	}
	// The admin API shows the owner too.
	if got := adminCall(t, env.api, "GET", "/tokengate/clients/"+id, ""); got.object(t)["owner"] != "alice" {
		t.Errorf("admin GET %s = %s, want owner alice", id, got.body)
	}
	if got := env.auditMessages(); !slices.Contains(got, oauth.AuditClientAdded) {
		t.Errorf("audit %v, want %q", got, oauth.AuditClientAdded)
	}
	for _, entry := range env.audit.FilterMessage(oauth.AuditClientAdded).All() {
		if entry.ContextMap()["user_id"] == nil {
			t.Errorf("audit %v has no user_id", entry.ContextMap())
		}
	}
}

// PUT, DELETE and POST .../secret on the user's own client, as
// in 6.1, each audited with the user's id.
func TestSelfClientsChange(t *testing.T) {
	env := newSelfEnv(t)
	obj, _ := env.create(t, "alice", selfBilling)
	id := obj["client_id"].(string)
	path := "/oauth/clients/" + id

	put := env.call(t, "alice", "PUT", path, `{"name":"Billing 2","redirect_uris":["https://billing.example/cb2"],"scopes":["energy:read"],"pkce":"optional"}`)
	if got := put.object(t); put.status != 200 || got["name"] != "Billing 2" || got["pkce"] != "optional" || got["owner"] != "alice" {
		t.Fatalf("PUT: %d %s", put.status, put.body)
	}
	// A client object as GET answers it may be sent back.
	back, _ := json.Marshal(put.object(t))
	if again := env.call(t, "alice", "PUT", path, string(back)); again.status != 200 {
		t.Errorf("PUT of the GET object: %d %s", again.status, again.body)
	}
	rotated := env.call(t, "alice", "POST", path+"/secret", "")
	if secret, _ := rotated.object(t)["client_secret"].(string); rotated.status != 200 || !strings.HasPrefix(secret, "tgs_") {
		t.Fatalf("POST secret: %d %s", rotated.status, rotated.body)
	}
	if del := env.call(t, "alice", "DELETE", path, ""); del.status != 204 {
		t.Fatalf("DELETE: %d %s", del.status, del.body)
	}
	if gone := env.call(t, "alice", "GET", path, ""); gone.status != 404 {
		t.Errorf("GET after DELETE: %d %s, want 404", gone.status, gone.body)
	}
	want := []string{oauth.AuditClientAdded, oauth.AuditClientUpdated, oauth.AuditClientUpdated, oauth.AuditClientSecretRotated, oauth.AuditClientRemoved}
	if got := env.auditMessages(); !reflect.DeepEqual(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
	for _, entry := range env.audit.All() {
		if m := entry.ContextMap(); m["user_id"] != "alice" || m["client_id"] != id {
			t.Errorf("%s: fields %v, want user_id alice and client_id %s", entry.Message, m, id)
		}
	}
	pub, _ := env.create(t, "alice", `{"name":"Pub","redirect_uris":["http://127.0.0.1/cb"],"public":true}`)
	if got := env.call(t, "alice", "POST", "/oauth/clients/"+pub["client_id"].(string)+"/secret", ""); got.status != 409 {
		t.Errorf("POST secret on a public client: %d %s, want 409", got.status, got.body)
	}
}

// another user's client, a client of the config and one of the
// operator are 404 on every route, and stay as they were.
func TestSelfClientsOthersAreNotFound(t *testing.T) {
	env := newSelfEnv(t)
	obj, _ := env.create(t, "alice", selfBilling)
	addBilling(t, env.adminEnv) // the operator's "billing"
	for _, id := range []string{obj["client_id"].(string), "home-app", "billing", "nobody"} {
		path := "/oauth/clients/" + id
		for _, req := range []struct{ method, path, body string }{
			{"GET", path, ""},
			{"PUT", path, `{"name":"Mine","redirect_uris":["https://mine.example/cb"]}`},
			{"POST", path + "/secret", ""},
			{"DELETE", path, ""},
		} {
			got := env.call(t, "bob", req.method, req.path, req.body)
			if want := `{"error":"client ` + id + ` not found"}`; got.status != 404 || got.body != want {
				t.Errorf("bob %s %s: %d %s, want 404 %s", req.method, req.path, got.status, got.body, want)
			}
		}
	}
	if got := env.call(t, "alice", "GET", "/oauth/clients/"+obj["client_id"].(string), ""); !reflect.DeepEqual(got.object(t), obj) {
		t.Errorf("alice's client after bob's tries: %s, want %v", got.body, obj)
	}
	if got := adminCall(t, env.api, "GET", "/tokengate/clients/billing", ""); got.status != 200 {
		t.Errorf("the operator's client after bob's tries: %d %s", got.status, got.body)
	}
}

// at most max_clients_per_user each; one more is 403.
func TestSelfClientsLimit(t *testing.T) {
	env := newSelfEnv(t)
	first, _ := env.create(t, "alice", selfBilling)
	env.create(t, "alice", selfBilling)
	got := env.call(t, "alice", "POST", "/oauth/clients", selfBilling)
	if got.status != 403 || got.body != `{"error":"client limit reached"}` {
		t.Errorf("third client: %d %s, want 403 client limit reached", got.status, got.body)
	}
	env.create(t, "bob", selfBilling) // another user has a limit of their own
	env.call(t, "alice", "DELETE", "/oauth/clients/"+first["client_id"].(string), "")
	env.create(t, "alice", selfBilling) // a removal frees a place
}

// and the client rules: 400 naming the culprit; 401 without a user; 405
// with Allow; 413 above the body limit.
func TestSelfClientsErrors(t *testing.T) {
	env := newSelfEnv(t)
	obj, _ := env.create(t, "alice", selfBilling)
	path := "/oauth/clients/" + obj["client_id"].(string)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"undeclared scope", "POST", "/oauth/clients", `{"name":"A","redirect_uris":["https://a.example/cb"],"scopes":["admin:all"]}`, 400, `admin:all`},
		{"no redirect URI", "POST", "/oauth/clients", `{"name":"A"}`, 400, `redirect`},
		{"non-loopback http", "POST", "/oauth/clients", `{"name":"A","redirect_uris":["http://a.example/cb"]}`, 400, `http://a.example/cb`},
		{"pkce optional on a public client", "POST", "/oauth/clients", `{"name":"A","redirect_uris":["https://a.example/cb"],"public":true,"pkce":"optional"}`, 400, `pkce`},
		{"no name", "POST", "/oauth/clients", `{"redirect_uris":["https://a.example/cb"]}`, 400, `no name`},
		{"client_id is generated", "POST", "/oauth/clients", `{"client_id":"mine","name":"A","redirect_uris":["https://a.example/cb"]}`, 400, `client_id`},
		{"bad JSON", "POST", "/oauth/clients", `{"name":`, 400, `invalid JSON`},
		{"public cannot change", "PUT", path, `{"name":"A","redirect_uris":["https://a.example/cb"],"public":true}`, 400, `public cannot change`},
		{"id cannot change", "PUT", path, `{"client_id":"other","name":"A","redirect_uris":["https://a.example/cb"]}`, 400, `client_id \"other\" differs`},
		{"PUT undeclared scope", "PUT", path, `{"name":"A","redirect_uris":["https://a.example/cb"],"scopes":["nope"]}`, 400, `nope`},
		{"PATCH on the list", "PATCH", "/oauth/clients", ``, 405, `method not allowed`},
		{"POST on a client", "POST", path, ``, 405, `method not allowed`},
		{"GET on the secret", "GET", path + "/secret", ``, 405, `method not allowed`},
		{"too large", "POST", "/oauth/clients", `{"name":"` + strings.Repeat("a", maxBodyBytes) + `"}`, 413, `too large`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := env.call(t, "alice", tc.method, tc.path, tc.body)
			if got.status != tc.status || !strings.Contains(got.body, tc.contains) {
				t.Errorf("%d %s, want %d containing %q", got.status, got.body, tc.status, tc.contains)
			}
			if tc.status == 405 && got.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	for _, req := range []struct{ method, path string }{{"GET", "/oauth/clients"}, {"POST", "/oauth/clients"}, {"GET", path}, {"DELETE", path}, {"POST", path + "/secret"}} {
		got := env.call(t, "", req.method, req.path, selfBilling)
		if got.status != 401 || got.header.Get("WWW-Authenticate") == "" || got.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s without a user: %d %v %s, want 401 with WWW-Authenticate, no-store", req.method, req.path, got.status, got.header, got.body)
		}
	}
	if got := env.call(t, "alice", "GET", "/oauth/clients", ""); !strings.Contains(got.body, obj["client_id"].(string)) {
		t.Errorf("alice's clients after the errors: %s", got.body)
	}
}

// Which paths the clients endpoint serves; an empty path turns it off.
func TestClientsPath(t *testing.T) {
	e := &Endpoints{Clients: "/oauth/clients"}
	for _, tc := range []struct {
		target, id string
		secret, ok bool
	}{
		{"/oauth/clients", "", false, true},
		{"/oauth/clients/c_1", "c_1", false, true},
		{"/oauth/clients/c_1/secret", "c_1", true, true},
		{"/oauth/clients/secret", "secret", false, true},
		{"/oauth/clients/a%2Fb/secret", "a/b", true, true},
		{"/oauth/clients/", "", false, false},
		{"/oauth/clients/a/b", "", false, false},
		{"/oauth/clients/a/secret/x", "", false, false},
		{"/oauth/clientsx", "", false, false},
	} {
		id, secret, ok := e.clientsPath(httptest.NewRequest("GET", tc.target, nil))
		if id != tc.id || secret != tc.secret || ok != tc.ok {
			t.Errorf("%s: %q, %v, %v; want %q, %v, %v", tc.target, id, secret, ok, tc.id, tc.secret, tc.ok)
		}
	}
	if _, _, ok := (&Endpoints{}).clientsPath(httptest.NewRequest("GET", "/", nil)); ok {
		t.Error("an empty clients path serves /")
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
