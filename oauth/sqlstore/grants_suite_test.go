package sqlstore

import (
	"bytes"
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

func TestSQLiteGrants(t *testing.T) {
	runGrantSuite(t, func(t *testing.T) oauth.Store {
		return openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	})
}

func TestPostgresGrants(t *testing.T) {
	runGrantSuite(t, func(t *testing.T) oauth.Store {
		return openPostgresAt(t, pgtest.Start(t))
	})
}

// runGrantSuite checks the oauth.GrantStore contract (oauth/grantstore.go)
// on one store implementation.
func runGrantSuite(t *testing.T, open openStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s oauth.Store)
	}{
		{"RFC 6749 4.1.3 exchange issues pair", testGrantExchange},
		{"RFC 6749 4.1.3 unknown or expired code", testGrantExchangeUnknownOrExpired},
		{"failed check does not consume code", testGrantFailedCheckKeepsCode},
		{"RFC 6749 4.1.2 code reuse revokes family", testGrantCodeReuse},
		{"racing exchanges one success", testGrantConcurrentExchange},
		{"RFC 6749 6 rotate refresh", testGrantRotate},
		{"RFC 6749 6 rotate narrower scope", testGrantRotateNarrower},
		{"RFC 6749 5.2 rotate refused", testGrantRotateRefused},
		{"refresh_max_age caps the rotated refresh token", testGrantRotateMaxFamilyAge},
		{"failed check does not consume refresh", testGrantRotateCheckKeepsToken},
		{"RFC 9700 4.14.2 refresh reuse revokes family", testGrantRefreshReuse},
		{"refresh_grace replay", testGrantRefreshGrace},
		{"RFC 9700 4.14.2 racing rotations without grace", testGrantConcurrentRotate},
		{"racing rotations within grace", testGrantConcurrentRotateGrace},
		{"RFC 9700 4.14.2 racing reuses and revocations in one family", testGrantConcurrentFamilyRevocation},
		{"RFC 7009 2.1 revoke", testGrantRevoke},
		{"RFC 7662 introspect", testGrantIntrospect},
		{"grant context kept from code to family and tokens", testGrantContext},
		{"OpenID Connect Core 5.3 claims through an access token", testUserinfoClaims},
		{"seed 004 consent union", testGrantConsent},
		{"server key", testGrantServerKey},
		{"purge expired", testGrantPurge},
		{"closed store", testGrantClosedStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

// grantNow is the suite's clock: microsecond precision, not UTC.
var grantNow = testTime

func newHash(t *testing.T, k oauth.Kind) (string, oauth.TokenHash) {
	t.Helper()
	text, h, err := oauth.NewToken(k)
	if err != nil {
		t.Fatal(err)
	}
	return text, h
}

func newPair(t *testing.T, now time.Time, scopes []string) oauth.IssuedPair {
	t.Helper()
	_, ah := newHash(t, oauth.KindAccess)
	_, rh := newHash(t, oauth.KindRefresh)
	return oauth.IssuedPair{
		Access:   oauth.IssuedToken{Hash: ah, ExpiresAt: now.Add(time.Hour)},
		Refresh:  oauth.IssuedToken{Hash: rh, ExpiresAt: now.Add(30 * 24 * time.Hour)},
		IssuedAt: now,
		Scopes:   scopes,
	}
}

var familySeq struct {
	sync.Mutex
	n int
}

func saveCode(t *testing.T, s oauth.Store, clientID, userID string, scopes ...string) oauth.Code {
	t.Helper()
	_, h := newHash(t, oauth.KindCode)
	familySeq.Lock()
	familySeq.n++
	fam := "family-" + string(rune('a'+familySeq.n%26)) + time.Now().Format("150405.000000000")
	familySeq.Unlock()
	c := oauth.Code{
		Hash:        h,
		ClientID:    clientID,
		UserID:      userID,
		RedirectURI: "https://app.example/cb",
		Scopes:      scopes,
		Challenge:   "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		FamilyID:    fam,
		ExpiresAt:   grantNow.Add(10 * time.Minute),
	}
	if err := s.SaveCode(context.Background(), c); err != nil {
		t.Fatalf("SaveCode: %v", err)
	}
	return c
}

func pass(oauth.Code) error { return nil }

func passGrant(oauth.RefreshGrant) error { return nil }

// exchanged returns a code already exchanged for a pair.
func exchanged(t *testing.T, s oauth.Store) (oauth.Code, oauth.IssuedPair) {
	t.Helper()
	c := saveCode(t, s, "app", "alice", "chargers:read", "sessions:read")
	pair := newPair(t, grantNow, nil)
	if _, err := s.ExchangeCode(context.Background(), c.Hash, grantNow, pass, pair); err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	return c, pair
}

func lookupAccess(t *testing.T, s oauth.Store, h oauth.TokenHash) (oauth.Principal, error) {
	t.Helper()
	return s.LookupToken(context.Background(), oauth.KindAccess, h)
}

func mustAccess(t *testing.T, s oauth.Store, h oauth.TokenHash) oauth.Principal {
	t.Helper()
	p, err := lookupAccess(t, s, h)
	if err != nil {
		t.Fatalf("LookupToken(access %x): %v", h[:4], err)
	}
	return p
}

func testGrantExchange(t *testing.T, s oauth.Store) {
	c := saveCode(t, s, "app", "alice", "chargers:read", "sessions:read")
	pair := newPair(t, grantNow, nil)
	var seen oauth.Code
	got, err := s.ExchangeCode(context.Background(), c.Hash, grantNow.Add(time.Minute), func(c oauth.Code) error {
		seen = c
		return nil
	}, pair)
	if err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	for _, g := range []oauth.Code{seen, got} {
		if g.ClientID != "app" || g.UserID != "alice" || g.RedirectURI != c.RedirectURI ||
			g.Challenge != c.Challenge || g.FamilyID != c.FamilyID || !slices.Equal(g.Scopes, c.Scopes) {
			t.Errorf("code = %+v, want %+v", g, c)
		}
		assertUTC(t, "code ExpiresAt", g.ExpiresAt, c.ExpiresAt)
	}
	p := mustAccess(t, s, pair.Access.Hash)
	if p.UserID != "alice" || p.ClientID != "app" || p.Kind != oauth.KindAccess || !slices.Equal(p.Scopes, c.Scopes) {
		t.Errorf("principal = %+v", p)
	}
	assertUTC(t, "ExpiresAt", p.ExpiresAt, pair.Access.ExpiresAt)
	// A refresh token is not a bearer token.
	assertNotFound(t, s, oauth.KindAccess, pair.Refresh.Hash)
	assertNotFound(t, s, oauth.KindRefresh, pair.Refresh.Hash)
}

func testGrantExchangeUnknownOrExpired(t *testing.T, s oauth.Store) {
	_, unknown := newHash(t, oauth.KindCode)
	if _, err := s.ExchangeCode(context.Background(), unknown, grantNow, pass, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("unknown code: %v, want ErrNotFound", err)
	}
	c := saveCode(t, s, "app", "alice", "a")
	if _, err := s.ExchangeCode(context.Background(), c.Hash, c.ExpiresAt, pass, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("expired code: %v, want ErrNotFound", err)
	}
}

func testGrantFailedCheckKeepsCode(t *testing.T, s oauth.Store) {
	c := saveCode(t, s, "app", "alice", "a")
	wrong := oauth.ErrInvalidGrant.WithDescription("wrong verifier")
	pair := newPair(t, grantNow, nil)
	_, err := s.ExchangeCode(context.Background(), c.Hash, grantNow, func(oauth.Code) error { return wrong }, pair)
	if !errors.Is(err, wrong) {
		t.Fatalf("failing check: %v, want the check's error", err)
	}
	assertNotFound(t, s, oauth.KindAccess, pair.Access.Hash)
	pair2 := newPair(t, grantNow, nil)
	if _, err := s.ExchangeCode(context.Background(), c.Hash, grantNow, pass, pair2); err != nil {
		t.Fatalf("exchange after failed check: %v", err)
	}
	mustAccess(t, s, pair2.Access.Hash)
}

func testGrantCodeReuse(t *testing.T, s oauth.Store) {
	c, pair := exchanged(t, s)
	other := newPair(t, grantNow, nil)
	checked := false
	_, err := s.ExchangeCode(context.Background(), c.Hash, grantNow.Add(time.Second), func(oauth.Code) error {
		checked = true
		return nil
	}, other)
	var reuse *oauth.ReuseError
	if !errors.Is(err, oauth.ErrCodeReused) || !errors.As(err, &reuse) {
		t.Fatalf("second exchange: %v, want ErrCodeReused", err)
	}
	if checked {
		t.Error("check ran for a used code")
	}
	if reuse.FamilyID != c.FamilyID || reuse.ClientID != "app" || reuse.UserID != "alice" {
		t.Errorf("reuse = %+v, want family %s", reuse, c.FamilyID)
	}
	if !slices.Equal(reuse.Revoked, []oauth.TokenHash{pair.Access.Hash}) {
		t.Errorf("Revoked = %x, want the first access token", reuse.Revoked)
	}
	assertNotFound(t, s, oauth.KindAccess, pair.Access.Hash)
	assertNotFound(t, s, oauth.KindAccess, other.Access.Hash)
	if _, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow, 0, passGrant, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("refresh of a revoked family: %v, want ErrNotFound", err)
	}
}

const racers = 20

func testGrantConcurrentExchange(t *testing.T, s oauth.Store) {
	c := saveCode(t, s, "app", "alice", "a")
	pairs := make([]oauth.IssuedPair, racers)
	errs := make([]error, racers)
	for i := range pairs {
		pairs[i] = newPair(t, grantNow, nil)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			_, errs[i] = s.ExchangeCode(context.Background(), c.Hash, grantNow, pass, pairs[i])
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, oauth.ErrCodeReused):
		default:
			t.Errorf("racer %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d exchanges succeeded, want exactly 1", wins)
	}
	// The losers presented a consumed code: the family is revoked.
	for _, p := range pairs {
		assertNotFound(t, s, oauth.KindAccess, p.Access.Hash)
	}
}

