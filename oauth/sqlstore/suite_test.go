package sqlstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// openStore returns a new store over an empty database, closed when t ends.
type openStore func(t *testing.T) oauth.Store

// runStoreSuite checks the oauth.Store contract (oauth/store.go) that every
// implementation must keep alike.
func runStoreSuite(t *testing.T, open openStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, open openStore)
	}{
		{"LookupUnknown", testLookupUnknown},
		{"IssueThenLookup", testIssueThenLookup},
		{"ScopesRoundTrip", testScopesRoundTrip},
		{"Rotate", testRotate},
		{"UsersAreIndependent", testUsersAreIndependent},
		{"Delete", testDelete},
		{"PersonalTokenStatus", testPersonalTokenStatus},
		{"TouchOnlyMovesForward", testTouchOnlyMovesForward},
		{"ConcurrentReplaceKeepsChain", testConcurrentReplaceKeepsChain},
		{"CanceledContext", testCanceledContext},
		{"ClosedStore", testClosedStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

// testTime has microsecond precision, the finest both databases keep, and
// a zone other than UTC, to check that times come back in UTC.
var testTime = time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.FixedZone("UTC+2", 2*3600))

// newPersonalToken returns a personal token record for userID with a fresh
// token, as oauth.PersonalTokens.Issue would store it.
func newPersonalToken(t *testing.T, userID string, scopes ...string) oauth.PersonalToken {
	t.Helper()
	text, h, err := oauth.NewToken(oauth.KindPersonal)
	if err != nil {
		t.Fatal(err)
	}
	return oauth.PersonalToken{
		UserID:    userID,
		Hash:      h,
		Hint:      oauth.TokenHint(text),
		Scopes:    scopes,
		CreatedAt: testTime,
	}
}

func replace(t *testing.T, s oauth.Store, pt oauth.PersonalToken) (oauth.TokenHash, bool) {
	t.Helper()
	replaced, ok, err := s.ReplacePersonalToken(context.Background(), pt)
	if err != nil {
		t.Fatalf("ReplacePersonalToken(%s): %v", pt.UserID, err)
	}
	return replaced, ok
}

func personalToken(t *testing.T, s oauth.Store, userID string) oauth.PersonalToken {
	t.Helper()
	pt, err := s.PersonalToken(context.Background(), userID)
	if err != nil {
		t.Fatalf("PersonalToken(%s): %v", userID, err)
	}
	return pt
}

func assertNotFound(t *testing.T, s oauth.Store, k oauth.Kind, h oauth.TokenHash) {
	t.Helper()
	p, err := s.LookupToken(context.Background(), k, h)
	if !errors.Is(err, oauth.ErrNotFound) {
		t.Fatalf("LookupToken(%v, %x) = %+v, %v; want ErrNotFound", k, h[:4], p, err)
	}
}

func assertFound(t *testing.T, s oauth.Store, h oauth.TokenHash, userID string) oauth.Principal {
	t.Helper()
	p, err := s.LookupToken(context.Background(), oauth.KindPersonal, h)
	if err != nil {
		t.Fatalf("LookupToken(personal, %x): %v", h[:4], err)
	}
	if p.UserID != userID {
		t.Fatalf("LookupToken(personal, %x).UserID = %q, want %q", h[:4], p.UserID, userID)
	}
	return p
}

func assertUTC(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %v, want %v in UTC", what, got, want.UTC())
	}
}

func testLookupUnknown(t *testing.T, open openStore) {
	s := open(t)
	var h oauth.TokenHash
	h[0] = 1
	for _, k := range []oauth.Kind{oauth.KindPersonal, oauth.KindAccess, oauth.KindRefresh, oauth.KindCode} {
		assertNotFound(t, s, k, h)
	}
}

