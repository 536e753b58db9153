package module

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// clientKeys are the members of a client object, and nothing
// else: never a secret or its hash.
var clientKeys = []string{"client_id", "created_at", "grant_types", "name", "pkce", "public", "redirect_uris", "scopes", "source"}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const billing = `{"client_id":"billing","name":"Billing","redirect_uris":["https://billing.example.com/cb"],"scopes":["energy:read"]}`

func addBilling(t *testing.T, env *adminEnv) (map[string]any, string) {
	t.Helper()
	got := adminCall(t, env.api, "POST", "/tokengate/clients", billing)
	if got.status != 201 {
		t.Fatalf("POST: %d %s", got.status, got.body)
	}
	m := got.object(t)
	secret, _ := m["client_secret"].(string)
	delete(m, "client_secret")
	return m, secret
}

// each client rule and each conflict, with the message
// naming the culprit.
func TestAdminAddClientErrors(t *testing.T) {
	env := newAdminEnv(t)
	addBilling(t, env)
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"bad JSON", `{"name":`, 400, "invalid JSON body"},
		{"not an object", `["x"]`, 400, "invalid JSON body"},
		{"two values", `{"name":"a","redirect_uris":["https://a.example/cb"]} {}`, 400, "more than one JSON value"},
		{"unknown field", `{"name":"a","redirect_uris":["https://a.example/cb"],"client_secret":"mine"}`, 400, `unknown field "client_secret"`},
		{"no name", `{"redirect_uris":["https://a.example/cb"]}`, 400, "the new client has no name"},
		{"no redirect URI", `{"client_id":"x","name":"X"}`, 400, `client "x" has no redirect_uri`},
		{"empty redirect URIs", `{"client_id":"x","name":"X","redirect_uris":[]}`, 400, `client "x" has no redirect_uri`},
		{"non-loopback http", `{"client_id":"x","name":"X","redirect_uris":["http://x.example/cb"]}`, 400, `redirect_uri "http://x.example/cb" uses http with a host that is not loopback`},
		{"relative redirect URI", `{"client_id":"x","name":"X","redirect_uris":["/cb"]}`, 400, `redirect_uri "/cb" is not an absolute URI`},
		{"fragment", `{"client_id":"x","name":"X","redirect_uris":["https://x.example/cb#f"]}`, 400, "must not have a fragment"},
		{"undeclared scope", `{"client_id":"x","name":"X","redirect_uris":["https://x.example/cb"],"scopes":["energy:write"]}`, 400, `client "x" names undeclared scope "energy:write"`},
		{"pkce optional on a public client", `{"client_id":"x","name":"X","redirect_uris":["https://x.example/cb"],"public":true,"pkce":"optional"}`, 400, `client "x" is public (no secret), so pkce cannot be optional`},
		{"unknown pkce", `{"client_id":"x","name":"X","redirect_uris":["https://x.example/cb"],"pkce":"sometimes"}`, 400, `pkce must be required or optional, not "sometimes"`},
		{"empty client_id", `{"client_id":"","name":"X","redirect_uris":["https://x.example/cb"]}`, 400, "client_id must be 1 to 128"},
		{"client_id with a space", `{"client_id":"a b","name":"X","redirect_uris":["https://x.example/cb"]}`, 400, "client_id must be 1 to 128"},
		{"client_id too long", `{"client_id":"` + strings.Repeat("a", 129) + `","name":"X","redirect_uris":["https://x.example/cb"]}`, 400, "client_id must be 1 to 128"},
		{"control character in name", `{"client_id":"x","name":"a\u001bb","redirect_uris":["https://x.example/cb"]}`, 400, "control characters"},
		{"static id", `{"client_id":"home-app","name":"X","redirect_uris":["https://x.example/cb"]}`, 409, "client home-app is defined in the Caddyfile"},
		{"stored id", billing, 409, "client billing already exists"},
		{"body above 64 KiB", `{"name":"` + strings.Repeat("x", maxAdminBody) + `"}`, 413, "request body larger than 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := adminCall(t, env.api, "POST", "/tokengate/clients", tc.body)
			if got.status != tc.status || !strings.Contains(got.errorMessage(t), tc.want) {
				t.Errorf("%d %s, want %d with %q", got.status, got.body, tc.status, tc.want)
			}
		})
	}
	if n := len(env.auditMessages()); n != 1 {
		t.Errorf("%d audit events, want 1: refused requests change nothing", n)
	}
}

