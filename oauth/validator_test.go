package oauth

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testClock is a settable clock for Validator.now and PersonalTokens.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	// Not UTC and not on a second, to catch missing conversions.
	return &testClock{t: time.Date(2030, 5, 17, 10, 20, 30, 123456789, time.FixedZone("X", 2*3600))}
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// newValidatorForTest returns a validator over s whose clock is clk (when
// not nil); it is closed when the test ends.
func newValidatorForTest(tb testing.TB, s ValidatorStore, cfg CacheConfig, clk *testClock) *Validator {
	tb.Helper()
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 10_000
	}
	v, err := NewValidator(s, cfg)
	if err != nil {
		tb.Fatalf("NewValidator: %v", err)
	}
	if clk != nil {
		v.now = clk.now
	}
	tb.Cleanup(v.Close)
	return v
}

// settle waits until every cache write made so far is visible to Get
// (ristretto applies Set asynchronously).
func settle(v *Validator) { v.cache.Wait() }

// writeQueuedTouches makes the validator write its queued last_used_at
// updates now, and waits for them.
func writeQueuedTouches(v *Validator) {
	done := make(chan struct{})
	v.flushNow <- done
	<-done
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline. It is a deadline for a condition, not a performance bound: on
// a loaded machine the goroutines it waits for may run late.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func mustValidate(tb testing.TB, v *Validator, text string) Principal {
	tb.Helper()
	p, err := v.Validate(context.Background(), text)
	if err != nil {
		tb.Fatalf("Validate(%q): %v", text, err)
	}
	if p.UserID == "" {
		tb.Fatalf("Validate(%q) returned an empty principal", text)
	}
	return p
}

func expectInvalid(tb testing.TB, v *Validator, text string) {
	tb.Helper()
	p, err := v.Validate(context.Background(), text)
	if !errors.Is(err, ErrInvalidToken) || !reflect.DeepEqual(p, Principal{}) {
		tb.Fatalf("Validate(%q) = %+v, %v; want ErrInvalidToken", text, p, err)
	}
}

func expectLookups(tb testing.TB, s *fakeTokenStore, want int64) {
	tb.Helper()
	if got := s.lookupCount(); got != want {
		tb.Fatalf("store look-ups = %d, want %d", got, want)
	}
}

func TestNewValidatorDefaults(t *testing.T) {
	v, err := NewValidator(newFakeTokenStore(), CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.ttl != DefaultCacheTTL {
		t.Errorf("ttl = %v, want DefaultCacheTTL %v", v.ttl, DefaultCacheTTL)
	}
	if got := v.cache.MaxCost(); got != DefaultCacheEntries {
		t.Errorf("MaxCost = %d, want DefaultCacheEntries %d", got, DefaultCacheEntries)
	}
}

func TestValidatePersonalTokenFromStore(t *testing.T) {
	s := newFakeTokenStore()
	clk := newTestClock()
	v := newValidatorForTest(t, s, CacheConfig{}, clk)
	want := Principal{UserID: "user-1", Scopes: []string{"chargers:read", "chargers:write"}, Kind: KindPersonal}
	text, _ := s.issue(KindPersonal, want)

	p := mustValidate(t, v, text)
	want.scopeText = strings.Join(want.Scopes, " ") // cached by the validator
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("principal = %+v, want %+v", p, want)
	}
	if p.ClientID != "" || p.Kind.String() != "personal" {
		t.Errorf("SPEC4.7: personal principal has client id %q and type %q; want none and personal", p.ClientID, p.Kind)
	}
	expectLookups(t, s, 1)
	if k := Kind(s.lastKind.Load()); k != KindPersonal {
		t.Errorf("store asked for kind %q, want personal", k)
	}
	if n := s.lookupsNoDead.Load(); n != 0 {
		t.Errorf("SPEC5: %d store look-ups ran without a deadline", n)
	}
}

