package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
	"github.com/tokengate/caddy-tokengate/oauth/sqlstore"
)

// otherInstance is a second tokengate instance on the same PostgreSQL
// database: its own store connections, validation cache and revocation
// listener, and an authorization server over them, as another Caddy
// process would build from the same config.
type otherInstance struct {
	store     *sqlstore.Postgres
	validator *oauth.Validator
	auth      *oauth.AuthServer
}

func startOtherInstance(t *testing.T, dsn string) *otherInstance {
	t.Helper()
	store, err := sqlstore.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	auth := secondAuthServer(t, store)
	auth.UserGrants = store
	o := &otherInstance{store: store, validator: auth.Validator, auth: auth}
	ctx, stop := context.WithCancel(context.Background())
	listening := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		store.WatchRevocations(ctx, o.validator.Forget, func() {
			o.validator.ForgetAll()
			if first {
				first = false
				close(listening)
			}
		})
	}()
	t.Cleanup(func() { stop(); <-done })
	select {
	case <-listening:
	case <-time.After(readyTimeout):
		t.Fatal("the other instance is not listening for revocations")
	}
	return o
}

// accepts reports whether the other instance accepts tok as a bearer token.
func (o *otherInstance) accepts(t *testing.T, tok string) bool {
	t.Helper()
	_, err := o.validator.Validate(context.Background(), tok)
	if err != nil && !errors.Is(err, oauth.ErrInvalidToken) {
		t.Fatalf("validating at the other instance: %v", err)
	}
	return err == nil
}

// TestGrantRevocationAcrossInstances: on two instances sharing PostgreSQL,
// an app revoked through the grants endpoint of one is refused by the
// other within 1 s, though it had the token cached; and a user revoked
// through the other instance (what the admin API's DELETE
// /tokengate/users/<id> calls) loses every token here within 1 s, the
// personal token included, cached or not.
func TestGrantRevocationAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	g := startGateway(t, "postgres "+dsn, oauthClients)
	other := startOtherInstance(t, dsn)
	user := "user-grants-instances"

	home := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read")
	if !other.accepts(t, home.access) {
		t.Fatal("the other instance refuses a live access token")
	}
	revokeGrant(t, g, user, "home-app")
	// The 1 s bound counts from the revoking call's return.
	eventually(t, time.Second, "access token of a revoked app refused by the other instance", func() bool {
		return !other.accepts(t, home.access)
	})

	again := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read")
	app := connect(t, g, user, "other-app", otherSecret, otherRedirect, "energy:read")
	personal := g.personalToken(t, user)
	for _, tok := range []string{again.access, personal} {
		if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+tok); r.status != 200 {
			t.Fatalf("before the user is revoked: %d %s", r.status, r.body)
		}
	}
	if err := other.auth.RevokeUser(context.Background(), user); err != nil {
		t.Fatalf("RevokeUser at the other instance: %v", err)
	}
	for what, tok := range map[string]string{"home-app's access token": again.access, "other-app's access token": app.access, "personal token": personal} {
		eventually(t, time.Second, what+" of a revoked user refused here", func() bool {
			return do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+tok).status == 401
		})
	}
	for _, a := range []*connectedApp{again, app} {
		expectOAuthError(t, a.refreshToken(t, g), 400, "invalid_grant")
	}
	if gs := listGrants(t, g, bearerUser(t, user)...); len(gs) != 0 {
		t.Errorf("grants of a revoked user = %+v, want []", gs)
	}
}

// TestGrantsEndpointStoreDown: with the database unreachable the grants
// endpoint answers 503, never an empty list or a 204 that revoked nothing.
func TestGrantsEndpointStoreDown(t *testing.T) {
	srv := pgtest.StartServer(t)
	g := startGateway(t, "postgres "+srv.DSN, oauthClients)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"GET", "DELETE"} {
		url := g.base + "/oauth/grants"
		if method == "DELETE" {
			url += "/home-app"
		}
		r := do(t, method, url, "", bearerUser(t, "user-grants-down")...)
		if r.status != 503 || r.decode(t)["error"] != "temporarily_unavailable" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s during the outage: %d %s Retry-After=%q, want 503 temporarily_unavailable", method, r.status, r.body, r.header.Get("Retry-After"))
		}
		checkNoStore(t, r)
	}
}
