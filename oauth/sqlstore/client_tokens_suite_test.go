package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

func TestSQLiteClientTokens(t *testing.T) {
	runClientTokenSuite(t, func(t *testing.T) oauth.Store {
		return openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	})
}

func TestPostgresClientTokens(t *testing.T) {
	runClientTokenSuite(t, func(t *testing.T) oauth.Store {
		return openPostgresAt(t, pgtest.Start(t))
	})
}

// runClientTokenSuite checks the oauth.ClientTokenStore contract
// (oauth/clientcredentials.go), and that a client token is an access token
// like any other to the rest of the store.
func runClientTokenSuite(t *testing.T, open openStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s oauth.Store)
	}{
		{"RFC 6749 4.4.3 issued token is an access token without a user", testClientTokenIssue},
		{"RFC 7009 2.1 the client revokes its token", testClientTokenRevoke},
		{"revoking a client's own tokens leaves every other token", testClientTokenRevokeAll},
		{"removing a stored client revokes its own tokens", testClientTokenDeleteClient},
		{"a stored client's token needs that client to exist", testClientTokenNeedsLiveClient},
		{"a user's revocations leave client tokens alone", testClientTokenUserRevocations},
		{"purge expired", testClientTokenPurge},
		{"issues racing a removal leave no live token", testClientTokenIssueRacingDelete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

var clientTokenSeq struct {
	sync.Mutex
	n int
}

// newClientToken returns a client token of clientID of generation gen,
// issued at grantNow for an hour.
func newClientToken(t *testing.T, clientID, gen string, scopes ...string) oauth.ClientToken {
	t.Helper()
	_, h := newHash(t, oauth.KindAccess)
	clientTokenSeq.Lock()
	clientTokenSeq.n++
	family := "cc-family-" + time.Now().Format("150405.000000000") + "-" + string(rune('a'+clientTokenSeq.n%26))
	clientTokenSeq.Unlock()
	return oauth.ClientToken{
		Hash: h, ClientID: clientID, ClientGeneration: gen, FamilyID: family, Scopes: scopes,
		IssuedAt: grantNow, ExpiresAt: grantNow.Add(time.Hour),
	}
}

func issueClientToken(t *testing.T, s oauth.Store, clientID, gen string, scopes ...string) oauth.ClientToken {
	t.Helper()
	c := newClientToken(t, clientID, gen, scopes...)
	if err := s.IssueClientToken(context.Background(), c); err != nil {
		t.Fatalf("IssueClientToken(%s): %v", clientID, err)
	}
	return c
}

func testClientTokenIssue(t *testing.T, s oauth.Store) {
	c := issueClientToken(t, s, "machine", "", "chargers:read", "energy:read")
	p := mustAccess(t, s, c.Hash)
	if p.UserID != "" || p.ClientID != "machine" || p.Kind != oauth.KindAccess ||
		!slices.Equal(p.Scopes, []string{"chargers:read", "energy:read"}) {
		t.Errorf("LookupToken = %+v; want no user, client machine, access, two scopes", p)
	}
	assertUTC(t, "ExpiresAt", p.ExpiresAt, grantNow.Add(time.Hour))
	if got := p.TokenType(); got != oauth.TokenTypeClient {
		t.Errorf("TokenType = %q, want %q", got, oauth.TokenTypeClient)
	}
	info, err := s.IntrospectToken(context.Background(), c.Hash)
	if err != nil {
		t.Fatalf("IntrospectToken: %v", err)
	}
	if info.Kind != oauth.KindAccess || info.ClientID != "machine" || info.UserID != "" {
		t.Errorf("IntrospectToken = %+v; want an access token of machine with no user", info)
	}
	assertUTC(t, "IssuedAt", info.IssuedAt, grantNow)
	// Its family has no refresh token to rotate.
	if _, err := s.LookupToken(context.Background(), oauth.KindRefresh, c.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("LookupToken(refresh) = %v, want ErrNotFound", err)
	}
}

func testClientTokenRevoke(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	c := issueClientToken(t, s, "machine", "", "chargers:read")
	// Another client's revocation leaves it alone (RFC 7009 2.1).
	if revoked, err := s.RevokeToken(ctx, c.Hash, "other", grantNow); err != nil || len(revoked) != 0 {
		t.Fatalf("RevokeToken by another client = %v, %v; want nothing", revoked, err)
	}
	mustAccess(t, s, c.Hash)
	revoked, err := s.RevokeToken(ctx, c.Hash, "machine", grantNow)
	if err != nil || !slices.Equal(revoked, []oauth.TokenHash{c.Hash}) {
		t.Fatalf("RevokeToken = %v, %v; want the token's hash", revoked, err)
	}
	assertNotFound(t, s, oauth.KindAccess, c.Hash)
	if _, err := s.IntrospectToken(ctx, c.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("IntrospectToken after revoke = %v, want ErrNotFound", err)
	}
}

func sortedHashes(hs []oauth.TokenHash) []oauth.TokenHash {
	out := slices.Clone(hs)
	slices.SortFunc(out, func(a, b oauth.TokenHash) int { return slices.Compare(a[:], b[:]) })
	return out
}

func testClientTokenRevokeAll(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	a1 := issueClientToken(t, s, "machine", "", "chargers:read")
	a2 := issueClientToken(t, s, "machine", "", "energy:read")
	expired := newClientToken(t, "machine", "", "energy:read")
	expired.IssuedAt, expired.ExpiresAt = grantNow.Add(-2*time.Hour), grantNow.Add(-time.Hour)
	if err := s.IssueClientToken(ctx, expired); err != nil {
		t.Fatal(err)
	}
	other := issueClientToken(t, s, "other-machine", "", "chargers:read")
	// A user's tokens of the same client id.
	c := saveCode(t, s, "machine", "alice", "chargers:read")
	pair := newPair(t, grantNow, nil)
	if _, err := s.ExchangeCode(ctx, c.Hash, grantNow, pass, pair); err != nil {
		t.Fatal(err)
	}

	want := sortedHashes([]oauth.TokenHash{a1.Hash, a2.Hash})
	got, err := s.RevokeClientTokens(ctx, "machine", grantNow)
	if err != nil || !slices.Equal(sortedHashes(got), want) {
		t.Fatalf("RevokeClientTokens = %x, %v; want the two unexpired tokens", got, err)
	}
	assertNotFound(t, s, oauth.KindAccess, a1.Hash)
	assertNotFound(t, s, oauth.KindAccess, a2.Hash)
	mustAccess(t, s, other.Hash)
	if p := mustAccess(t, s, pair.Access.Hash); p.UserID != "alice" {
		t.Errorf("the user's access token = %+v", p)
	}
	if _, err := s.IntrospectToken(ctx, pair.Refresh.Hash); err != nil {
		t.Errorf("the user's refresh token: %v", err)
	}
	// Again: the same hashes, revoked before, for a cache to forget.
	got, err = s.RevokeClientTokens(ctx, "machine", grantNow)
	if err != nil || !slices.Equal(sortedHashes(got), want) {
		t.Fatalf("RevokeClientTokens again = %x, %v; want the same two", got, err)
	}
	if got, err := s.RevokeClientTokens(ctx, "nobody", grantNow); err != nil || len(got) != 0 {
		t.Errorf("RevokeClientTokens(nobody) = %x, %v; want none", got, err)
	}
}

func testClientTokenDeleteClient(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	createClient(t, s, newStoredClient("machine", "g1"))
	c := issueClientToken(t, s, "machine", "g1", "chargers:read")
	_, pair := issueFor(t, s, "machine", "g1")
	if err := s.DeleteClient(ctx, "machine", grantNow); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	assertNotFound(t, s, oauth.KindAccess, c.Hash)
	// A user's access token of the client runs out (oauth/clientstore.go).
	mustAccess(t, s, pair.Access.Hash)
	// A later client of the same id does not bring it back, and a token
	// asked for with the old generation is not issued.
	createClient(t, s, newStoredClient("machine", "g2"))
	assertNotFound(t, s, oauth.KindAccess, c.Hash)
	if err := s.IssueClientToken(ctx, newClientToken(t, "machine", "g1")); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("IssueClientToken with the removed generation = %v, want ErrNotFound", err)
	}
	issueClientToken(t, s, "machine", "g2", "chargers:read")
}

func testClientTokenNeedsLiveClient(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	if err := s.IssueClientToken(ctx, newClientToken(t, "ghost", "g1")); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("IssueClientToken for an unknown stored client = %v, want ErrNotFound", err)
	}
	createClient(t, s, newStoredClient("machine", "g1"))
	if err := s.IssueClientToken(ctx, newClientToken(t, "machine", "g0")); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("IssueClientToken with another generation = %v, want ErrNotFound", err)
	}
	issueClientToken(t, s, "machine", "g1")
	// A client of the config (no generation) needs no row.
	issueClientToken(t, s, "config-machine", "")
}

