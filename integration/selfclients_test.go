package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
)

const portalRedirect = "https://portal.example.com/callback"

// startSelfClientsGateway starts the gateway with the clients endpoint on
// /oauth/clients, a limit of 2 clients a user, and the admin endpoint,
// whose URL it returns.
func startSelfClientsGateway(t *testing.T, database string) (*gateway, adminAPI) {
	t.Helper()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := newGateway(t, database, oauthClients+"\n\t\tmax_clients_per_user 2\n", "", func(c string) string {
		c = strings.Replace(c, "admin off", "admin "+admin, 1)
		return strings.Replace(c, "\ttokengate_endpoints\n", "\ttokengate_endpoints {\n\t\tclients /oauth/clients\n\t}\n", 1)
	})
	g.start(t)
	return g, adminAPI{"http://" + admin}
}

// registerClient is POST on the clients endpoint as user.
func registerClient(t *testing.T, g *gateway, user, body string) response {
	t.Helper()
	r := do(t, "POST", g.base+"/oauth/clients", body, append(bearerUser(t, user), "Content-Type", "application/json")...)
	checkNoStore(t, r)
	return r
}

// TestSelfServiceClients: a user registers a client through the clients
// endpoint, and that client runs the code flow with PKCE and refreshes;
// the admin API lists it with its owner; another user cannot see or
// change it; the limit holds, concurrent registrations included
// (docs/operations.md).
func TestSelfServiceClients(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g, admin := startSelfClientsGateway(t, database)
		body := `{"name":"Alice's Portal","redirect_uris":["` + portalRedirect + `"],"scopes":["chargers:read","sessions:read"]}`
		r := registerClient(t, g, "alice", body)
		if r.status != 201 {
			t.Fatalf("POST /oauth/clients: %d %s", r.status, r.body)
		}
		created := r.decode(t)
		id, _ := created["client_id"].(string)
		secret, _ := created["client_secret"].(string)
		if id == "" || secret == "" || created["owner"] != "alice" || created["source"] != "store" {
			t.Fatalf("created client %s: want an id, a secret, owner alice, source store", r.body)
		}

		// The code flow with PKCE, the guard and a refresh.
		conf := &oauth2.Config{
			ClientID: id, ClientSecret: secret, RedirectURL: portalRedirect,
			Endpoint: oauth2.Endpoint{AuthURL: g.base + "/oauth/authorize", TokenURL: g.base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader},
		}
		verifier := oauth2.GenerateVerifier()
		code := authorizeJSON(t, g, "user-of-portal", id, portalRedirect, "chargers:read", verifier)
		tok, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange for the registered client: %v", err)
		}
		if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+tok.AccessToken); r.status != 200 {
			t.Fatalf("the registered client's access token at the guard: %d %s", r.status, r.body)
		}
		if got := g.chargers.last(t).Header.Get("X-Authenticated-Client-Id"); got != id {
			t.Errorf("X-Authenticated-Client-Id %q, want %s", got, id)
		}
		fresh, err := refreshWith(conf, tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}

		// The admin API lists it with its owner.
		r = admin.call(t, "GET", "/tokengate/clients", "")
		var all []map[string]any
		if err := json.Unmarshal([]byte(r.body), &all); err != nil {
			t.Fatalf("admin list %q: %v", r.body, err)
		}
		found := false
		for _, c := range all {
			if c["client_id"] == id {
				found = c["owner"] == "alice" && c["name"] == "Alice's Portal"
			}
		}
		if !found {
			t.Errorf("admin list %s: want %s with owner alice", r.body, id)
		}

		// Another user: not found, on every route, and nothing changes.
		for _, req := range []struct{ method, path, body string }{
			{"GET", "/oauth/clients/" + id, ""},
			{"PUT", "/oauth/clients/" + id, body},
			{"DELETE", "/oauth/clients/" + id, ""},
			{"POST", "/oauth/clients/" + id + "/secret", ""},
		} {
			r := do(t, req.method, g.base+req.path, req.body, bearerUser(t, "bob")...)
			if r.status != 404 || r.decode(t)["error"] != "client "+id+" not found" {
				t.Errorf("bob %s %s: %d %s, want 404", req.method, req.path, r.status, r.body)
			}
		}
		if r := do(t, "GET", g.base+"/oauth/clients", "", bearerUser(t, "bob")...); r.status != 200 || r.body != "[]" {
			t.Errorf("bob's clients: %d %s, want []", r.status, r.body)
		}
		if r := do(t, "GET", g.base+"/oauth/clients/"+id, "", bearerUser(t, "alice")...); r.status != 200 {
			t.Errorf("alice's client after bob's tries: %d %s", r.status, r.body)
		}

		// The limit: a second client, then 403 for the third.
		if r := registerClient(t, g, "alice", body); r.status != 201 {
			t.Fatalf("second client: %d %s", r.status, r.body)
		}
		r = registerClient(t, g, "alice", body)
		if r.status != 403 || r.body != `{"error":"client limit reached"}` {
			t.Errorf("third client: %d %s, want 403 client limit reached", r.status, r.body)
		}

		// Concurrent registrations past the limit leave exactly the limit.
		const tries = 8
		statuses := make(chan int, tries)
		var wg sync.WaitGroup
		jwt := userJWT(t, "carol")
		for range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := send(http.DefaultClient, "POST", g.base+"/oauth/clients", body, "Authorization", "Bearer "+jwt, "Content-Type", "application/json")
				if err != nil {
					t.Error(err)
					return
				}
				statuses <- r.status
			}()
		}
		wg.Wait()
		close(statuses)
		counts := map[int]int{}
		for s := range statuses {
			counts[s]++
		}
		if counts[201] != 2 || counts[403] != tries-2 {
			t.Errorf("concurrent registrations: %v, want 2 × 201 and %d × 403", counts, tries-2)
		}
		r = do(t, "GET", g.base+"/oauth/clients", "", bearerUser(t, "carol")...)
		var carols []map[string]any
		if err := json.Unmarshal([]byte(r.body), &carols); err != nil || len(carols) != 2 {
			t.Errorf("carol's clients after the race: %s, want 2", r.body)
		}

		// The owner removes the client: its refresh token stops.
		if r := do(t, "DELETE", g.base+"/oauth/clients/"+id, "", bearerUser(t, "alice")...); r.status != 204 {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		if _, err := refreshWith(conf, fresh.RefreshToken); err == nil {
			t.Error("the removed client's refresh token still works")
		}
		if r := admin.call(t, "GET", "/tokengate/clients/"+id, ""); r.status != 404 {
			t.Errorf("admin GET of the removed client: %d %s, want 404", r.status, r.body)
		}
	})
}