func TestValidateAccessTokenFromStore(t *testing.T) {
	s := newFakeTokenStore()
	clk := newTestClock()
	v := newValidatorForTest(t, s, CacheConfig{}, clk)
	want := Principal{UserID: "user-2", ClientID: "app", Scopes: []string{"a"}, Kind: KindAccess,
		ExpiresAt: clk.now().Add(time.Hour)}
	text, _ := s.issue(KindAccess, want)

	p := mustValidate(t, v, text)
	// The cache keeps expiry to the second, rounded down.
	if wantExp := want.ExpiresAt.Truncate(time.Second); !p.ExpiresAt.Equal(wantExp) {
		t.Errorf("ExpiresAt = %v, want %v", p.ExpiresAt, wantExp)
	}
	want.ExpiresAt = p.ExpiresAt
	want.scopeText = strings.Join(want.Scopes, " ") // cached by the validator
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("principal = %+v, want %+v", p, want)
	}
	if k := Kind(s.lastKind.Load()); k != KindAccess {
		t.Errorf("store asked for kind %q, want access", k)
	}
}

func TestValidateKeepsAudienceAndDPoPKeyInCache(t *testing.T) {
	// Two tokens alike but for audience and DPoP key share no cache shape.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	base := Principal{UserID: "u", ClientID: "app", Scopes: []string{"a"}, Kind: KindAccess}
	bound, plain := base, base
	bound.Audience, bound.DPoPKey = "https://api.example.com/chargers", "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	boundText, _ := s.issue(KindAccess, bound)
	plainText, _ := s.issue(KindAccess, plain)
	for round := 0; round < 2; round++ { // from the store, then from the cache
		if p := mustValidate(t, v, boundText); p.Audience != bound.Audience || p.DPoPKey != bound.DPoPKey {
			t.Errorf("round %d: bound token gives audience %q, key %q", round, p.Audience, p.DPoPKey)
		}
		if p := mustValidate(t, v, plainText); p.Audience != "" || p.DPoPKey != "" {
			t.Errorf("round %d: plain token gives audience %q, key %q", round, p.Audience, p.DPoPKey)
		}
		settle(v)
	}
}

func TestValidateServesRepeatsFromCache(t *testing.T) {
	// A bounded in-memory cache sits in front of the store.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	for _, k := range []Kind{KindAccess, KindPersonal} {
		text, _ := s.issue(k, Principal{UserID: "u", Kind: k})
		before := s.lookupCount()
		mustValidate(t, v, text)
		settle(v)
		for i := 0; i < 100; i++ {
			mustValidate(t, v, text)
		}
		if got := s.lookupCount() - before; got != 1 {
			t.Errorf("kind %q: 101 validations cost %d store look-ups, want 1", k, got)
		}
	}
}

func TestValidateServesRepeatsFromCacheWithoutWaiting(t *testing.T) {
	// Without reaching into the cache: repeated validation stops reaching the
	// store once the asynchronous cache write lands.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	text, _ := s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess})
	waitFor(t, "a validation served from the cache", func() bool {
		before := s.lookupCount()
		mustValidate(t, v, text)
		return s.lookupCount() == before
	})
	before := s.lookupCount()
	for i := 0; i < 100; i++ {
		mustValidate(t, v, text)
	}
	if got := s.lookupCount() - before; got != 0 {
		t.Fatalf("cached token cost %d more store look-ups", got)
	}
}

func TestValidateMalformedTokenCostsNoLookup(t *testing.T) {
	// A malformed or mistyped token is refused without touching the store.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	real, _ := s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess})
	flipped := replaceAt(real, 20, 'A')
	if flipped == real {
		flipped = replaceAt(real, 20, 'B')
	}
	for _, tc := range []struct{ name, text string }{
		{"SPEC2_empty", ""},
		{"SPEC2_short", "abc"},
		{"SPEC2_prefix_only", "tga_"},
		{"SPEC2_truncated", real[:TokenLen-1]},
		{"SPEC2_extended", real + "A"},
		{"SPEC2_checksum_mismatch", flipped},
		{"SPEC2_wrong_prefix", "xga_" + real[4:]},
		{"SPEC2_unknown_kind", withChecksum("tgz_" + real[4:47])},
		{"SPEC2_trailing_space", real + " "},
		{"SPEC2_jwt_like", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectInvalid(t, v, tc.text)
			expectLookups(t, s, 0)
		})
	}
}

func TestValidateOtherKindsCostNoLookup(t *testing.T) {
	// A refresh token (or a code, or a device code) is not a bearer
	// token, even when the store knows it.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	for _, k := range []Kind{KindRefresh, KindCode, KindDevice} {
		t.Run("SPEC2_"+k.String()+"_is_not_a_bearer_token", func(t *testing.T) {
			text, _ := s.issue(k, Principal{UserID: "u", Kind: k})
			expectInvalid(t, v, text)
			expectInvalid(t, v, text)
			expectLookups(t, s, 0)
		})
	}
}