func testGrantRotate(t *testing.T, s oauth.Store) {
	c, pair := exchanged(t, s)
	next := newPair(t, grantNow.Add(time.Minute), nil)
	var seen oauth.RefreshGrant
	rot, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow.Add(time.Minute), 0,
		func(g oauth.RefreshGrant) error { seen = g; return nil }, next)
	if err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	if rot.Replay || rot.FamilyID != c.FamilyID || rot.UserID != "alice" || !slices.Equal(rot.Scopes, c.Scopes) {
		t.Errorf("rotation = %+v", rot)
	}
	assertUTC(t, "AccessExpiresAt", rot.AccessExpiresAt, next.Access.ExpiresAt)
	assertUTC(t, "AccessIssuedAt", rot.AccessIssuedAt, next.IssuedAt)
	if seen.FamilyID != c.FamilyID || seen.ClientID != "app" || !slices.Equal(seen.Scopes, c.Scopes) {
		t.Errorf("grant = %+v", seen)
	}
	assertUTC(t, "FamilyCreatedAt", seen.FamilyCreatedAt, grantNow)
	mustAccess(t, s, next.Access.Hash)
	// Access tokens issued before stay valid until they expire.
	mustAccess(t, s, pair.Access.Hash)
	// The new refresh token rotates in turn.
	if _, err := s.RotateRefresh(context.Background(), next.Refresh.Hash, "app", grantNow.Add(2*time.Minute), 0, passGrant, newPair(t, grantNow, nil)); err != nil {
		t.Fatalf("second rotation: %v", err)
	}
}

