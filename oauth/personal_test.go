package oauth

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var personalScopes = []string{"chargers:read", "sessions:read"}

type personalFixture struct {
	pt    *PersonalTokens
	store *fakeTokenStore
	v     *Validator
	clock *testClock
	audit *recorder
}

func newPersonalFixture(tb testing.TB) *personalFixture {
	tb.Helper()
	s := newFakeTokenStore()
	clk := newTestClock()
	v := newValidatorForTest(tb, s, CacheConfig{}, clk)
	audit := newRecorder()
	return &personalFixture{
		pt: &PersonalTokens{
			Store:     s,
			Validator: v,
			Scopes:    append([]string(nil), personalScopes...),
			Metrics:   audit,
			Audit:     audit,
			Now:       clk.now,
		},
		store: s,
		v:     v,
		clock: clk,
		audit: audit,
	}
}

func (f *personalFixture) issue(tb testing.TB, user string) (string, PersonalToken) {
	tb.Helper()
	text, rec, err := f.pt.Issue(context.Background(), user)
	if err != nil {
		tb.Fatalf("Issue(%q): %v", user, err)
	}
	return text, rec
}

func (f *personalFixture) status(tb testing.TB, user string) (PersonalToken, bool) {
	tb.Helper()
	rec, ok, err := f.pt.Status(context.Background(), user)
	if err != nil {
		tb.Fatalf("Status(%q): %v", user, err)
	}
	return rec, ok
}

// assertNoTokenLogged fails when any audit event holds a token text.
func (f *personalFixture) assertNoTokenLogged(tb testing.TB, texts ...string) {
	tb.Helper()
	f.audit.assertNoSecret(tb, texts...)
}

func TestPersonalIssue(t *testing.T) {
	// POST activates a tgp_ token carrying personal_token_scopes.
	f := newPersonalFixture(t)
	text, rec := f.issue(t, "user-1")

	if !strings.HasPrefix(text, "tgp_") || len(text) != TokenLen {
		t.Fatalf("SPEC2: issued %q, want a tgp_ token of length %d", text, TokenLen)
	}
	if k, err := ParseToken(text); err != nil || k != KindPersonal {
		t.Fatalf("ParseToken(%q) = %q, %v; want personal", text, k, err)
	}
	want := PersonalToken{
		UserID:    "user-1",
		Hash:      HashToken(text),
		Hint:      text[:8],
		Scopes:    personalScopes,
		CreatedAt: f.clock.now().UTC().Truncate(time.Second),
	}
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("record = %+v, want %+v", rec, want)
	}
	if rec.CreatedAt.Location() != time.UTC {
		t.Errorf("SPEC4.7: created_at is in %v, want UTC", rec.CreatedAt.Location())
	}

	p := mustValidate(t, f.v, text)
	if p.UserID != "user-1" || p.ClientID != "" || p.Kind != KindPersonal || !reflect.DeepEqual(p.Scopes, personalScopes) {
		t.Fatalf("SPEC4.7: principal = %+v; want user-1, no client id, personal, scopes %q", p, personalScopes)
	}
	if p.Kind.String() != "personal" {
		t.Errorf("SPEC3: token type %q, want personal", p.Kind)
	}

	entries := f.audit.withMessage(AuditPersonalActivated)
	if len(entries) != 1 || entries[0].UserID != "user-1" || entries[0].Grant != GrantPersonal {
		t.Errorf("want one %q audit event for user-1; got %+v", AuditPersonalActivated, f.audit.events)
	}
	if f.audit.issued[GrantPersonal] != 1 || f.audit.storeCalls[OpPersonal] != 1 {
		t.Errorf("metrics: %d personal tokens issued, %d store calls; want 1 and 1", f.audit.issued[GrantPersonal], f.audit.storeCalls[OpPersonal])
	}
	f.assertNoTokenLogged(t, text)
}

func TestPersonalIssueRotates(t *testing.T) {
	// Any earlier personal token of that user stops working at once.
	f := newPersonalFixture(t)
	old, _ := f.issue(t, "user-1")
	mustValidate(t, f.v, old)
	settle(f.v) // the old token is now served from the cache

	text, rec := f.issue(t, "user-1")
	if text == old {
		t.Fatal("rotation returned the same token")
	}
	expectInvalid(t, f.v, old)
	mustValidate(t, f.v, text)
	settle(f.v)
	expectInvalid(t, f.v, old)

	got, ok := f.status(t, "user-1")
	if !ok || got.Hash != rec.Hash || got.Hint != TokenHint(text) {
		t.Fatalf("status after rotation = %+v, %v; want the new token", got, ok)
	}
	if n := len(f.audit.withMessage(AuditPersonalRotated)); n != 1 {
		t.Errorf("want one \"personal token rotated\" log, got %d", n)
	}
	f.assertNoTokenLogged(t, old, text)
}

