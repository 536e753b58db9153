package integration

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/tokengate/caddy-tokengate/oauth"
	"github.com/tokengate/caddy-tokengate/oauth/sqlstore"
)

// TestOAuthRotationAcrossInstances: single use and rotation are enforced in
// the store, not in the process (docs/operations.md). Half the racers go
// through the running Caddy, half through a second authorization server with
// its own store connection and cache on the same database, as a second
// instance or the other config of a reload would: exactly one rotation wins.
func TestOAuthRotationAcrossInstances(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, oauthClients)
		driver, location, _ := strings.Cut(database, " ")
		other, err := sqlstore.Open(context.Background(), driver, location)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		otherServer := secondAuthServer(t, other)
		home, err := otherServer.Clients.FindClient(context.Background(), "home-app")
		if err != nil {
			t.Fatal(err)
		}

		verifier := oauth2.GenerateVerifier()
		code := authorizeJSON(t, g, "user-instances", "home-app", homeRedirect, "chargers:read", verifier)
		_, refresh := exchangeCode(t, g, code, verifier)

		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				won := false
				if i%2 == 0 {
					r, err := send(http.DefaultClient, "POST", g.base+"/oauth/token",
						url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode(),
						append(basicAuth("home-app", homeSecret), "Content-Type", "application/x-www-form-urlencoded")...)
					if err != nil {
						t.Error(err)
						return
					}
					won = r.status == 200
				} else {
					_, oerr := otherServer.Refresh(context.Background(), home, refresh, "")
					won = oerr == nil
				}
				if won {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d of %d refreshes across two instances succeeded, want exactly 1", wins, racers)
		}
	})
}

// TestOAuthRemovedClient: once a client is removed from the config, its
// refresh tokens stop working at once; its access tokens run out. A removed
// client is an unknown client, so the token endpoint answers invalid_client
// (docs/reference.md), and no token is issued.
func TestOAuthRemovedClient(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients)
	verifier := oauth2.GenerateVerifier()
	code := authorizeJSON(t, g, "user-removed", "home-app", homeRedirect, "chargers:read", verifier)
	access, refresh := exchangeCode(t, g, code, verifier)

	start := strings.Index(g.caddyfile, "client home-app {")
	end := start + strings.Index(g.caddyfile[start:], "}") + 1
	loadCaddyfile(t, g.caddyfile[:start]+g.caddyfile[end:])

	r := tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, basicAuth("home-app", homeSecret)...)
	expectOAuthError(t, r, 401, "invalid_client")
	if strings.Contains(r.body, "access_token") {
		t.Errorf("a token was issued to a removed client: %s", r.body)
	}
	if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+access); r.status != 200 {
		t.Errorf("access token of a removed client before expiry: %d, want 200 (it runs out)", r.status)
	}
}

// secondAuthServer is an authorization server over store with the test's
// home-app client, as another instance would build it from the same config.
func secondAuthServer(t *testing.T, store oauth.Store) *oauth.AuthServer {
	t.Helper()
	home, err := oauth.NewClient(oauth.ClientOptions{
		ID: "home-app", Secret: homeSecret,
		RedirectURIs: []string{homeRedirect, "https://home.example.com/cb2"},
		Scopes:       []string{"chargers:read", "sessions:read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	clients, err := oauth.NewClientRegistry(home)
	if err != nil {
		t.Fatal(err)
	}
	validator, err := oauth.NewValidator(store, oauth.CacheConfig{MaxEntries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(validator.Close)
	return &oauth.AuthServer{
		Store: store, Validator: validator, Clients: clients,
		Scopes: []oauth.Scope{{Name: "chargers:read"}, {Name: "chargers:write"}, {Name: "sessions:read"}, {Name: "energy:read"}},
		Logger: zap.NewNop(),
	}
}