// POST, GET: the client object, defaults, and the list of static
// and stored clients sorted by id.
func TestAdminAddAndListClients(t *testing.T) {
	env := newAdminEnv(t)
	added, secret := addBilling(t, env)
	if !strings.HasPrefix(secret, "tgs_") || len(secret) < 47 {
		t.Errorf("client_secret %q: want tgs_ and 256 bits", secret)
	}
	if got := keysOf(added); !reflect.DeepEqual(got, clientKeys) {
		t.Errorf("POST answer members %v, want %v and client_secret", got, clientKeys)
	}
	created, _ := added["created_at"].(string)
	if at, err := time.Parse(time.RFC3339, created); err != nil || time.Since(at) > time.Hour {
		t.Errorf("created_at %q is not a recent RFC 3339 time", created)
	}
	pub := adminCall(t, env.api, "POST", "/tokengate/clients", `{"name":"Mobile 2","redirect_uris":["http://127.0.0.1/cb"],"public":true}`)
	pubObj := pub.object(t)
	id, _ := pubObj["client_id"].(string)
	if pub.status != 201 || !strings.HasPrefix(id, "c_") || pubObj["client_secret"] != nil {
		t.Fatalf("public client: %d %s; want a generated id and no secret", pub.status, pub.body)
	}
	if want := []any{"chargers:read", "sessions:read", "energy:read"}; !reflect.DeepEqual(pubObj["scopes"], want) {
		t.Errorf("default scopes %v, want every declared scope %v", pubObj["scopes"], want)
	}

	list := adminCall(t, env.api, "GET", "/tokengate/clients", "")
	var objs []map[string]any
	if err := json.Unmarshal([]byte(list.body), &objs); err != nil || list.status != 200 {
		t.Fatalf("GET: %d %s", list.status, list.body)
	}
	var ids []string
	for _, o := range objs {
		ids = append(ids, o["client_id"].(string))
		if got := keysOf(o); !reflect.DeepEqual(got, clientKeys) {
			t.Errorf("%s: members %v, want %v", o["client_id"], got, clientKeys)
		}
	}
	if want := []string{"billing", id, "home-app", "mobile"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	home := objs[2]
	wantHome := map[string]any{"client_id": "home-app", "name": "Home Energy App", "redirect_uris": []any{"https://home.example.com/cb"},
		"scopes": []any{"chargers:read"}, "public": false, "pkce": "required", "source": "config", "created_at": nil,
		"grant_types": []any{"authorization_code", "refresh_token"}}
	if !reflect.DeepEqual(home, wantHome) {
		t.Errorf("static client %v, want %v", home, wantHome)
	}
	if objs[3]["public"] != true || objs[0]["source"] != "store" || objs[0]["created_at"] != created {
		t.Errorf("listed objects %v", objs)
	}
	if strings.Contains(list.body, "secret") || strings.Contains(list.body, "hash") {
		t.Errorf("the list carries a secret or a hash: %s", list.body)
	}
	for path, want := range map[string]int{"billing": 200, "home-app": 200, "nobody": 404} {
		got := adminCall(t, env.api, "GET", "/tokengate/clients/"+path, "")
		if got.status != want {
			t.Errorf("GET %s: %d %s, want %d", path, got.status, got.body, want)
		}
	}
	if got := adminCall(t, env.api, "GET", "/tokengate/clients/billing", ""); !reflect.DeepEqual(got.object(t), added) {
		t.Errorf("GET billing = %s, want what POST answered", got.body)
	}
}

// PUT, DELETE, POST .../secret, with their errors.
func TestAdminChangeClients(t *testing.T) {
	env := newAdminEnv(t)
	_, secret := addBilling(t, env)
	adminCall(t, env.api, "POST", "/tokengate/clients", `{"client_id":"pub","name":"Pub","redirect_uris":["https://p.example/cb"],"public":true}`)
	put := `{"name":"Billing 2","redirect_uris":["https://billing.example.com/new"],"scopes":["sessions:read"],"pkce":"optional"}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"PUT static", "PUT", "/tokengate/clients/home-app", put, 409, "client home-app is defined in the Caddyfile"},
		{"DELETE static", "DELETE", "/tokengate/clients/mobile", "", 409, "client mobile is defined in the Caddyfile"},
		{"rotate static", "POST", "/tokengate/clients/home-app/secret", "", 409, "client home-app is defined in the Caddyfile"},
		{"PUT unknown", "PUT", "/tokengate/clients/nobody", put, 404, "client nobody not found"},
		{"DELETE unknown", "DELETE", "/tokengate/clients/nobody", "", 404, "client nobody not found"},
		{"rotate unknown", "POST", "/tokengate/clients/nobody/secret", "", 404, "client nobody not found"},
		{"rotate public", "POST", "/tokengate/clients/pub/secret", "", 409, "client pub is public and has no secret"},
		{"PUT bad JSON", "PUT", "/tokengate/clients/billing", `{`, 400, "invalid JSON body"},
		{"PUT another id", "PUT", "/tokengate/clients/billing", `{"client_id":"other","name":"B","redirect_uris":["https://b.example/cb"]}`, 400, "a client's id cannot change"},
		{"PUT public", "PUT", "/tokengate/clients/billing", `{"public":true,"name":"B","redirect_uris":["https://b.example/cb"]}`, 400, "public cannot change"},
		{"PUT pkce optional on public", "PUT", "/tokengate/clients/pub", put, 400, `client "pub" is public (no secret), so pkce cannot be optional`},
		{"PUT undeclared scope", "PUT", "/tokengate/clients/billing", `{"name":"B","redirect_uris":["https://b.example/cb"],"scopes":["x"]}`, 400, `client "billing" names undeclared scope "x"`},
		{"PUT no redirect URI", "PUT", "/tokengate/clients/billing", `{"name":"B"}`, 400, `client "billing" has no redirect_uri`},
		{"PUT above 64 KiB", "PUT", "/tokengate/clients/billing", strings.Repeat(" ", maxAdminBody+1), 413, "request body larger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := adminCall(t, env.api, tc.method, tc.path, tc.body)
			if got.status != tc.status || !strings.Contains(got.errorMessage(t), tc.want) {
				t.Errorf("%d %s, want %d with %q", got.status, got.body, tc.status, tc.want)
			}
		})
	}

	// A client object as GET answers it may be PUT back, changed.
	current := adminCall(t, env.api, "GET", "/tokengate/clients/billing", "").object(t)
	current["name"], current["scopes"] = "Billing 2", []string{"sessions:read"}
	b, _ := json.Marshal(current)
	got := adminCall(t, env.api, "PUT", "/tokengate/clients/billing", string(b))
	if got.status != 200 {
		t.Fatalf("PUT: %d %s", got.status, got.body)
	}
	updated := got.object(t)
	if updated["name"] != "Billing 2" || !reflect.DeepEqual(updated["scopes"], []any{"sessions:read"}) || updated["created_at"] != current["created_at"] {
		t.Errorf("PUT answer %v", updated)
	}
	c, err := env.app.registry.FindClient(context.Background(), "billing")
	if err != nil || c.Name != "Billing 2" || !c.MayRequest("sessions:read") || c.MayRequest("energy:read") {
		t.Errorf("after PUT the registry has %+v, %v", c, err)
	}

	rotated := adminCall(t, env.api, "POST", "/tokengate/clients/billing/secret", "")
	r := rotated.object(t)
	if rotated.status != 200 || r["client_id"] != "billing" || r["client_secret"] == secret || len(r) != 2 {
		t.Fatalf("rotate: %d %s", rotated.status, rotated.body)
	}
	ctx := context.Background()
	if _, err := env.app.registry.Authenticate(ctx, "billing", secret, true); err == nil {
		t.Error("the old secret still works")
	}
	if _, err := env.app.registry.Authenticate(ctx, "billing", r["client_secret"].(string), true); err != nil {
		t.Errorf("the new secret: %v", err)
	}

	if got := adminCall(t, env.api, "DELETE", "/tokengate/clients/billing", ""); got.status != 204 || got.body != "" {
		t.Fatalf("DELETE: %d %s", got.status, got.body)
	}
	if got := adminCall(t, env.api, "GET", "/tokengate/clients/billing", ""); got.status != 404 {
		t.Errorf("GET after DELETE: %d", got.status)
	}
	want := "client added,client added,client updated,client secret rotated,client removed"
	if got := strings.Join(env.auditMessages(), ","); got != want {
		t.Errorf("audit %q, want %q", got, want)
	}
}