func TestPersonalIssueRotatesBeforeCacheSettles(t *testing.T) {
	// The old token's cache entry may still be in flight at
	// rotation; it must stop working at once all the same.
	//
	// Regression guard, same cause as TestValidateForgetBeforeCacheSettles.
	f := newPersonalFixture(t)
	old, _ := f.issue(t, "user-1")
	for i := 0; i < 20; i++ {
		mustValidate(t, f.v, old)
		text, _ := f.issue(t, "user-1")
		expectInvalid(t, f.v, old)
		settle(f.v)
		expectInvalid(t, f.v, old)
		old = text
	}
}

func TestPersonalIssueIsPerUser(t *testing.T) {
	// Each user has at most one token; rotating one user's token
	// leaves other users' tokens alone.
	f := newPersonalFixture(t)
	a, _ := f.issue(t, "alice")
	b, _ := f.issue(t, "bob")
	mustValidate(t, f.v, a)
	mustValidate(t, f.v, b)
	settle(f.v)
	a2, _ := f.issue(t, "alice")
	expectInvalid(t, f.v, a)
	if p := mustValidate(t, f.v, b); p.UserID != "bob" {
		t.Fatalf("bob's token speaks for %q", p.UserID)
	}
	if p := mustValidate(t, f.v, a2); p.UserID != "alice" {
		t.Fatalf("alice's new token speaks for %q", p.UserID)
	}
}

func TestPersonalDeactivate(t *testing.T) {
	// DELETE deactivates; the token stops working at once.
	f := newPersonalFixture(t)
	text, _ := f.issue(t, "user-1")
	mustValidate(t, f.v, text)
	settle(f.v)

	ok, err := f.pt.Deactivate(context.Background(), "user-1")
	if err != nil || !ok {
		t.Fatalf("Deactivate = %v, %v; want true, nil", ok, err)
	}
	expectInvalid(t, f.v, text)
	settle(f.v)
	expectInvalid(t, f.v, text)

	ok, err = f.pt.Deactivate(context.Background(), "user-1")
	if err != nil || ok {
		t.Fatalf("second Deactivate = %v, %v; want false, nil", ok, err)
	}
	ok, err = f.pt.Deactivate(context.Background(), "never-had-one")
	if err != nil || ok {
		t.Fatalf("Deactivate of a user without a token = %v, %v; want false, nil", ok, err)
	}
	if n := len(f.audit.withMessage(AuditPersonalDeactivated)); n != 1 {
		t.Errorf("want one \"personal token deactivated\" log, got %d", n)
	}

	// A later Issue activates a fresh token.
	again, _ := f.issue(t, "user-1")
	mustValidate(t, f.v, again)
	expectInvalid(t, f.v, text)
}

func TestPersonalStatus(t *testing.T) {
	// GET reports active, created_at, last_used_at and hint.
	f := newPersonalFixture(t)
	if rec, ok := f.status(t, "user-1"); ok {
		t.Fatalf("status before issue = %+v, active; want inactive", rec)
	}

	text, issued := f.issue(t, "user-1")
	rec, ok := f.status(t, "user-1")
	if !ok {
		t.Fatal("status after issue: inactive")
	}
	if rec.Hint != text[:8] || !rec.CreatedAt.Equal(issued.CreatedAt) || !rec.LastUsedAt.IsZero() || rec.Hash != HashToken(text) {
		t.Fatalf("status after issue = %+v; want hint %q, created %v, never used", rec, text[:8], issued.CreatedAt)
	}

	usedAt := f.clock.add(time.Minute)
	mustValidate(t, f.v, text)
	writeQueuedTouches(f.v) // rather than waiting for the flush ticker
	if rec, _ := f.status(t, "user-1"); !rec.LastUsedAt.Equal(usedAt) {
		t.Fatalf("last_used_at = %v, want %v", rec.LastUsedAt, usedAt)
	}

	if _, err := f.pt.Deactivate(context.Background(), "user-1"); err != nil {
		t.Fatal(err)
	}
	if rec, ok := f.status(t, "user-1"); ok {
		t.Fatalf("status after deactivate = %+v, active; want inactive", rec)
	}
}