func testGrantRotateNarrower(t *testing.T, s oauth.Store) {
	_, pair := exchanged(t, s)
	next := newPair(t, grantNow, []string{"sessions:read"})
	rot, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow, 0, passGrant, next)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rot.Scopes, []string{"sessions:read"}) {
		t.Errorf("Scopes = %q", rot.Scopes)
	}
	if p := mustAccess(t, s, next.Access.Hash); !slices.Equal(p.Scopes, []string{"sessions:read"}) {
		t.Errorf("access scopes = %q", p.Scopes)
	}
}

func testGrantRotateRefused(t *testing.T, s oauth.Store) {
	_, pair := exchanged(t, s)
	_, unknown := newHash(t, oauth.KindRefresh)
	cases := []struct {
		name   string
		hash   oauth.TokenHash
		client string
		now    time.Time
	}{
		{"unknown", unknown, "app", grantNow},
		{"another client", pair.Refresh.Hash, "other", grantNow},
		{"expired", pair.Refresh.Hash, "app", pair.Refresh.ExpiresAt},
		{"access token as refresh", pair.Access.Hash, "app", grantNow},
	}
	for _, tc := range cases {
		if _, err := s.RotateRefresh(context.Background(), tc.hash, tc.client, tc.now, 0, passGrant, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", tc.name, err)
		}
	}
	// None of them consumed the token.
	if _, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow, 0, passGrant, newPair(t, grantNow, nil)); err != nil {
		t.Errorf("rotation after refusals: %v", err)
	}
}