func TestValidateUnknownTokenIsNegativelyCached(t *testing.T) {
	// validator.go: a flood of made-up but well-formed tokens costs one store
	// query each per TTL, not one per request.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	for i, k := range []Kind{KindAccess, KindPersonal} {
		text, _ := mustNewToken(t, k)
		expectInvalid(t, v, text)
		settle(v)
		for j := 0; j < 50; j++ {
			expectInvalid(t, v, text)
		}
		expectLookups(t, s, int64(i+1))
	}
}

func TestValidateUnknownTokenBoundedLookupsWithoutWaiting(t *testing.T) {
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	text, _ := mustNewToken(t, KindAccess)
	waitFor(t, "an unknown token refused from the cache", func() bool {
		before := s.lookupCount()
		expectInvalid(t, v, text)
		return s.lookupCount() == before
	})
	before := s.lookupCount()
	for i := 0; i < 100; i++ {
		expectInvalid(t, v, text)
	}
	if got := s.lookupCount() - before; got != 0 {
		t.Fatalf("negatively cached token cost %d more look-ups", got)
	}
}

func TestValidateStoreDownUncachedIsUnavailable(t *testing.T) {
	// The store cannot be reached and the token is not cached
	// → 503, never 401; recovery needs no restart.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	known, _ := s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess})
	unknown, _ := mustNewToken(t, KindPersonal)
	s.setFailing(true)
	for _, text := range []string{known, unknown} {
		for i := 0; i < 3; i++ {
			p, err := v.Validate(context.Background(), text)
			if !errors.Is(err, ErrUnavailable) || p.UserID != "" {
				t.Fatalf("SPEC5: Validate(%q) with the store down = %+v, %v; want ErrUnavailable", text, p, err)
			}
			if errors.Is(err, ErrInvalidToken) {
				t.Fatalf("SPEC5: an outage must never be reported as an invalid token")
			}
		}
	}
	// An outage answer is not cached.
	settle(v)
	s.setFailing(false)
	mustValidate(t, v, known)
	expectInvalid(t, v, unknown)
}

func TestValidateStoreDownCachedStillValid(t *testing.T) {
	// While the store is unreachable a cached token keeps working.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	access, _ := s.issue(KindAccess, Principal{UserID: "a", Kind: KindAccess})
	personal, _ := s.issue(KindPersonal, Principal{UserID: "p", Kind: KindPersonal})
	unknown, _ := mustNewToken(t, KindAccess)
	mustValidate(t, v, access)
	mustValidate(t, v, personal)
	expectInvalid(t, v, unknown)
	settle(v)
	s.setFailing(true)
	for i := 0; i < 10; i++ {
		if p := mustValidate(t, v, access); p.UserID != "a" {
			t.Fatalf("cached access token speaks for %q", p.UserID)
		}
		if p := mustValidate(t, v, personal); p.UserID != "p" {
			t.Fatalf("cached personal token speaks for %q", p.UserID)
		}
		expectInvalid(t, v, unknown)
	}
	expectLookups(t, s, 3)
}

func TestValidateStoreDownCachedForAtMostTTL(t *testing.T) {
	// A cached token keeps working for at most the cache ttl after
	// the store was last heard from, then gets 503 like an uncached token,
	// never 401.
	s := newFakeTokenStore()
	clk := newTestClock()
	v := newValidatorForTest(t, s, CacheConfig{TTL: time.Minute}, clk)
	text, _ := s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess})
	mustValidate(t, v, text)
	settle(v)
	s.setFailing(true)
	// Within the ttl (to the second, rounded up; see
	// TestValidateStaleEntryAsksStore): served from the cache.
	clk.add(time.Minute - time.Second)
	mustValidate(t, v, text)
	// Past it: unavailable, not invalid.
	clk.add(2 * time.Second)
	if _, err := v.Validate(context.Background(), text); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("cached token past the ttl during an outage: %v, want ErrUnavailable", err)
	}
	s.setFailing(false)
	mustValidate(t, v, text)
	expectLookups(t, s, 3)
}