func TestPersonalStoreErrors(t *testing.T) {
	f := newPersonalFixture(t)
	text, _ := f.issue(t, "user-1")
	mustValidate(t, f.v, text)
	settle(f.v)
	f.store.setFailing(true)

	got, rec, err := f.pt.Issue(context.Background(), "user-1")
	if !errors.Is(err, errFakeStoreDown) || got != "" || rec.UserID != "" {
		t.Fatalf("Issue with the store down = %q, %+v, %v; want the store error and no token", got, rec, err)
	}
	ok, err := f.pt.Deactivate(context.Background(), "user-1")
	if !errors.Is(err, errFakeStoreDown) || ok {
		t.Fatalf("Deactivate with the store down = %v, %v; want false and the store error", ok, err)
	}
	st, ok, err := f.pt.Status(context.Background(), "user-1")
	if !errors.Is(err, errFakeStoreDown) || ok {
		t.Fatalf("Status with the store down = %+v, %v, %v; want the store error", st, ok, err)
	}
	// Nothing was changed, so the cached token keeps working (docs/operations.md).
	mustValidate(t, f.v, text)
	f.store.setFailing(false)
	mustValidate(t, f.v, text)
}

// wrappedNotFoundStore answers PersonalToken with ErrNotFound wrapped in
// context, as a SQL store might (fmt.Errorf("...: %w", ErrNotFound)).
type wrappedNotFoundStore struct{ *fakeTokenStore }

func (s wrappedNotFoundStore) PersonalToken(ctx context.Context, userID string) (PersonalToken, error) {
	rec, err := s.fakeTokenStore.PersonalToken(ctx, userID)
	if err != nil {
		return rec, fmt.Errorf("personal token of %q: %w", userID, err)
	}
	return rec, nil
}

func TestPersonalStatusWrappedNotFound(t *testing.T) {
	// A user without a token gets {"active":false}, not an error.
	// The validator treats a wrapped ErrNotFound as "not found"
	// (errors.Is); Status must too.
	//
	// Regression guard: Status once compared err == ErrNotFound, so a store
	// that wrapped ErrNotFound turned "no token" into an error (a 500 on GET).
	f := newPersonalFixture(t)
	f.pt.Store = wrappedNotFoundStore{f.store}
	rec, ok, err := f.pt.Status(context.Background(), "nobody")
	if err != nil || ok {
		t.Fatalf("Status with a wrapped ErrNotFound = %+v, %v, %v; want inactive, nil", rec, ok, err)
	}
}

func TestPersonalConcurrentIssueLeavesOneToken(t *testing.T) {
	// Concurrent calls leave exactly one active token.
	f := newPersonalFixture(t)
	const n = 10
	texts := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			text, _, err := f.pt.Issue(context.Background(), "user-1")
			if err != nil {
				t.Errorf("Issue: %v", err)
				return
			}
			texts[i] = text
		}(i)
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	var valid []string
	for _, text := range texts {
		if _, err := f.v.Validate(context.Background(), text); err == nil {
			valid = append(valid, text)
		} else if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Validate: %v", err)
		}
	}
	if len(valid) != 1 {
		t.Fatalf("%d of %d concurrently issued tokens validate, want exactly 1", len(valid), n)
	}
	if hs := f.store.activeHashes("user-1"); len(hs) != 1 || hs[0] != HashToken(valid[0]) {
		t.Fatalf("store holds %d tokens for the user, want just the valid one", len(hs))
	}
	rec, ok := f.status(t, "user-1")
	if !ok || rec.Hash != HashToken(valid[0]) {
		t.Fatalf("status names another token than the one that validates")
	}
	if got := len(f.audit.withMessage(AuditPersonalActivated)); got != 1 {
		t.Errorf("%d activations logged, want 1 (the other %d are rotations)", got, n-1)
	}
	f.assertNoTokenLogged(t, texts...)
}

func TestPersonalConcurrentIssueWhileValidating(t *testing.T) {
	// Tokens being used while they are rotated away still
	// end up refused, and exactly one survives.
	// A regression guard for the Forget-versus-cache-write race (see
	// TestValidateForgetRacingCacheWriteStress).
	f := newPersonalFixture(t)
	const n = 10
	texts := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			text, _, err := f.pt.Issue(context.Background(), "user-1")
			if err != nil {
				t.Errorf("Issue: %v", err)
				return
			}
			texts[i] = text
			for j := 0; j < 20; j++ {
				_, _ = f.v.Validate(context.Background(), text)
			}
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	settle(f.v)
	valid := 0
	for _, text := range texts {
		if _, err := f.v.Validate(context.Background(), text); err == nil {
			valid++
		}
	}
	if valid != 1 {
		t.Fatalf("%d of %d tokens still validate after concurrent rotation, want 1", valid, n)
	}
}