func testGrantRotateCheckKeepsToken(t *testing.T, s oauth.Store) {
	_, pair := exchanged(t, s)
	wider := oauth.ErrInvalidScope.WithDescription("wider")
	next := newPair(t, grantNow, nil)
	if _, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow, 0,
		func(oauth.RefreshGrant) error { return wider }, next); !errors.Is(err, wider) {
		t.Fatalf("failing check: %v", err)
	}
	assertNotFound(t, s, oauth.KindAccess, next.Access.Hash)
	if _, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow, 0, passGrant, next); err != nil {
		t.Fatalf("rotation after failed check: %v", err)
	}
}

func testGrantRefreshReuse(t *testing.T, s oauth.Store) {
	c, pair := exchanged(t, s)
	next := newPair(t, grantNow, nil)
	if _, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow, 0, passGrant, next); err != nil {
		t.Fatal(err)
	}
	_, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow.Add(time.Second), 0, passGrant, newPair(t, grantNow, nil))
	var reuse *oauth.ReuseError
	if !errors.Is(err, oauth.ErrRefreshReused) || !errors.As(err, &reuse) {
		t.Fatalf("reuse: %v, want ErrRefreshReused", err)
	}
	if reuse.FamilyID != c.FamilyID {
		t.Errorf("FamilyID = %q, want %q", reuse.FamilyID, c.FamilyID)
	}
	want := []oauth.TokenHash{pair.Access.Hash, next.Access.Hash}
	got := slices.Clone(reuse.Revoked)
	sortHashes(got)
	sortHashes(want)
	if !slices.Equal(got, want) {
		t.Errorf("Revoked = %x, want both access tokens", got)
	}
	assertNotFound(t, s, oauth.KindAccess, pair.Access.Hash)
	assertNotFound(t, s, oauth.KindAccess, next.Access.Hash)
	if _, err := s.RotateRefresh(context.Background(), next.Refresh.Hash, "app", grantNow, 0, passGrant, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("rotating the family's live refresh token: %v, want ErrNotFound", err)
	}
}

func sortHashes(hs []oauth.TokenHash) {
	slices.SortFunc(hs, func(a, b oauth.TokenHash) int { return bytes.Compare(a[:], b[:]) })
}