func TestValidateForgetAsksStoreAgain(t *testing.T) {
	// Revocation is immediate on the instance that served it.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	text, h := s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess})
	other, _ := s.issue(KindAccess, Principal{UserID: "o", Kind: KindAccess})
	mustValidate(t, v, text)
	mustValidate(t, v, other)
	settle(v)
	expectLookups(t, s, 2)

	// Forget alone (nothing revoked) costs exactly one more look-up.
	v.Forget(h)
	mustValidate(t, v, text)
	expectLookups(t, s, 3)
	settle(v)

	// Revoke, Forget: the very next call is refused.
	s.revoke(h)
	v.Forget(h)
	expectInvalid(t, v, text)
	expectLookups(t, s, 4)

	// Forgetting one token leaves the others cached.
	mustValidate(t, v, other)
	expectLookups(t, s, 4)
}

func TestValidateForgetBeforeCacheSettles(t *testing.T) {
	// The cache write from the first use may still be in flight
	// when the token is revoked; the very next call must still be refused.
	//
	// Regression guard: Forget's Del removes the entry from ristretto's map
	// at once but queues its delete behind a still-pending Set; in between,
	// the Set lands and a Get serves the revoked token. Validate waiting for
	// its own Set on a miss closes this for sequential callers.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	for i := 0; i < 50; i++ {
		text, h := s.issue(KindPersonal, Principal{UserID: "u", Kind: KindPersonal})
		mustValidate(t, v, text)
		s.revoke(h)
		v.Forget(h)
		expectInvalid(t, v, text)
		settle(v)
		expectInvalid(t, v, text)
	}
}

func TestValidateRevocationDuringLookupIsNotCached(t *testing.T) {
	// validator.go: a store answer that raced with a revocation is not cached.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	text, h := s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess})

	answered := make(chan struct{})
	release := make(chan struct{})
	s.setAfterLookup(func(Kind, TokenHash) {
		close(answered)
		<-release
	})
	done := make(chan error, 1)
	go func() {
		_, err := v.Validate(context.Background(), text)
		done <- err
	}()
	<-answered
	s.setAfterLookup(nil)
	s.revoke(h)
	v.Forget(h)
	close(release)
	// The request that started before the revocation may still pass.
	if err := <-done; err != nil {
		t.Fatalf("in-flight validation: %v", err)
	}
	settle(v)
	expectInvalid(t, v, text)
	expectLookups(t, s, 2)
}

func TestValidateForgetRacingCacheWriteStress(t *testing.T) {
	// Revocation is immediate. A Forget that lands between
	// Validate's revocation-counter check and its cache write must still win.
	//
	// The window between Validate's revocation-counter check and its cache
	// write is a few instructions wide, so rounds are what find it: a
	// bounded run by default, up to 100,000 rounds with TOKENGATE_STRESS=1.
	rounds, limit := 2_000, 5*time.Second
	if os.Getenv("TOKENGATE_STRESS") != "" {
		rounds, limit = 100_000, 2*time.Minute
	}
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	deadline := time.Now().Add(limit)
	for round := 0; round < rounds && time.Now().Before(deadline); round++ {
		text, h := s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess})
		var inLookup, proceed atomic.Bool
		s.setAfterLookup(func(Kind, TokenHash) {
			inLookup.Store(true)
			for !proceed.Load() {
			}
		})
		done := make(chan struct{})
		go func() {
			_, _ = v.Validate(context.Background(), text)
			close(done)
		}()
		for !inLookup.Load() {
			runtime.Gosched()
		}
		s.setAfterLookup(nil)
		s.revoke(h)
		proceed.Store(true)
		for i := 0; i < round%100; i++ { // vary where Forget lands
			spinSink.Add(1)
		}
		v.Forget(h)
		<-done
		settle(v)
		if p, err := v.Validate(context.Background(), text); err == nil {
			t.Fatalf("round %d: token revoked and forgotten is still accepted from the cache (principal %q)", round, p.UserID)
		}
	}
}

var spinSink atomic.Int64

