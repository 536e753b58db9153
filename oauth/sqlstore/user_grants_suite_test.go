package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

func TestSQLiteUserGrants(t *testing.T) {
	runUserGrantSuite(t, func(t *testing.T) oauth.Store {
		return openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	})
}

func TestPostgresUserGrants(t *testing.T) {
	runUserGrantSuite(t, func(t *testing.T) oauth.Store {
		return openPostgresAt(t, pgtest.Start(t))
	})
}

// runUserGrantSuite checks the oauth.UserGrantStore contract
// (oauth/usergrantstore.go) on one store implementation.
func runUserGrantSuite(t *testing.T, open openStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s oauth.Store)
	}{
		{"consents listed with granted_at", testUserConsents},
		{"revoke one client's grant", testRevokeClientGrant},
		{"revoked grant returns no expired token", testRevokeClientGrantExpired},
		{"revoke everything of a user", testRevokeUser},
		{"grant revocation racing exchange and rotation", testRevokeClientGrantRacing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// grantOf is one authorization of user for client, as the store holds it
// once the code is exchanged and the refresh token rotated once: the used
// code, the first pair (whose access token is still live) and the rotated
// pair.
type grantOf struct {
	code          oauth.Code
	first, second oauth.IssuedPair
}

func authorized(t *testing.T, s oauth.Store, clientID, userID string) grantOf {
	t.Helper()
	ctx := context.Background()
	if err := s.RecordConsent(ctx, userID, clientID, []string{"chargers:read"}); err != nil {
		t.Fatal(err)
	}
	g := grantOf{code: saveCode(t, s, clientID, userID, "chargers:read"), first: newPair(t, grantNow, nil), second: newPair(t, grantNow, nil)}
	if _, err := s.ExchangeCode(ctx, g.code.Hash, grantNow, pass, g.first); err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	if _, err := s.RotateRefresh(ctx, g.first.Refresh.Hash, clientID, grantNow, 0, passGrant, g.second); err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	return g
}

// accessHashes are the grant's access tokens, both live.
func (g grantOf) accessHashes() []oauth.TokenHash {
	return []oauth.TokenHash{g.first.Access.Hash, g.second.Access.Hash}
}

// assertRevokedGrant checks that nothing of g works any more: neither
// access token, nor the refresh token, and that a replay of its code is
// still reuse.
func assertRevokedGrant(t *testing.T, s oauth.Store, g grantOf) {
	t.Helper()
	ctx := context.Background()
	for _, h := range g.accessHashes() {
		assertNotFound(t, s, oauth.KindAccess, h)
	}
	if _, err := s.RotateRefresh(ctx, g.second.Refresh.Hash, g.code.ClientID, grantNow, 0, passGrant, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("refresh token of a revoked grant: %v, want ErrNotFound", err)
	}
	if _, err := s.IntrospectToken(ctx, g.second.Refresh.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("introspecting a revoked grant's refresh token: %v, want ErrNotFound", err)
	}
	if _, err := s.ExchangeCode(ctx, g.code.Hash, grantNow, pass, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrCodeReused) {
		t.Errorf("replaying a revoked grant's code: %v, want ErrCodeReused", err)
	}
}

func assertLiveGrant(t *testing.T, s oauth.Store, g grantOf) {
	t.Helper()
	for _, h := range g.accessHashes() {
		mustAccess(t, s, h)
	}
	if _, err := s.IntrospectToken(context.Background(), g.second.Refresh.Hash); err != nil {
		t.Errorf("refresh token of a grant left alone: %v", err)
	}
}

func sameHashes(got, want []oauth.TokenHash) bool {
	got, want = slices.Clone(got), slices.Clone(want)
	sortHashes(got)
	sortHashes(want)
	return slices.Equal(got, want)
}

// laterThan returns the current time once it is past t, at the
// microsecond precision both databases keep.
func laterThan(t time.Time) time.Time {
	for {
		if now := storedTime(time.Now()); now.After(t) {
			return now
		}
	}
}

func consentsOf(t *testing.T, s oauth.Store, userID string) []oauth.Consent {
	t.Helper()
	cs, err := s.Consents(context.Background(), userID)
	if err != nil {
		t.Fatalf("Consents(%s): %v", userID, err)
	}
	return cs
}

func testUserConsents(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	if cs := consentsOf(t, s, "alice"); len(cs) != 0 {
		t.Fatalf("no consent yet: %+v", cs)
	}
	before := storedTime(time.Now())
	for _, c := range []struct {
		client string
		scopes []string
	}{{"zeta", []string{"a"}}, {"app", []string{"a", "b"}}} {
		if err := s.RecordConsent(ctx, "alice", c.client, c.scopes); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordConsent(ctx, "bob", "app", []string{"c"}); err != nil {
		t.Fatal(err)
	}
	after := laterThan(before)
	cs := consentsOf(t, s, "alice")
	if len(cs) != 2 || cs[0].ClientID != "app" || cs[1].ClientID != "zeta" ||
		!slices.Equal(cs[0].Scopes, []string{"a", "b"}) || !slices.Equal(cs[1].Scopes, []string{"a"}) {
		t.Fatalf("alice's consents = %+v, want app [a b] and zeta [a], by client id", cs)
	}
	first := cs[0].GrantedAt
	if first.Before(before) || first.After(after) || first.Location() != time.UTC {
		t.Errorf("granted_at %v, want between %v and %v, in UTC", first, before, after)
	}

	// Scopes already granted leave granted_at alone; a new one moves it.
	laterThan(first)
	if err := s.RecordConsent(ctx, "alice", "app", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if got := consentsOf(t, s, "alice")[0]; !got.GrantedAt.Equal(first) || len(got.Scopes) != 2 {
		t.Errorf("after consenting to a granted scope again: %+v, want granted_at %v kept", got, first)
	}
	moved := laterThan(first)
	if err := s.RecordConsent(ctx, "alice", "app", []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if got := consentsOf(t, s, "alice")[0]; got.GrantedAt.Before(moved) || !slices.Equal(got.Scopes, []string{"a", "b", "c"}) {
		t.Errorf("after consenting to a new scope: %+v, want scopes [a b c] granted at %v or later", got, moved)
	}
}

func testRevokeClientGrant(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	target := authorized(t, s, "app", "alice")
	unused := saveCode(t, s, "app", "alice", "chargers:read")
	otherClient := authorized(t, s, "other", "alice")
	otherUser := authorized(t, s, "app", "bob")

	revoked, found, err := s.RevokeClientGrant(ctx, "alice", "app", grantNow)
	if err != nil || !found {
		t.Fatalf("RevokeClientGrant = %v, %v; want found", found, err)
	}
	if !sameHashes(revoked, target.accessHashes()) {
		t.Errorf("revoked %x, want the grant's two live access tokens", revoked)
	}
	assertRevokedGrant(t, s, target)
	if _, err := s.ExchangeCode(ctx, unused.Hash, grantNow, pass, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("unused code of a revoked grant: %v, want ErrNotFound", err)
	}
	if got, _ := s.GrantedScopes(ctx, "alice", "app"); len(got) != 0 {
		t.Errorf("consent kept: %q", got)
	}
	if cs := consentsOf(t, s, "alice"); len(cs) != 1 || cs[0].ClientID != "other" {
		t.Errorf("alice's consents = %+v, want other's alone", cs)
	}
	assertLiveGrant(t, s, otherClient)
	assertLiveGrant(t, s, otherUser)

	// Nothing is left to revoke; an unknown client has nothing either.
	for _, client := range []string{"app", "unknown"} {
		if revoked, found, err := s.RevokeClientGrant(ctx, "alice", client, grantNow); err != nil || found || len(revoked) != 0 {
			t.Errorf("RevokeClientGrant(%s) again = %x, %v, %v; want nothing found", client, revoked, found, err)
		}
	}
}

func testRevokeClientGrantExpired(t *testing.T, s oauth.Store) {
	g := authorized(t, s, "app", "alice")
	// Past the access tokens' hour, only the refresh token is left live.
	revoked, found, err := s.RevokeClientGrant(context.Background(), "alice", "app", grantNow.Add(2*time.Hour))
	if err != nil || !found || len(revoked) != 0 {
		t.Fatalf("RevokeClientGrant = %x, %v, %v; want found and no access token returned", revoked, found, err)
	}
	assertRevokedGrant(t, s, g)
}

func testRevokeUser(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	app := authorized(t, s, "app", "alice")
	other := authorized(t, s, "other", "alice")
	unused := saveCode(t, s, "other", "alice", "chargers:read")
	pt := newPersonalToken(t, "alice", "chargers:read")
	replace(t, s, pt)
	bob := authorized(t, s, "app", "bob")
	bobPT := newPersonalToken(t, "bob", "chargers:read")
	replace(t, s, bobPT)

	revoked, found, err := s.RevokeUser(ctx, "alice", grantNow)
	if err != nil || !found {
		t.Fatalf("RevokeUser = %v, %v; want found", found, err)
	}
	if want := append(append(app.accessHashes(), other.accessHashes()...), pt.Hash); !sameHashes(revoked, want) {
		t.Errorf("revoked %x, want the four access tokens and the personal token", revoked)
	}
	assertRevokedGrant(t, s, app)
	assertRevokedGrant(t, s, other)
	if _, err := s.ExchangeCode(ctx, unused.Hash, grantNow, pass, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("unused code of a revoked user: %v, want ErrNotFound", err)
	}
	assertNotFound(t, s, oauth.KindPersonal, pt.Hash)
	if _, err := s.PersonalToken(ctx, "alice"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("personal token record kept: %v", err)
	}
	if cs := consentsOf(t, s, "alice"); len(cs) != 0 {
		t.Errorf("consents kept: %+v", cs)
	}
	assertLiveGrant(t, s, bob)
	assertFound(t, s, bobPT.Hash, "bob")
	if cs := consentsOf(t, s, "bob"); len(cs) != 1 {
		t.Errorf("bob's consents = %+v, want his one", cs)
	}

	if revoked, found, err := s.RevokeUser(ctx, "alice", grantNow); err != nil || found || len(revoked) != 0 {
		t.Errorf("RevokeUser again = %x, %v, %v; want nothing found", revoked, found, err)
	}
	// The user can authorize again afterwards.
	again := authorized(t, s, "app", "alice")
	assertLiveGrant(t, s, again)
}