func testIssueThenLookup(t *testing.T, open openStore) {
	s := open(t)
	pt := newPersonalToken(t, "alice", "read", "write:repo")
	if _, ok := replace(t, s, pt); ok {
		t.Error("first ReplacePersonalToken reported a replaced token")
	}
	p := assertFound(t, s, pt.Hash, "alice")
	if !slices.Equal(p.Scopes, pt.Scopes) {
		t.Errorf("Scopes = %q, want %q", p.Scopes, pt.Scopes)
	}
	if p.Kind != oauth.KindPersonal {
		t.Errorf("Kind = %v, want personal", p.Kind)
	}
	if p.ClientID != "" || !p.ExpiresAt.IsZero() {
		t.Errorf("ClientID = %q, ExpiresAt = %v; want both empty for a personal token", p.ClientID, p.ExpiresAt)
	}
	// A token of one kind is never accepted as another.
	assertNotFound(t, s, oauth.KindAccess, pt.Hash)
}

func testScopesRoundTrip(t *testing.T, open openStore) {
	s := open(t)
	tests := []struct {
		name   string
		scopes []string
	}{
		{"none", nil},
		{"one", []string{"read"}},
		{"order kept", []string{"write", "admin:users", "read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt := newPersonalToken(t, "user-"+tt.name, tt.scopes...)
			replace(t, s, pt)
			if got := assertFound(t, s, pt.Hash, pt.UserID).Scopes; !slices.Equal(got, tt.scopes) {
				t.Errorf("LookupToken scopes = %q, want %q", got, tt.scopes)
			}
			if got := personalToken(t, s, pt.UserID).Scopes; !slices.Equal(got, tt.scopes) {
				t.Errorf("PersonalToken scopes = %q, want %q", got, tt.scopes)
			}
		})
	}
}