func TestValidateForgetAll(t *testing.T) {
	// After losing revocations the instance drops its whole cache.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	a, ha := s.issue(KindAccess, Principal{UserID: "a", Kind: KindAccess})
	p, hp := s.issue(KindPersonal, Principal{UserID: "p", Kind: KindPersonal})
	keep, _ := s.issue(KindAccess, Principal{UserID: "k", Kind: KindAccess})
	for _, text := range []string{a, p, keep} {
		mustValidate(t, v, text)
	}
	settle(v)
	expectLookups(t, s, 3)

	s.revoke(ha)
	s.revoke(hp)
	v.ForgetAll()
	expectInvalid(t, v, a)
	expectInvalid(t, v, p)
	mustValidate(t, v, keep)
	expectLookups(t, s, 6)

	// The cache works again after being emptied.
	settle(v)
	mustValidate(t, v, keep)
	expectLookups(t, s, 6)
}

func TestValidateExpiredPrincipal(t *testing.T) {
	s := newFakeTokenStore()
	clk := newTestClock()
	v := newValidatorForTest(t, s, CacheConfig{}, clk)
	now := clk.now()
	for _, tc := range []struct {
		name    string
		expires time.Time
		valid   bool
	}{
		{"SPEC2_expired_an_hour_ago", now.Add(-time.Hour), false},
		{"SPEC2_expired_a_nanosecond_ago", now.Add(-time.Nanosecond), false},
		{"SPEC2_expires_exactly_now", now, false},
		// Expiry is kept to the second, rounded down: never late, at
		// most a second early.
		{"SPEC2_expires_later_this_second_refused_early", now.Add(time.Nanosecond), false},
		{"SPEC2_expires_at_the_next_second", now.Truncate(time.Second).Add(time.Second), true},
		{"SPEC2_zero_expiry_never_expires", time.Time{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, _ := s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess, ExpiresAt: tc.expires})
			for i := 0; i < 2; i++ { // from the store, then possibly from the cache
				if tc.valid {
					mustValidate(t, v, text)
				} else {
					expectInvalid(t, v, text)
				}
				settle(v)
			}
		})
	}
}

func TestValidateCachedTokenExpires(t *testing.T) {
	// An access token stops working at its expiry even while cached.
	s := newFakeTokenStore()
	clk := newTestClock()
	v := newValidatorForTest(t, s, CacheConfig{TTL: 2 * time.Hour}, clk)
	expires := clk.now().Truncate(time.Second).Add(time.Hour)
	text, _ := s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess, ExpiresAt: expires})
	never, _ := s.issue(KindPersonal, Principal{UserID: "p", Kind: KindPersonal})
	mustValidate(t, v, text)
	mustValidate(t, v, never)
	settle(v)
	clk.add(expires.Sub(clk.now()) - time.Nanosecond)
	mustValidate(t, v, text)
	clk.add(time.Nanosecond)
	expectInvalid(t, v, text)
	expectLookups(t, s, 2) // both answered from the cache
	// Past the cache ttl the store is asked again; a personal token has
	// no expiry.
	clk.add(100 * 365 * 24 * time.Hour)
	mustValidate(t, v, never)
	expectLookups(t, s, 3)
}

func TestValidateStaleEntryAsksStore(t *testing.T) {
	// CacheConfig.TTL: a look-up is trusted for the ttl (to the second,
	// rounded up), then the store is asked again.
	s := newFakeTokenStore()
	clk := newTestClock()
	v := newValidatorForTest(t, s, CacheConfig{TTL: time.Minute}, clk)
	text, _ := s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess})
	mustValidate(t, v, text)
	settle(v)
	clk.add(time.Minute - time.Second)
	mustValidate(t, v, text)
	expectLookups(t, s, 1)
	clk.add(2 * time.Second)
	mustValidate(t, v, text)
	expectLookups(t, s, 2)
}

func TestNewValidatorRefusesTTLBeyondLimit(t *testing.T) {
	_, err := NewValidator(newFakeTokenStore(), CacheConfig{TTL: MaxCacheTTL + time.Second})
	if err == nil || !strings.Contains(err.Error(), "cache ttl") {
		t.Fatalf("NewValidator with a %v ttl: %v, want a cache ttl error", MaxCacheTTL+time.Second, err)
	}
}

