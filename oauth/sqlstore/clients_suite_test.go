package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

func TestSQLiteClients(t *testing.T) {
	runClientSuite(t, func(t *testing.T) oauth.Store {
		return openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	})
}

func TestPostgresClients(t *testing.T) {
	runClientSuite(t, func(t *testing.T) oauth.Store {
		return openPostgresAt(t, pgtest.Start(t))
	})
}

// runClientSuite checks the oauth.ClientStore contract (oauth/clientstore.go)
// and what removing a client does to the grants of oauth.GrantStore.
func runClientSuite(t *testing.T, open openStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s oauth.Store)
	}{
		{"round trip", testClientRoundTrip},
		{"an id in use is a conflict", testClientExists},
		{"unknown client", testClientUnknown},
		{"update keeps secret and generation", testClientUpdate},
		{"set secret hash", testClientSetSecret},
		{"delete revokes codes, refresh tokens and consents", testClientDelete},
		{"a later client of the same id gets nothing back", testClientSameIDLater},
		{"config clients need no row", testClientStaticGrants},
		{"a user's clients, at most the limit", testOwnedClients},
		{"concurrent registrations stop at the limit", testOwnedClientsRacing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

func newStoredClient(id, generation string) oauth.StoredClient {
	sum := sha256.Sum256([]byte("secret of " + id))
	return oauth.StoredClient{
		ID:           id,
		Name:         "App " + id,
		SecretHash:   sum[:],
		RedirectURIs: []string{"https://app.example/cb", "https://app.example/cb?with space"},
		Scopes:       []string{"chargers:read", "sessions:read"},
		PKCERequired: true,
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Source:       oauth.SourceStore,
		Generation:   generation,
		CreatedAt:    storedTime(testTime),
		UpdatedAt:    storedTime(testTime),
	}
}

func createClient(t *testing.T, s oauth.Store, c oauth.StoredClient) {
	t.Helper()
	if err := s.CreateClient(context.Background(), c); err != nil {
		t.Fatalf("CreateClient(%s): %v", c.ID, err)
	}
}

func getClient(t *testing.T, s oauth.Store, id string) oauth.StoredClient {
	t.Helper()
	c, err := s.GetClient(context.Background(), id)
	if err != nil {
		t.Fatalf("GetClient(%s): %v", id, err)
	}
	return c
}

func testClientRoundTrip(t *testing.T, s oauth.Store) {
	confidential := newStoredClient("app", "g1")
	sum := sha256.Sum256([]byte("registration token"))
	registered := oauth.StoredClient{
		ID: "reg", Name: "Registered", RedirectURIs: []string{"http://127.0.0.1/cb"},
		Scopes: []string{"energy:read"}, GrantTypes: []string{"authorization_code"}, DPoPBoundAccessTokens: true,
		Source: oauth.SourceRegistration, OwnerUserID: "alice", RegistrationTokenHash: sum[:], Generation: "g2",
		CreatedAt: storedTime(testTime), UpdatedAt: storedTime(testTime.Add(time.Second)),
	}
	createClient(t, s, registered)
	createClient(t, s, confidential)
	for _, want := range []oauth.StoredClient{confidential, registered} {
		if got := getClient(t, s, want.ID); !reflect.DeepEqual(got, want) {
			t.Errorf("GetClient(%s) =\n%+v, want\n%+v", want.ID, got, want)
		}
	}
	if got := getClient(t, s, "reg"); got.SecretHash != nil || !got.Public() {
		t.Errorf("public client's secret hash = %x, want nil", got.SecretHash)
	}
	list, err := s.ListClients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "app" || list[1].ID != "reg" || !reflect.DeepEqual(list[1], registered) {
		t.Errorf("ListClients = %+v, want app then reg", list)
	}
}

func testClientExists(t *testing.T, s oauth.Store) {
	createClient(t, s, newStoredClient("app", "g1"))
	again := newStoredClient("app", "g2")
	again.Name = "Another"
	if err := s.CreateClient(context.Background(), again); !errors.Is(err, oauth.ErrClientExists) {
		t.Fatalf("second CreateClient: %v, want ErrClientExists", err)
	}
	if got := getClient(t, s, "app"); got.Generation != "g1" || got.Name != "App app" {
		t.Errorf("the first client was changed: %+v", got)
	}
}

func testClientUnknown(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	if _, err := s.GetClient(ctx, "nobody"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("GetClient: %v, want ErrNotFound", err)
	}
	if err := s.UpdateClient(ctx, newStoredClient("nobody", "g")); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("UpdateClient: %v, want ErrNotFound", err)
	}
	if err := s.SetClientSecretHash(ctx, "nobody", make([]byte, 32), grantNow); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("SetClientSecretHash: %v, want ErrNotFound", err)
	}
	if err := s.DeleteClient(ctx, "nobody", grantNow); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("DeleteClient: %v, want ErrNotFound", err)
	}
	if list, err := s.ListClients(ctx); err != nil || len(list) != 0 {
		t.Errorf("ListClients = %v, %v; want none", list, err)
	}
}