func testRotate(t *testing.T, open openStore) {
	s := open(t)
	ctx := context.Background()
	first := newPersonalToken(t, "bob", "read")
	replace(t, s, first)
	if err := s.TouchPersonalToken(ctx, first.Hash, testTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	second := newPersonalToken(t, "bob", "read", "write")
	second.CreatedAt = testTime.Add(2 * time.Hour)
	replaced, ok := replace(t, s, second)
	if !ok || replaced != first.Hash {
		t.Fatalf("ReplacePersonalToken = %x, %v; want the first hash %x, true", replaced[:4], ok, first.Hash[:4])
	}
	assertNotFound(t, s, oauth.KindPersonal, first.Hash)
	if got := assertFound(t, s, second.Hash, "bob").Scopes; !slices.Equal(got, second.Scopes) {
		t.Errorf("scopes after rotation = %q, want %q", got, second.Scopes)
	}
	got := personalToken(t, s, "bob")
	if got.Hash != second.Hash || got.Hint != second.Hint {
		t.Errorf("PersonalToken = %x %q, want %x %q", got.Hash[:4], got.Hint, second.Hash[:4], second.Hint)
	}
	assertUTC(t, "CreatedAt", got.CreatedAt, second.CreatedAt)
	// The new token has not been used, whatever the old one was.
	if !got.LastUsedAt.IsZero() {
		t.Errorf("LastUsedAt after rotation = %v, want zero", got.LastUsedAt)
	}
}

func testUsersAreIndependent(t *testing.T, open openStore) {
	s := open(t)
	alice := newPersonalToken(t, "alice")
	bob := newPersonalToken(t, "bob")
	replace(t, s, alice)
	if _, ok := replace(t, s, bob); ok {
		t.Error("bob's first token replaced something")
	}
	if _, ok, err := s.DeletePersonalToken(context.Background(), "bob"); err != nil || !ok {
		t.Fatalf("DeletePersonalToken(bob) = %v, %v", ok, err)
	}
	assertFound(t, s, alice.Hash, "alice")
}

func testDelete(t *testing.T, open openStore) {
	s := open(t)
	ctx := context.Background()
	pt := newPersonalToken(t, "carol", "read")
	replace(t, s, pt)

	deleted, ok, err := s.DeletePersonalToken(ctx, "carol")
	if err != nil || !ok || deleted != pt.Hash {
		t.Fatalf("DeletePersonalToken = %x, %v, %v; want %x, true, nil", deleted[:4], ok, err, pt.Hash[:4])
	}
	assertNotFound(t, s, oauth.KindPersonal, pt.Hash)
	if _, err := s.PersonalToken(ctx, "carol"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("PersonalToken after delete: %v, want ErrNotFound", err)
	}
	deleted, ok, err = s.DeletePersonalToken(ctx, "carol")
	if err != nil || ok || deleted != (oauth.TokenHash{}) {
		t.Errorf("second DeletePersonalToken = %x, %v, %v; want zero, false, nil", deleted[:4], ok, err)
	}
	// A deleted user can be issued a token again.
	again := newPersonalToken(t, "carol")
	if _, ok := replace(t, s, again); ok {
		t.Error("ReplacePersonalToken after delete reported a replaced token")
	}
	assertFound(t, s, again.Hash, "carol")
}

func testPersonalTokenStatus(t *testing.T, open openStore) {
	s := open(t)
	if _, err := s.PersonalToken(context.Background(), "nobody"); !errors.Is(err, oauth.ErrNotFound) {
		t.Fatalf("PersonalToken(nobody): %v, want ErrNotFound", err)
	}
	pt := newPersonalToken(t, "dave", "read")
	replace(t, s, pt)
	got := personalToken(t, s, "dave")
	if got.UserID != "dave" || got.Hash != pt.Hash || got.Hint != pt.Hint || !slices.Equal(got.Scopes, pt.Scopes) {
		t.Errorf("PersonalToken = %+v, want %+v", got, pt)
	}
	assertUTC(t, "CreatedAt", got.CreatedAt, testTime)
	if !got.LastUsedAt.IsZero() {
		t.Errorf("LastUsedAt of an unused token = %v, want zero", got.LastUsedAt)
	}
}

func testTouchOnlyMovesForward(t *testing.T, open openStore) {
	s := open(t)
	ctx := context.Background()
	pt := newPersonalToken(t, "erin")
	replace(t, s, pt)
	// Touches arrive out of order from concurrent requests; the recorded
	// time is the latest of them.
	steps := []struct {
		name  string
		touch time.Time
		want  time.Time
	}{
		{"first use", testTime.Add(time.Minute), testTime.Add(time.Minute)},
		{"later use", testTime.Add(3 * time.Minute), testTime.Add(3 * time.Minute)},
		{"older use arriving late", testTime.Add(2 * time.Minute), testTime.Add(3 * time.Minute)},
		{"same time again", testTime.Add(3 * time.Minute), testTime.Add(3 * time.Minute)},
		{"latest use", testTime.Add(time.Hour), testTime.Add(time.Hour)},
	}
	for _, step := range steps {
		if err := s.TouchPersonalToken(ctx, pt.Hash, step.touch); err != nil {
			t.Fatalf("%s: TouchPersonalToken: %v", step.name, err)
		}
		assertUTC(t, step.name+": LastUsedAt", personalToken(t, s, "erin").LastUsedAt, step.want)
	}
	// A rotated-away token may still be touched by a request in flight.
	var unknown oauth.TokenHash
	unknown[0] = 7
	if err := s.TouchPersonalToken(ctx, unknown, testTime); err != nil {
		t.Errorf("TouchPersonalToken(unknown hash) = %v, want nil", err)
	}
}

// testConcurrentReplaceKeepsChain runs rotations for one user at once: each
// must return the hash its predecessor wrote, so that every hash but the
// last is reported as replaced exactly once and none stays live. Later
// rounds find the store's connections already open, so their writers
// really overlap.
func testConcurrentReplaceKeepsChain(t *testing.T, open openStore) {
	s := open(t)
	const rounds, writers = 3, 10
	type result struct {
		written, replaced oauth.TokenHash
		ok                bool
		err               error
	}
	var (
		tokens  []oauth.PersonalToken
		results []result
	)
	for range rounds {
		batch := make([]oauth.PersonalToken, writers)
		for i := range batch {
			batch[i] = newPersonalToken(t, "frank", "read")
		}
		batchResults := make([]result, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				<-start
				replaced, ok, err := s.ReplacePersonalToken(context.Background(), batch[i])
				batchResults[i] = result{batch[i].Hash, replaced, ok, err}
			})
		}
		close(start)
		wg.Wait()
		tokens = append(tokens, batch...)
		results = append(results, batchResults...)
	}

	next := map[oauth.TokenHash]oauth.TokenHash{} // replaced hash -> the hash that replaced it
	var firsts []oauth.TokenHash
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("ReplacePersonalToken: %v", r.err)
		}
		if !r.ok {
			firsts = append(firsts, r.written)
			continue
		}
		if _, dup := next[r.replaced]; dup {
			t.Fatalf("hash %x reported replaced twice", r.replaced[:4])
		}
		next[r.replaced] = r.written
	}
	if len(firsts) != 1 {
		t.Fatalf("%d writers found no token to replace, want exactly 1", len(firsts))
	}
	final := personalToken(t, s, "frank").Hash
	// Follow the chain from the first write; it must visit every write
	// once and end at the live token.
	seen := map[oauth.TokenHash]bool{}
	h := firsts[0]
	for {
		if seen[h] {
			t.Fatalf("rotation chain loops at %x", h[:4])
		}
		seen[h] = true
		n, ok := next[h]
		if !ok {
			break
		}
		h = n
	}
	if len(seen) != len(tokens) || h != final {
		t.Fatalf("rotation chain covers %d of %d writes and ends at %x; live token is %x", len(seen), len(tokens), h[:4], final[:4])
	}
	for _, tok := range tokens {
		if tok.Hash == final {
			assertFound(t, s, tok.Hash, "frank")
		} else {
			assertNotFound(t, s, oauth.KindPersonal, tok.Hash)
		}
	}
}