func TestValidateTouchesPersonalToken(t *testing.T) {
	// GET reports last_used_at; the validator records uses at most
	// once per touchInterval, off the request path.
	s := newFakeTokenStore()
	clk := newTestClock()
	v := newValidatorForTest(t, s, CacheConfig{}, clk)
	access, ha := s.issue(KindAccess, Principal{UserID: "a", Kind: KindAccess})
	text, h := s.issue(KindPersonal, Principal{UserID: "p", Kind: KindPersonal})
	t0 := clk.now()

	// The queue is written every touchFlushInterval; writeQueuedTouches
	// writes it now instead of waiting for the ticker.
	mustValidate(t, v, access)
	mustValidate(t, v, text)
	writeQueuedTouches(v)
	if n := s.touchCount(); n != 1 {
		t.Fatalf("%d touches after the first use, want 1", n)
	}
	settle(v)

	clk.add(touchInterval / 6) // within the interval: served without a write
	mustValidate(t, v, text)
	t2 := clk.add(touchInterval) // past it: one more write
	mustValidate(t, v, text)
	mustValidate(t, v, text)
	writeQueuedTouches(v)

	got := s.touchesOf(h)
	want := []time.Time{t0, t2}
	if len(got) != 2 || !got[0].Equal(want[0]) || !got[1].Equal(want[1]) {
		t.Fatalf("touches of the personal token = %v, want %v", got, want)
	}
	if n := len(s.touchesOf(ha)); n != 0 {
		t.Fatalf("access token touched %d times; only personal tokens have last_used_at", n)
	}
	expectLookups(t, s, 2)
}

func TestValidateTouchFailureDoesNotRefuse(t *testing.T) {
	// last_used_at is informational: a failing write never refuses a token.
	s := newFakeTokenStore()
	clk := newTestClock()
	v := newValidatorForTest(t, s, CacheConfig{}, clk)
	text, _ := s.issue(KindPersonal, Principal{UserID: "p", Kind: KindPersonal})
	mustValidate(t, v, text)
	settle(v)
	s.setFailing(true)
	clk.add(2 * touchInterval)
	mustValidate(t, v, text)
	mustValidate(t, v, text)
}

func TestValidateCacheKeyCollisionIsAMiss(t *testing.T) {
	// cacheentry.go: an entry is found by the first 8 bytes of the hash
	// and must match the next 8 too, so two tokens sharing the first 8
	// bytes never share a principal.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{}, nil)
	victim := &cachedToken{grant: &grantShape{kind: KindAccess}, userID: "victim", staleAt: 1<<32 - 1}
	plant := func(h TokenHash) {
		t.Helper()
		other := h
		other[9] ^= 1 // same entry slot, different check half
		if a, _ := cacheKeyHash(string(other[:])); a != binary.LittleEndian.Uint64(h[:8]) {
			t.Fatal("test setup: the planted key picks another slot")
		}
		v.cache.Set(string(other[:]), victim, 1)
		settle(v)
		if _, ok := v.cache.Get(string(other[:])); !ok {
			t.Fatal("test setup: planted entry not in the cache")
		}
	}

	unknown, h := mustNewToken(t, KindAccess)
	plant(h)
	expectInvalid(t, v, unknown)
	expectLookups(t, s, 1)

	known, hk := s.issue(KindAccess, Principal{UserID: "owner", Kind: KindAccess})
	plant(hk)
	if p := mustValidate(t, v, known); p.UserID != "owner" {
		t.Fatalf("colliding entry answered: principal %q", p.UserID)
	}
	expectLookups(t, s, 2)
}

func TestCacheKeyHashOfTextAndOfHashAgree(t *testing.T) {
	// Forget deletes by hash what Validate cached by text.
	text, h := mustNewToken(t, KindPersonal)
	k1, c1 := cacheKeyHash(text)
	k2, c2 := cacheKeyHash(string(h[:]))
	if k1 != k2 || c1 != c2 {
		t.Fatalf("cacheKeyHash(text) = %x,%x; cacheKeyHash(hash) = %x,%x", k1, c1, k2, c2)
	}
	if c1 == 0 {
		t.Fatal("conflict half is 0, which ristretto does not check")
	}
}