func testClientUpdate(t *testing.T, s oauth.Store) {
	orig := newStoredClient("app", "g1")
	createClient(t, s, orig)
	changed := orig
	changed.Name = "Renamed"
	changed.RedirectURIs = []string{"https://new.example/cb"}
	changed.Scopes = []string{"energy:read"}
	changed.PKCERequired = false
	changed.UpdatedAt = storedTime(testTime.Add(time.Hour))
	// What UpdateClient does not change stays as it was.
	changed.SecretHash, changed.Generation = nil, "other"
	if err := s.UpdateClient(context.Background(), changed); err != nil {
		t.Fatal(err)
	}
	want := changed
	want.SecretHash, want.Generation = orig.SecretHash, orig.Generation
	if got := getClient(t, s, "app"); !reflect.DeepEqual(got, want) {
		t.Errorf("after UpdateClient:\n%+v, want\n%+v", got, want)
	}
}

func testClientSetSecret(t *testing.T, s oauth.Store) {
	createClient(t, s, newStoredClient("app", "g1"))
	sum := sha256.Sum256([]byte("new secret"))
	later := storedTime(testTime.Add(time.Minute))
	if err := s.SetClientSecretHash(context.Background(), "app", sum[:], later); err != nil {
		t.Fatal(err)
	}
	got := getClient(t, s, "app")
	if !bytes.Equal(got.SecretHash, sum[:]) || !got.UpdatedAt.Equal(later) || !got.CreatedAt.Equal(storedTime(testTime)) {
		t.Errorf("after SetClientSecretHash: %+v", got)
	}
}