// storeCalls calls each method of s, for the tests that expect all of them
// to fail alike.
func storeCalls(s oauth.Store) map[string]func(ctx context.Context) error {
	var h oauth.TokenHash
	h[0] = 9
	return map[string]func(ctx context.Context) error{
		"LookupToken": func(ctx context.Context) error {
			_, err := s.LookupToken(ctx, oauth.KindPersonal, h)
			return err
		},
		"ReplacePersonalToken": func(ctx context.Context) error {
			_, _, err := s.ReplacePersonalToken(ctx, oauth.PersonalToken{UserID: "gina", Hash: h, CreatedAt: testTime})
			return err
		},
		"DeletePersonalToken": func(ctx context.Context) error {
			_, _, err := s.DeletePersonalToken(ctx, "gina")
			return err
		},
		"PersonalToken": func(ctx context.Context) error {
			_, err := s.PersonalToken(ctx, "gina")
			return err
		},
		"TouchPersonalToken": func(ctx context.Context) error {
			return s.TouchPersonalToken(ctx, h, testTime)
		},
		"Consents": func(ctx context.Context) error {
			_, err := s.Consents(ctx, "gina")
			return err
		},
		"RevokeClientGrant": func(ctx context.Context) error {
			_, _, err := s.RevokeClientGrant(ctx, "gina", "app", testTime)
			return err
		},
		"RevokeUser": func(ctx context.Context) error {
			_, _, err := s.RevokeUser(ctx, "gina", testTime)
			return err
		},
		"AccessTokenClaims": func(ctx context.Context) error {
			_, err := s.AccessTokenClaims(ctx, h)
			return err
		},
	}
}

func testCanceledContext(t *testing.T, open openStore) {
	s := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range storeCalls(s) {
		if err := call(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", name, err)
		}
	}
	// Nothing was written behind the cancellation.
	if _, err := s.PersonalToken(context.Background(), "gina"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("PersonalToken after canceled writes: %v, want ErrNotFound", err)
	}
}

// testClosedStore checks that a store that cannot answer says so, rather
// than reporting the token unknown: the validator turns ErrNotFound into
// 401 but any other error into 503 (docs/operations.md).
func testClosedStore(t *testing.T, open openStore) {
	s := open(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, call := range storeCalls(s) {
		err := call(context.Background())
		if err == nil || errors.Is(err, oauth.ErrNotFound) {
			t.Errorf("%s on a closed store: %v, want an error other than ErrNotFound", name, err)
		}
	}
}