func TestValidateMaxEntriesCountsTokens(t *testing.T) {
	// CacheConfig: "MaxEntries is the most tokens kept". A cache configured
	// for 50 entries must keep 20 tokens.
	//
	// Regression guard: without IgnoreInternalCost ristretto adds its item
	// size (56 bytes on 64-bit) to every cost, so MaxCost = MaxEntries held
	// only MaxEntries/57 tokens and below 57 cached nothing at all.
	s := newFakeTokenStore()
	v := newValidatorForTest(t, s, CacheConfig{MaxEntries: 50}, nil)
	texts := make([]string, 20)
	for i := range texts {
		texts[i], _ = s.issue(KindAccess, Principal{UserID: "u", Kind: KindAccess})
		mustValidate(t, v, texts[i])
	}
	settle(v)
	for _, text := range texts {
		mustValidate(t, v, text)
	}
	if got := s.lookupCount(); got != int64(len(texts)) {
		t.Fatalf("%d tokens in a 50-entry cache cost %d look-ups on two passes, want %d (the second pass from the cache)",
			len(texts), got, len(texts))
	}
}

func TestValidateConcurrentUse(t *testing.T) {
	// Run with -race: concurrent validations, Forget and ForgetAll.
	s := newFakeTokenStore()
	clk := newTestClock()
	v := newValidatorForTest(t, s, CacheConfig{}, clk)
	texts := make([]string, 4)
	hashes := make([]TokenHash, 4)
	for i := range texts {
		k := KindAccess
		if i%2 == 1 {
			k = KindPersonal
		}
		texts[i], hashes[i] = s.issue(k, Principal{UserID: "u", Kind: k})
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				text := texts[(g+i)%len(texts)]
				if _, err := v.Validate(context.Background(), text); err != nil {
					t.Errorf("Validate: %v", err)
					return
				}
				switch i % 50 {
				case 10:
					v.Forget(hashes[g%len(hashes)])
				case 40:
					v.ForgetAll()
				case 25:
					clk.add(touchInterval)
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestPrincipalHasScope(t *testing.T) {
	p := &Principal{Scopes: []string{"chargers:read", "sessions:write"}}
	for _, tc := range []struct {
		scope string
		want  bool
	}{
		{"chargers:read", true},
		{"sessions:write", true},
		{"chargers:write", false},
		{"chargers", false},
		{"CHARGERS:READ", false},
		{"", false},
	} {
		if got := p.HasScope(tc.scope); got != tc.want {
			t.Errorf("HasScope(%q) = %v, want %v", tc.scope, got, tc.want)
		}
	}
	if (&Principal{}).HasScope("") {
		t.Error("a principal without scopes has the empty scope")
	}
}

func TestPrincipalFirstMissing(t *testing.T) {
	// required_scope names the first missing scope in the order
	// configured.
	p := &Principal{Scopes: []string{"b", "d"}}
	for _, tc := range []struct {
		name     string
		required []string
		missing  string
		ok       bool
	}{
		{"SPEC3_nothing_required", nil, "", false},
		{"SPEC3_all_present", []string{"d", "b"}, "", false},
		{"SPEC3_first_in_configured_order", []string{"c", "a"}, "c", true},
		{"SPEC3_first_missing_after_present", []string{"b", "e", "a"}, "e", true},
		{"SPEC3_only_missing", []string{"a"}, "a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			missing, ok := p.FirstMissing(tc.required)
			if missing != tc.missing || ok != tc.ok {
				t.Errorf("FirstMissing(%q) = %q, %v; want %q, %v", tc.required, missing, ok, tc.missing, tc.ok)
			}
		})
	}
}

func TestPrincipalScopeString(t *testing.T) {
	// X-Authenticated-Scope is space-separated, in granted order.
	for _, tc := range []struct {
		scopes []string
		want   string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"b", "a", "c:d"}, "b a c:d"},
	} {
		p := &Principal{Scopes: tc.scopes}
		if got := p.ScopeString(); got != tc.want {
			t.Errorf("ScopeString(%q) = %q, want %q", tc.scopes, got, tc.want)
		}
	}
}

func TestPrincipalExpired(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		expires time.Time
		want    bool
	}{
		{"zero_never_expires", time.Time{}, false},
		{"before_now", now.Add(-time.Second), true},
		{"exactly_now", now, true},
		{"after_now", now.Add(time.Second), false},
		{"same_instant_other_zone", now.In(time.FixedZone("Y", -5*3600)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Principal{ExpiresAt: tc.expires}
			if got := p.expired(now); got != tc.want {
				t.Errorf("expired(%v) with ExpiresAt %v = %v, want %v", now, tc.expires, got, tc.want)
			}
		})
	}
}