// issueFor exchanges a code issued to the client id of generation gen and
// returns the code's and the pair's.
func issueFor(t *testing.T, s oauth.Store, id, gen string) (oauth.Code, oauth.IssuedPair) {
	t.Helper()
	c := oauth.Code{
		ClientID: id, UserID: "alice", RedirectURI: "https://app.example/cb", Scopes: []string{"chargers:read"},
		ExpiresAt: grantNow.Add(10 * time.Minute), ClientGeneration: gen,
	}
	_, c.Hash = newHash(t, oauth.KindCode)
	c.FamilyID = "family-" + id + "-" + time.Now().Format("150405.000000000")
	if err := s.SaveCode(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	pair := newPair(t, grantNow, nil)
	got, err := s.ExchangeCode(context.Background(), c.Hash, grantNow, pass, pair)
	if err != nil {
		t.Fatalf("ExchangeCode for %s (%s): %v", id, gen, err)
	}
	if got.ClientGeneration != gen {
		t.Errorf("exchanged code's generation = %q, want %q", got.ClientGeneration, gen)
	}
	return c, pair
}

// pendingCode saves a code for id of generation gen that is not
// exchanged yet.
func pendingCode(t *testing.T, s oauth.Store, id, gen string) oauth.Code {
	t.Helper()
	c := oauth.Code{
		ClientID: id, UserID: "bob", RedirectURI: "https://app.example/cb", Scopes: []string{"chargers:read"},
		FamilyID: "pending-" + id + "-" + time.Now().Format("150405.000000000"), ExpiresAt: grantNow.Add(10 * time.Minute),
		ClientGeneration: gen,
	}
	_, c.Hash = newHash(t, oauth.KindCode)
	if err := s.SaveCode(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func rotateFor(s oauth.Store, old oauth.TokenHash, clientID string, pair oauth.IssuedPair) error {
	_, err := s.RotateRefresh(context.Background(), old, clientID, grantNow, 0, passGrant, pair)
	return err
}

func testClientDelete(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	createClient(t, s, newStoredClient("app", "g1"))
	createClient(t, s, newStoredClient("other", "g9"))
	_, pair := issueFor(t, s, "app", "g1")
	_, otherPair := issueFor(t, s, "other", "g9")
	code := pendingCode(t, s, "app", "g1")
	if err := s.RecordConsent(ctx, "alice", "app", []string{"chargers:read"}); err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteClient(ctx, "app", grantNow); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "app"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("GetClient after delete: %v, want ErrNotFound", err)
	}
	if err := rotateFor(s, pair.Refresh.Hash, "app", newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("refresh token of a deleted client: %v, want ErrNotFound", err)
	}
	if _, err := s.IntrospectToken(ctx, pair.Refresh.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("introspecting its refresh token: %v, want ErrNotFound (revoked)", err)
	}
	if _, err := s.ExchangeCode(ctx, code.Hash, grantNow, pass, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("code of a deleted client: %v, want ErrNotFound", err)
	}
	if scopes, err := s.GrantedScopes(ctx, "alice", "app"); err != nil || len(scopes) != 0 {
		t.Errorf("consent of a deleted client = %v, %v; want none", scopes, err)
	}
	// its access tokens run out.
	mustAccess(t, s, pair.Access.Hash)
	// Another client's grants are untouched.
	if err := rotateFor(s, otherPair.Refresh.Hash, "other", newPair(t, grantNow, nil)); err != nil {
		t.Errorf("another client's refresh token: %v", err)
	}
}

func testClientSameIDLater(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	createClient(t, s, newStoredClient("app", "g1"))
	_, pair := issueFor(t, s, "app", "g1")
	if err := s.DeleteClient(ctx, "app", grantNow); err != nil {
		t.Fatal(err)
	}
	// A code issued after the removal by an instance that had not heard
	// of it yet, and then a new client of the same id.
	stale := pendingCode(t, s, "app", "g1")
	createClient(t, s, newStoredClient("app", "g2"))
	if _, err := s.ExchangeCode(ctx, stale.Hash, grantNow, pass, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("code of the earlier client: %v, want ErrNotFound", err)
	}
	if err := rotateFor(s, pair.Refresh.Hash, "app", newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("refresh token of the earlier client: %v, want ErrNotFound", err)
	}
	// The new client's own grants work.
	_, fresh := issueFor(t, s, "app", "g2")
	if err := rotateFor(s, fresh.Refresh.Hash, "app", newPair(t, grantNow, nil)); err != nil {
		t.Errorf("the new client's refresh token: %v", err)
	}
}

// A client of the config has no row, and its grants need none; a family
// that began before its client's removal committed is caught at its next
// refresh, since the generation it carries is gone.
func testClientStaticGrants(t *testing.T, s oauth.Store) {
	_, pair := issueFor(t, s, "config-client", "")
	if err := rotateFor(s, pair.Refresh.Hash, "config-client", newPair(t, grantNow, nil)); err != nil {
		t.Errorf("refresh token of a client of the config: %v", err)
	}
	createClient(t, s, newStoredClient("app", "g1"))
	_, gone := issueFor(t, s, "app", "g1")
	// The row goes without the revocation DeleteClient adds, as when a
	// family was committed after it ran.
	if _, err := dialectOf(t, s).ExecContext(context.Background(), `DELETE FROM oauth_clients WHERE client_id = 'app'`); err != nil {
		t.Fatal(err)
	}
	if err := rotateFor(s, gone.Refresh.Hash, "app", newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("refresh token of a generation that is gone: %v, want ErrNotFound", err)
	}
}

// dialectOf returns the dialect of one of this package's stores.
func dialectOf(t *testing.T, s oauth.Store) dialect {
	t.Helper()
	switch s := s.(type) {
	case *SQLite:
		return s.dialect
	case *Postgres:
		return s.dialect
	}
	t.Fatalf("store %T is not one of this package's", s)
	return nil
}

func ownedClient(id, owner string) oauth.StoredClient {
	c := newStoredClient(id, "g-"+id)
	c.OwnerUserID = owner
	return c
}

func testOwnedClients(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	createClient(t, s, newStoredClient("operators", "g0"))
	for _, c := range []oauth.StoredClient{ownedClient("b", "alice"), ownedClient("a", "alice"), ownedClient("c", "bob")} {
		if err := s.CreateOwnedClient(ctx, c, 2); err != nil {
			t.Fatalf("CreateOwnedClient(%s): %v", c.ID, err)
		}
	}
	if err := s.CreateOwnedClient(ctx, ownedClient("d", "alice"), 2); !errors.Is(err, oauth.ErrClientLimit) {
		t.Fatalf("third client of alice: err = %v, want ErrClientLimit", err)
	}
	if err := s.CreateOwnedClient(ctx, ownedClient("a", "bob"), 2); !errors.Is(err, oauth.ErrClientExists) {
		t.Fatalf("id in use: err = %v, want ErrClientExists", err)
	}
	got, err := s.ListOwnedClients(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" || got[0].OwnerUserID != "alice" {
		t.Fatalf("alice's clients = %+v, want a and b, owned by alice", got)
	}
	if got, _ := s.ListOwnedClients(ctx, "carol"); len(got) != 0 {
		t.Fatalf("carol's clients = %+v, want none", got)
	}
	// A removed client frees its place.
	if err := s.DeleteClient(ctx, "a", testTime); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOwnedClient(ctx, ownedClient("d", "alice"), 2); err != nil {
		t.Fatalf("after a removal: %v", err)
	}
}

func testOwnedClientsRacing(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	const limit, tries = 3, 12
	errs := make(chan error, tries)
	for i := range tries {
		go func() {
			errs <- s.CreateOwnedClient(ctx, ownedClient(fmt.Sprintf("c%02d", i), "alice"), limit)
		}()
	}
	created := 0
	for range tries {
		switch err := <-errs; {
		case err == nil:
			created++
		case !errors.Is(err, oauth.ErrClientLimit):
			t.Errorf("CreateOwnedClient: %v", err)
		}
	}
	got, err := s.ListOwnedClients(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if created != limit || len(got) != limit {
		t.Fatalf("%d created, %d stored; want %d each", created, len(got), limit)
	}
}
