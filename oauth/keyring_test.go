package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	testRotation = time.Hour
	testMaxTTL   = 10 * time.Minute
)

// testSlot is the slot the key ring tests start in.
const testSlot = 500_000

// slotStart is when slot s of testRotation begins, in a zone other than
// UTC to catch a conversion that depends on it.
func slotStart(s int64) time.Time {
	return time.Unix(0, s*int64(testRotation)).In(time.FixedZone("X", 2*3600))
}

// setClock moves c to t.
func setClock(c *testClock, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// newTestRing returns an ES256 ring (cheap keys) on store, with the test
// rotation and lifetime, reading clk.
func newTestRing(t testing.TB, store SigningKeyStore, alg string, clk *testClock) *KeyRing {
	t.Helper()
	r, err := NewKeyRing(store, alg, testRotation, testMaxTTL, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func current(t testing.TB, r *KeyRing) *SigningKey {
	t.Helper()
	k, err := r.Current(context.Background())
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	return k
}

// jwksKIDs decodes a published key set, checks that each key is public,
// named by its thumbprint, for signing, with its alg, and returns the kids.
func jwksKIDs(t testing.TB, r *KeyRing) []string {
	t.Helper()
	raw := r.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("JWKS %s: %v", raw, err)
	}
	var members struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &members); err != nil || members.Keys == nil {
		t.Fatalf("JWKS %s has no keys array: %v", raw, err)
	}
	for _, m := range members.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := m[private]; ok {
				t.Fatalf("JWKS publishes private member %q", private)
			}
		}
	}
	kids := []string{}
	for _, k := range set.Keys {
		want, err := Thumbprint(k.Key)
		if err != nil {
			t.Fatal(err)
		}
		if !k.IsPublic() || k.KeyID != want || k.Use != "sig" || (k.Algorithm != AlgES256 && k.Algorithm != AlgRS256) {
			t.Errorf("published key kid %q (thumbprint %q) alg %q use %q public %v", k.KeyID, want, k.Algorithm, k.Use, k.IsPublic())
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

func assertKIDs(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func storedKIDs(s *fakeSigningKeyStore) []string {
	ks, _ := s.SigningKeys(context.Background())
	var out []string
	for _, k := range ks {
		out = append(out, k.KID)
	}
	return out
}

// The timeline of one key: created and published a slot before it signs,
// signing for exactly its slot, published until the end of its slot plus
// the longest token lifetime, then gone.
func TestKeyRingRotation(t *testing.T) {
	store := newFakeSigningKeyStore()
	clk := newTestClock()
	setClock(clk, slotStart(testSlot).Add(5*time.Minute))
	r := newTestRing(t, store, AlgES256, clk)

	assertKIDs(t, "JWKS before any load", jwksKIDs(t, r))

	a := current(t, r)
	if a.slot != testSlot || a.Alg() != AlgES256 {
		t.Fatalf("current key slot %d alg %s, want slot %d ES256", a.slot, a.Alg(), testSlot)
	}
	stored, _ := store.SigningKeys(context.Background())
	if len(stored) != 2 || stored[1].Slot != testSlot+1 {
		t.Fatalf("store after the first Current holds %d keys, want this slot's and the next", len(stored))
	}
	b := stored[1]
	if !b.CreatedAt.Equal(clk.now()) {
		t.Errorf("next key created at %v, want %v: a whole slot before it signs", b.CreatedAt, clk.now())
	}
	if want := slotStart(testSlot + 1).Add(testMaxTTL); !a.RetireAt().Equal(want) {
		t.Errorf("current key retires at %v, want slot end + longest token lifetime = %v", a.RetireAt(), want)
	}
	assertKIDs(t, "JWKS during slot s", jwksKIDs(t, r), a.KID(), b.KID)

	// The last instant of the slot still signs with its key.
	setClock(clk, slotStart(testSlot+1).Add(-time.Nanosecond))
	if k := current(t, r); k.KID() != a.KID() {
		t.Errorf("at the last instant of slot s, Current = %s, want %s", k.KID(), a.KID())
	}

	// The next slot signs with the key published during the last one,
	// and publishes its own successor.
	setClock(clk, slotStart(testSlot+1))
	if k := current(t, r); k.KID() != b.KID {
		t.Fatalf("at the start of slot s+1, Current = %s, want the key published early %s", k.KID(), b.KID)
	}
	all := storedKIDs(store)
	if len(all) != 3 {
		t.Fatalf("store holds %v, want 3 keys (the retired one, the current, the next)", all)
	}
	assertKIDs(t, "JWKS at the start of slot s+1", jwksKIDs(t, r), all...)

	// The old key verifies until its last token has expired, then not.
	setClock(clk, a.RetireAt().Add(-time.Nanosecond))
	if k, err := r.ByID(context.Background(), a.KID()); err != nil || k.KID() != a.KID() {
		t.Errorf("ByID(old key) just before it retires = %v, %v", k, err)
	}
	if kids := jwksKIDs(t, r); !slices.Contains(kids, a.KID()) {
		t.Errorf("JWKS just before retirement %v lacks the old key", kids)
	}
	setClock(clk, a.RetireAt())
	if k, err := r.ByID(context.Background(), a.KID()); !errors.Is(err, errUnknownSigningKey) {
		t.Errorf("ByID(retired key) = %v, %v; want it unknown", k, err)
	}
	if kids := jwksKIDs(t, r); slices.Contains(kids, a.KID()) || len(kids) != 2 {
		t.Errorf("JWKS once the old key retired = %v, want the current and next only", kids)
	}
	// Purged from the store a little later, for instances whose clocks
	// run behind.
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.stored(a.KID()); !ok {
		t.Fatal("retired key purged at once, before instances with slower clocks are done with it")
	}
	setClock(clk, a.RetireAt().Add(keyPurgeDelay))
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.stored(a.KID()); ok {
		t.Error("Refresh left the retired key in the store")
	}
	if got := storedKIDs(store); len(got) != 2 {
		t.Errorf("store after the purge = %v, want 2 keys", got)
	}
}

// Another instance learns the next key through Refresh, before that key
// signs, and then signs with the same one.
func TestKeyRingNextKeyKnownToOtherInstances(t *testing.T) {
	store := newFakeSigningKeyStore()
	clk := newTestClock()
	setClock(clk, slotStart(testSlot).Add(time.Minute))
	first := newTestRing(t, store, AlgES256, clk)
	second := newTestRing(t, store, AlgES256, clk)

	a := current(t, first)
	if err := second.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := storedKIDs(store)
	if len(all) != 2 {
		t.Fatalf("store holds %v after two instances started, want 2 keys", all)
	}
	assertKIDs(t, "second instance's JWKS", jwksKIDs(t, second), all...)
	if k := current(t, second); k.KID() != a.KID() {
		t.Errorf("second instance signs with %s, want %s", k.KID(), a.KID())
	}

	setClock(clk, slotStart(testSlot+1))
	k := current(t, second)
	if k.KID() == a.KID() || !slices.Contains(all, k.KID()) {
		t.Errorf("in slot s+1 the second instance signs with %s, want the next key of %v", k.KID(), all)
	}
	if k2 := current(t, first); k2.KID() != k.KID() {
		t.Errorf("instances disagree in slot s+1: %s and %s", k2.KID(), k.KID())
	}
}

// Instances starting together, none finding a key, all end up with the
// same one: the store keeps the first insert.
func TestKeyRingConcurrentStartAgrees(t *testing.T) {
	store := newFakeSigningKeyStore()
	clk := newTestClock()
	setClock(clk, slotStart(testSlot).Add(time.Minute))
	const instances = 8
	kids := make([]string, instances)
	errs := make([]error, instances)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range instances {
		r := newTestRing(t, store, AlgES256, clk)
		wg.Go(func() {
			<-start
			k, err := r.Current(context.Background())
			errs[i] = err
			if err == nil {
				kids[i] = k.KID()
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range instances {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		if kids[i] != kids[0] {
			t.Errorf("instance %d signs with %s, instance 0 with %s", i, kids[i], kids[0])
		}
	}
	if got := storedKIDs(store); len(got) != 2 {
		t.Errorf("store holds %v, want one key for this slot and one for the next", got)
	}
}

// A kid the ring does not know may be a key another instance just made:
// it reloads, but at most once a second, and a kid that cannot be a
// thumbprint never costs a store call.
func TestKeyRingByIDReloadsAtMostOncePerSecond(t *testing.T) {
	store := newFakeSigningKeyStore()
	clk := newTestClock()
	setClock(clk, slotStart(testSlot).Add(time.Minute))
	r := newTestRing(t, store, AlgES256, clk)
	current(t, r)
	ctx := context.Background()

	for i, kid := range []string{"", "../../../etc/passwd", "' OR 1=1 --", strings.Repeat("A", 10_000), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X"} {
		// Seconds apart, so that only the kid's form keeps the ring
		// from reloading.
		setClock(clk, slotStart(testSlot).Add(time.Minute+time.Duration(i+1)*time.Hour/100))
		before := store.calls.Load()
		if _, err := r.ByID(ctx, kid); !errors.Is(err, errUnknownSigningKey) {
			t.Errorf("ByID(%.20q) = %v, want unknown", kid, err)
		}
		if n := store.calls.Load() - before; n != 0 {
			t.Errorf("ByID(%.20q) made %d store calls, want none", kid, n)
		}
	}

	unknown := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	lookups := func(at time.Duration) int64 {
		t.Helper()
		setClock(clk, slotStart(testSlot).Add(time.Minute+at))
		before := store.lists.Load()
		if _, err := r.ByID(ctx, unknown); !errors.Is(err, errUnknownSigningKey) {
			t.Errorf("ByID(unknown) at +%v = %v, want unknown", at, err)
		}
		return store.lists.Load() - before
	}
	// The ring loaded at +0 (Current): no reload within the second.
	if n := lookups(999 * time.Millisecond); n != 0 {
		t.Errorf("unknown kid 999ms after a load made %d reloads, want 0", n)
	}
	if n := lookups(time.Second); n != 1 {
		t.Errorf("unknown kid 1s after the load made %d reloads, want 1", n)
	}
	for _, at := range []time.Duration{time.Second, 1500 * time.Millisecond, 2*time.Second - 1} {
		if n := lookups(at); n != 0 {
			t.Errorf("unknown kid at +%v, within a second of the reload, made %d reloads, want 0", at, n)
		}
	}
	if n := lookups(2 * time.Second); n != 1 {
		t.Errorf("unknown kid a second after the reload made %d reloads, want 1", n)
	}

	// A key another instance stored is found by that reload.
	setClock(clk, slotStart(testSlot).Add(time.Minute))
	other, err := newStoredSigningKey(AlgES256, testSlot+7, clk.now(), slotStart(testSlot+8).Add(testMaxTTL))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := store.InsertSigningKey(ctx, other); err != nil || !ok {
		t.Fatal(ok, err)
	}
	setClock(clk, slotStart(testSlot).Add(time.Minute+5*time.Second))
	if k, err := r.ByID(ctx, other.KID); err != nil || k.KID() != other.KID {
		t.Errorf("ByID(key stored by another instance) = %v, %v", k, err)
	}
}

// While the store is down the ring goes on with what it holds: it signs
// with the current key, and even the next one (loaded ahead), verifies
// with every key it knows, and reports an unknown kid as unavailable, not
// as refused.
func TestKeyRingStoreOutage(t *testing.T) {
	store := newFakeSigningKeyStore()
	clk := newTestClock()
	setClock(clk, slotStart(testSlot).Add(time.Minute))
	r := newTestRing(t, store, AlgES256, clk)
	a := current(t, r)
	ctx := context.Background()

	store.failing.Store(true)
	if k := current(t, r); k.KID() != a.KID() {
		t.Errorf("Current during an outage = %s, want %s", k.KID(), a.KID())
	}
	setClock(clk, slotStart(testSlot).Add(time.Minute+time.Second))
	if _, err := r.ByID(ctx, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"); !errors.Is(err, ErrSigningKeysUnavailable) {
		t.Errorf("ByID(unknown) during an outage = %v, want ErrSigningKeysUnavailable", err)
	}
	if k, err := r.ByID(ctx, a.KID()); err != nil || k.KID() != a.KID() {
		t.Errorf("ByID(known) during an outage = %v, %v", k, err)
	}
	if err := r.Refresh(ctx); !errors.Is(err, ErrSigningKeysUnavailable) {
		t.Errorf("Refresh during an outage = %v, want ErrSigningKeysUnavailable", err)
	}
	if k, err := r.ByID(ctx, a.KID()); err != nil || k.KID() != a.KID() {
		t.Errorf("ByID(known) after a failed Refresh = %v, %v: the keys held must survive", k, err)
	}

	setClock(clk, slotStart(testSlot+1))
	b := current(t, r)
	if b.slot != testSlot+1 {
		t.Errorf("Current in slot s+1 during an outage = slot %d, want the next key loaded ahead", b.slot)
	}
	setClock(clk, slotStart(testSlot+2))
	if k, err := r.Current(ctx); !errors.Is(err, ErrSigningKeysUnavailable) {
		t.Errorf("Current with no key for the slot during an outage = %v, %v; want ErrSigningKeysUnavailable", k, err)
	}

	store.failing.Store(false)
	if k := current(t, r); k.slot != testSlot+2 {
		t.Errorf("Current after the outage = slot %d, want %d", k.slot, testSlot+2)
	}
}

// A deployment whose tokens now live longer (a config change) keeps the
// existing keys published long enough for them; a shorter lifetime never
// shortens a key's publication.
func TestKeyRingExtendsRetirementForLongerTokens(t *testing.T) {
	store := newFakeSigningKeyStore()
	clk := newTestClock()
	setClock(clk, slotStart(testSlot).Add(time.Minute))
	short := newTestRing(t, store, AlgES256, clk)
	a := current(t, short)

	long, err := NewKeyRing(store, AlgES256, testRotation, 2*time.Hour, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	k := current(t, long)
	if k.KID() != a.KID() {
		t.Fatalf("the longer-lived ring signs with %s, want the slot's key %s", k.KID(), a.KID())
	}
	want := slotStart(testSlot + 1).Add(2 * time.Hour)
	if s, _ := store.stored(a.KID()); !s.RetireAt.Equal(want) || !k.RetireAt().Equal(want) {
		t.Errorf("retire_at = %v (ring: %v), want %v", s.RetireAt, k.RetireAt(), want)
	}
	if err := short.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s, _ := store.stored(a.KID()); !s.RetireAt.Equal(want) {
		t.Errorf("after the shorter-lived ring's Refresh retire_at = %v, want %v kept", s.RetireAt, want)
	}
}

// Changing signing_alg signs with a key of the new alg at once, while the
// old alg's keys stay published and verify until they retire.
func TestKeyRingAlgChange(t *testing.T) {
	store := newFakeSigningKeyStore()
	clk := newTestClock()
	setClock(clk, slotStart(testSlot).Add(time.Minute))
	ec := current(t, newTestRing(t, store, AlgES256, clk))

	rs := newTestRing(t, store, AlgRS256, clk)
	k := current(t, rs)
	if k.Alg() != AlgRS256 || k.slot != testSlot {
		t.Fatalf("after the change Current = %s slot %d, want RS256 slot %d", k.Alg(), k.slot, testSlot)
	}
	if got := jwksKIDs(t, rs); len(got) != 4 || !slices.Contains(got, ec.KID()) {
		t.Errorf("JWKS after the change = %v, want both algs' current and next keys", got)
	}
	if v, err := rs.ByID(context.Background(), ec.KID()); err != nil || v.Alg() != AlgES256 {
		t.Errorf("ByID(ES256 key) on the RS256 ring = %v, %v", v, err)
	}
}

// A stored key for this slot that cannot be used (an altered row) is
// reported, and never replaced by a second key for the same slot.
func TestKeyRingUnusableStoredKey(t *testing.T) {
	store := newFakeSigningKeyStore()
	clk := newTestClock()
	setClock(clk, slotStart(testSlot).Add(time.Minute))
	bad, err := newStoredSigningKey(AlgES256, testSlot, clk.now(), slotStart(testSlot+1).Add(testMaxTTL))
	if err != nil {
		t.Fatal(err)
	}
	bad.PrivateKey = bad.PrivateKey[:10]
	store.put(bad)
	r := newTestRing(t, store, AlgES256, clk)
	if k, err := r.Current(context.Background()); !errors.Is(err, ErrSigningKeysUnavailable) {
		t.Errorf("Current with an unusable key for the slot = %v, %v; want ErrSigningKeysUnavailable", k, err)
	}
	if err := r.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), bad.KID) {
		t.Errorf("Refresh = %v, want an error naming the unusable key %s", err, bad.KID)
	}
	if got := storedKIDs(store); len(got) != 2 || !slices.Contains(got, bad.KID) {
		t.Errorf("store holds %v, want the unusable key and the next slot's", got)
	}
}

func TestNewKeyRingRefusesBadConfig(t *testing.T) {
	store := newFakeSigningKeyStore()
	tests := []struct {
		name     string
		store    SigningKeyStore
		alg      string
		rotation time.Duration
		ttl      time.Duration
	}{
		{"no store", nil, AlgRS256, time.Hour, time.Hour},
		{"alg none", store, "none", time.Hour, time.Hour},
		{"alg HS256", store, "HS256", time.Hour, time.Hour},
		{"alg lower case", store, "rs256", time.Hour, time.Hour},
		{"zero rotation", store, AlgRS256, 0, time.Hour},
		{"sub-second rotation", store, AlgRS256, time.Millisecond, time.Hour},
		{"rotation of a century", store, AlgRS256, 100 * 365 * 24 * time.Hour, time.Hour},
		{"zero lifetime", store, AlgES256, time.Hour, 0},
	}
	for _, tt := range tests {
		if _, err := NewKeyRing(tt.store, tt.alg, tt.rotation, tt.ttl, nil); err == nil {
			t.Errorf("%s: NewKeyRing succeeded", tt.name)
		}
	}
}