func testGrantRefreshGrace(t *testing.T, s oauth.Store) {
	_, pair := exchanged(t, s)
	next := newPair(t, grantNow, nil)
	next.Audience = "https://api.example/"
	first, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow, time.Minute, passGrant, next)
	if err != nil || first.Replay {
		t.Fatalf("first rotation: %+v, %v", first, err)
	}
	again, err := s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow.Add(time.Minute), time.Minute, passGrant, next)
	if err != nil {
		t.Fatalf("replay within grace: %v", err)
	}
	if !again.Replay || !slices.Equal(again.Scopes, first.Scopes) || !again.AccessExpiresAt.Equal(first.AccessExpiresAt) {
		t.Errorf("replay = %+v, want a replay of %+v", again, first)
	}
	// A replay describes the access token as stored, so a JWT access
	// token can be signed again with the same claims.
	assertUTC(t, "replay AccessIssuedAt", again.AccessIssuedAt, grantNow)
	if again.AccessAudience != next.Audience || first.AccessAudience != next.Audience {
		t.Errorf("AccessAudience: first %q, replay %q; want %q", first.AccessAudience, again.AccessAudience, next.Audience)
	}
	mustAccess(t, s, next.Access.Hash)
	// Past the grace it is reuse.
	_, err = s.RotateRefresh(context.Background(), pair.Refresh.Hash, "app", grantNow.Add(time.Minute+time.Microsecond), time.Minute, passGrant, next)
	if !errors.Is(err, oauth.ErrRefreshReused) {
		t.Fatalf("after grace: %v, want ErrRefreshReused", err)
	}
	assertNotFound(t, s, oauth.KindAccess, next.Access.Hash)
}

func raceRotations(t *testing.T, s oauth.Store, old oauth.TokenHash, grace time.Duration, pair oauth.IssuedPair) []oauth.Rotation {
	t.Helper()
	rots := make([]oauth.Rotation, racers)
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			rots[i], errs[i] = s.RotateRefresh(context.Background(), old, "app", grantNow, grace, passGrant, pair)
		})
	}
	close(start)
	wg.Wait()
	var ok []oauth.Rotation
	for i, err := range errs {
		switch {
		case err == nil:
			ok = append(ok, rots[i])
		case grace == 0 && errors.Is(err, oauth.ErrRefreshReused):
		case grace == 0 && errors.Is(err, oauth.ErrNotFound):
			// after the first reuse revoked the family
		default:
			t.Errorf("racer %d: %v", i, err)
		}
	}
	return ok
}

func testGrantConcurrentRotate(t *testing.T, s oauth.Store) {
	_, pair := exchanged(t, s)
	// Every racer derives the same pair from the same token.
	next := newPair(t, grantNow, nil)
	ok := raceRotations(t, s, pair.Refresh.Hash, 0, next)
	if len(ok) != 1 {
		t.Fatalf("%d rotations succeeded, want exactly 1", len(ok))
	}
	// The others counted as reuse: the family is revoked.
	assertNotFound(t, s, oauth.KindAccess, next.Access.Hash)
	assertNotFound(t, s, oauth.KindAccess, pair.Access.Hash)
}