func testClientTokenUserRevocations(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	c := issueClientToken(t, s, "machine", "", "chargers:read")
	if _, _, err := s.RevokeUser(ctx, "alice", grantNow); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RevokeClientGrant(ctx, "alice", "machine", grantNow); err != nil {
		t.Fatal(err)
	}
	mustAccess(t, s, c.Hash)
}

func testClientTokenPurge(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	c := issueClientToken(t, s, "machine", "")
	if n, err := s.PurgeExpired(ctx, grantNow.Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("purge before a day past expiry = %d, %v; want 0", n, err)
	}
	n, err := s.PurgeExpired(ctx, c.ExpiresAt.Add(25*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("purge = %d, %v; want 2 (the token and its family)", n, err)
	}
	if _, err := s.IntrospectToken(ctx, c.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("purged client token still there: %v", err)
	}
}

// testClientTokenIssueRacingDelete: every token issued while its stored
// client is being removed is either refused at issue or revoked by the
// removal, never left live.
func testClientTokenIssueRacingDelete(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	for round := range 5 {
		gen := "g" + string(rune('0'+round))
		createClient(t, s, newStoredClient("machine", gen))
		const issuers = 8
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			issued []oauth.TokenHash
			start  = make(chan struct{})
		)
		for range issuers {
			wg.Go(func() {
				<-start
				for range 5 {
					c := newClientToken(t, "machine", gen)
					err := s.IssueClientToken(ctx, c)
					if errors.Is(err, oauth.ErrNotFound) {
						return // the client is gone
					}
					if err != nil {
						t.Errorf("IssueClientToken: %v", err)
						return
					}
					mu.Lock()
					issued = append(issued, c.Hash)
					mu.Unlock()
				}
			})
		}
		close(start)
		if err := s.DeleteClient(ctx, "machine", grantNow); err != nil {
			t.Fatalf("DeleteClient: %v", err)
		}
		wg.Wait()
		for _, h := range issued {
			assertNotFound(t, s, oauth.KindAccess, h)
		}
	}
}