func testGrantConcurrentRotateGrace(t *testing.T, s oauth.Store) {
	_, pair := exchanged(t, s)
	next := newPair(t, grantNow, nil)
	ok := raceRotations(t, s, pair.Refresh.Hash, time.Minute, next)
	if len(ok) != racers {
		t.Fatalf("%d rotations succeeded, want all %d", len(ok), racers)
	}
	fresh := 0
	for _, r := range ok {
		if !r.Replay {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d non-replay rotations, want exactly 1", fresh)
	}
	mustAccess(t, s, next.Access.Hash)
}

func testGrantRevoke(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	_, pair := exchanged(t, s)
	next := newPair(t, grantNow, nil)
	if _, err := s.RotateRefresh(ctx, pair.Refresh.Hash, "app", grantNow, 0, passGrant, next); err != nil {
		t.Fatal(err)
	}
	// RFC 7009 2.1: another client's token is left alone.
	if got, err := s.RevokeToken(ctx, next.Refresh.Hash, "other", grantNow); err != nil || len(got) != 0 {
		t.Fatalf("revoke by another client = %x, %v", got, err)
	}
	mustAccess(t, s, next.Access.Hash)
	// Unknown token: nothing, no error.
	_, unknown := newHash(t, oauth.KindAccess)
	if got, err := s.RevokeToken(ctx, unknown, "app", grantNow); err != nil || len(got) != 0 {
		t.Fatalf("revoke unknown = %x, %v", got, err)
	}
	// An access token alone.
	got, err := s.RevokeToken(ctx, pair.Access.Hash, "app", grantNow)
	if err != nil || !slices.Equal(got, []oauth.TokenHash{pair.Access.Hash}) {
		t.Fatalf("revoke access = %x, %v", got, err)
	}
	assertNotFound(t, s, oauth.KindAccess, pair.Access.Hash)
	mustAccess(t, s, next.Access.Hash)
	// A refresh token with its family.
	got, err = s.RevokeToken(ctx, next.Refresh.Hash, "app", grantNow)
	if err != nil || !slices.Contains(got, next.Access.Hash) {
		t.Fatalf("revoke refresh = %x, %v", got, err)
	}
	assertNotFound(t, s, oauth.KindAccess, next.Access.Hash)
	if _, err := s.RotateRefresh(ctx, next.Refresh.Hash, "app", grantNow, 0, passGrant, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("rotating a revoked refresh token: %v", err)
	}
}

func testGrantIntrospect(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	_, pair := exchanged(t, s)
	for _, tc := range []struct {
		h    oauth.TokenHash
		kind oauth.Kind
		exp  time.Time
	}{{pair.Access.Hash, oauth.KindAccess, pair.Access.ExpiresAt}, {pair.Refresh.Hash, oauth.KindRefresh, pair.Refresh.ExpiresAt}} {
		info, err := s.IntrospectToken(ctx, tc.h)
		if err != nil {
			t.Fatalf("IntrospectToken: %v", err)
		}
		if info.Kind != tc.kind || info.ClientID != "app" || info.UserID != "alice" || len(info.Scopes) != 2 {
			t.Errorf("info = %+v", info)
		}
		assertUTC(t, "ExpiresAt", info.ExpiresAt, tc.exp)
		assertUTC(t, "IssuedAt", info.IssuedAt, grantNow)
	}
	if _, err := s.RotateRefresh(ctx, pair.Refresh.Hash, "app", grantNow, 0, passGrant, newPair(t, grantNow, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IntrospectToken(ctx, pair.Refresh.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("rotated refresh token: %v, want ErrNotFound", err)
	}
	if _, err := s.RevokeToken(ctx, pair.Access.Hash, "app", grantNow); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IntrospectToken(ctx, pair.Access.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("revoked access token: %v, want ErrNotFound", err)
	}
}

func testGrantConsent(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	if got, err := s.GrantedScopes(ctx, "alice", "app"); err != nil || len(got) != 0 {
		t.Fatalf("no consent yet = %q, %v", got, err)
	}
	for _, add := range [][]string{{"a", "b"}, {"b", "c"}} {
		if err := s.RecordConsent(ctx, "alice", "app", add); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.GrantedScopes(ctx, "alice", "app"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("GrantedScopes = %q, want the union [a b c]", got)
	}
	if got, _ := s.GrantedScopes(ctx, "alice", "other"); len(got) != 0 {
		t.Errorf("other client = %q, want none", got)
	}
	// Concurrent consents are all kept.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := s.RecordConsent(ctx, "bob", "app", []string{string(rune('k' + i))}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _ := s.GrantedScopes(ctx, "bob", "app"); len(got) != 10 {
		t.Errorf("after 10 concurrent consents: %q", got)
	}
}

func testGrantServerKey(t *testing.T, s oauth.Store) {
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := s.ServerKey(context.Background())
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	if len(keys[0]) != 32 || bytes.Equal(keys[0], make([]byte, 32)) {
		t.Fatalf("key = %x, want 32 random bytes", keys[0])
	}
	for _, k := range keys {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("instances got different server keys")
		}
	}
}

func testGrantPurge(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	_, pair := exchanged(t, s)
	saveCode(t, s, "app", "alice", "a")
	if n, err := s.PurgeExpired(ctx, grantNow.Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("purge before a day past expiry = %d, %v; want 0", n, err)
	}
	// A day after the access token and the codes expired, they go.
	n, err := s.PurgeExpired(ctx, grantNow.Add(time.Hour+25*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("purge = %d, %v; want 3 (two codes, one access token)", n, err)
	}
	if _, err := s.IntrospectToken(ctx, pair.Access.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("purged access token still there: %v", err)
	}
	if _, err := s.IntrospectToken(ctx, pair.Refresh.Hash); err != nil {
		t.Errorf("refresh token purged early: %v", err)
	}
	// Past the refresh token's expiry its family goes with it.
	n, err = s.PurgeExpired(ctx, pair.Refresh.ExpiresAt.Add(25*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("second purge = %d, %v; want 2 (refresh token, family)", n, err)
	}
}

func testGrantClosedStore(t *testing.T, s oauth.Store) {
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var h oauth.TokenHash
	calls := map[string]func() error{
		"SaveCode": func() error { return s.SaveCode(ctx, oauth.Code{Hash: h, ExpiresAt: grantNow}) },
		"ExchangeCode": func() error {
			_, err := s.ExchangeCode(ctx, h, grantNow, pass, oauth.IssuedPair{})
			return err
		},
		"RotateRefresh": func() error {
			_, err := s.RotateRefresh(ctx, h, "app", grantNow, 0, passGrant, oauth.IssuedPair{})
			return err
		},
		"RevokeToken": func() error { _, err := s.RevokeToken(ctx, h, "app", grantNow); return err },
		"IntrospectToken": func() error {
			_, err := s.IntrospectToken(ctx, h)
			return err
		},
		"LookupToken access": func() error { _, err := s.LookupToken(ctx, oauth.KindAccess, h); return err },
		"GrantedScopes":      func() error { _, err := s.GrantedScopes(ctx, "a", "b"); return err },
		"RecordConsent":      func() error { return s.RecordConsent(ctx, "a", "b", []string{"x"}) },
		"ServerKey":          func() error { _, err := s.ServerKey(ctx); return err },
		"PurgeExpired":       func() error { _, err := s.PurgeExpired(ctx, grantNow); return err },
	}
	for name, call := range calls {
		if err := call(); err == nil || errors.Is(err, oauth.ErrNotFound) {
			t.Errorf("%s on a closed store: %v, want an error other than ErrNotFound", name, err)
		}
	}
}

// Reuses of different rotated tokens of one family, rotations and
// revocations racing must each end in an answer of the contract, never in a
// store error such as a deadlock, and leave the family revoked.
func testGrantConcurrentFamilyRevocation(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	_, first := exchanged(t, s)
	second := newPair(t, grantNow, nil)
	if _, err := s.RotateRefresh(ctx, first.Refresh.Hash, "app", grantNow, 0, passGrant, second); err != nil {
		t.Fatal(err)
	}
	third := newPair(t, grantNow, nil)
	if _, err := s.RotateRefresh(ctx, second.Refresh.Hash, "app", grantNow, 0, passGrant, third); err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	errs := make(chan error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			var err error
			switch i % 4 {
			case 0:
				_, err = s.RotateRefresh(ctx, first.Refresh.Hash, "app", grantNow, 0, passGrant, newPair(t, grantNow, nil))
			case 1:
				_, err = s.RotateRefresh(ctx, second.Refresh.Hash, "app", grantNow, 0, passGrant, newPair(t, grantNow, nil))
			case 2:
				_, err = s.RevokeToken(ctx, third.Refresh.Hash, "app", grantNow)
			case 3:
				_, err = s.RotateRefresh(ctx, third.Refresh.Hash, "app", grantNow, 0, passGrant, newPair(t, grantNow, nil))
			}
			if err != nil && !errors.Is(err, oauth.ErrNotFound) && !errors.Is(err, oauth.ErrRefreshReused) {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("racer: %v", err)
	}
	for _, p := range []oauth.IssuedPair{first, second, third} {
		assertNotFound(t, s, oauth.KindAccess, p.Access.Hash)
	}
}

// Access tokens revoked through one instance, alone or with their
// family, reach the other instances through LISTEN/NOTIFY, and only once
// the revocation commits.
func TestPostgresGrantRevocationsNotify(t *testing.T) {
	dsn := pgtest.Start(t)
	watcher := openPostgresAt(t, dsn)
	s := openPostgresAt(t, dsn)
	w := watchRevocations(t, watcher)
	waitListening(t, w)
	ctx := context.Background()

	_, pair := exchanged(t, s)
	if _, err := s.RevokeToken(ctx, pair.Access.Hash, "app", grantNow); err != nil {
		t.Fatal(err)
	}
	w.expectForgotten(t, pair.Access.Hash)

	// Reuse of a code announces the family's access token.
	c, pair2 := exchanged(t, s)
	if _, err := s.ExchangeCode(ctx, c.Hash, grantNow, pass, newPair(t, grantNow, nil)); !errors.Is(err, oauth.ErrCodeReused) {
		t.Fatalf("reuse: %v", err)
	}
	w.expectForgotten(t, pair2.Access.Hash)

	_, pair3 := exchanged(t, s)
	if _, err := s.RevokeToken(ctx, pair3.Refresh.Hash, "app", grantNow); err != nil {
		t.Fatal(err)
	}
	w.expectForgotten(t, pair3.Access.Hash)
	// Nothing else was announced: notifications arrive in commit order, so
	// the next one heard is that of the next revocation.
	_, marker := exchanged(t, s)
	if _, err := s.RevokeToken(ctx, marker.Access.Hash, "app", grantNow); err != nil {
		t.Fatal(err)
	}
	w.expectForgotten(t, marker.Access.Hash)
}

func testGrantRotateMaxFamilyAge(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	_, pair := exchanged(t, s) // family created at grantNow
	next := newPair(t, grantNow.Add(time.Hour), nil)
	next.MaxFamilyAge = 2 * time.Hour
	if _, err := s.RotateRefresh(ctx, pair.Refresh.Hash, "app", grantNow.Add(time.Hour), 0, passGrant, next); err != nil {
		t.Fatal(err)
	}
	info, err := s.IntrospectToken(ctx, next.Refresh.Hash)
	if err != nil {
		t.Fatal(err)
	}
	assertUTC(t, "capped refresh ExpiresAt", info.ExpiresAt, grantNow.Add(2*time.Hour))
	// A cap later than the TTL changes nothing.
	last := newPair(t, grantNow.Add(time.Hour), nil)
	last.MaxFamilyAge = 365 * 24 * time.Hour
	if _, err := s.RotateRefresh(ctx, next.Refresh.Hash, "app", grantNow.Add(time.Hour), 0, passGrant, last); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.IntrospectToken(ctx, last.Refresh.Hash); !info.ExpiresAt.Equal(last.Refresh.ExpiresAt) {
		t.Errorf("uncapped refresh ExpiresAt = %v, want %v", info.ExpiresAt, last.Refresh.ExpiresAt)
	}
}
