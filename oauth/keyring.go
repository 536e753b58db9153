package oauth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keyReloadInterval is the least time between two reloads of the keys that
// a token naming an unknown kid may cause: such tokens cost their sender
// nothing to make, and each reload is a store call.
const keyReloadInterval = time.Second

// maxKeyRotation keeps slot times well inside what time.Duration counts
// from the Unix epoch.
const maxKeyRotation = 10 * 365 * 24 * time.Hour

// keyPurgeDelay is how long after its retirement a key is purged from the
// store: instances whose clocks run behind this one's by up to the leeway
// still verify its last tokens from the store's copy.
const keyPurgeDelay = jwtLeeway

// errUnknownSigningKey is a kid that names none of the ring's live keys.
var errUnknownSigningKey = errors.New("no signing key has the token's kid")

// KeyRing holds a deployment's signing keys: the key that signs now, the
// keys tokens may still be verified with, and the key set published to
// relying parties.
//
// Time is cut into slots of one rotation period, numbered from the Unix
// epoch. The key of slot s signs from the start of s to its end. It is
// created, and published, one slot early (as soon as slot s-1 needs its
// own key), so every instance and every relying party can know it before
// it signs; it stays published until the end of its slot plus the longest
// lifetime of a token it may have signed, and is purged after that.
//
// Instances sharing a store agree on each slot's key without locks: each
// inserts a candidate only if the slot has none and then reads back
// whichever the store kept (SigningKeyStore).
type KeyRing struct {
	store    SigningKeyStore
	alg      string
	rotation time.Duration
	maxTTL   time.Duration
	now      func() time.Time

	// loading admits one load from the store at a time; a channel so a
	// waiting caller can give up when its context ends.
	loading chan struct{}
	state   atomic.Pointer[keyState]
}

// keyState is an immutable snapshot of the keys loaded from the store.
type keyState struct {
	keys     []*SigningKey // by slot, then alg
	byKID    map[string]*SigningKey
	loadedAt time.Time // the last load attempt
	loadErr  error     // its outcome
}

// NewKeyRing returns a ring that signs with alg (AlgRS256 or AlgES256), a
// new key every rotation, for tokens living at most maxTokenTTL. now is
// the clock (time.Now when nil). No key is loaded until the first call
// that needs one; Refresh loads them ahead.
func NewKeyRing(store SigningKeyStore, alg string, rotation, maxTokenTTL time.Duration, now func() time.Time) (*KeyRing, error) {
	if store == nil {
		return nil, errors.New("key ring: no store")
	}
	if alg != AlgRS256 && alg != AlgES256 {
		return nil, fmt.Errorf("key ring: unsupported signing alg %q (want %s or %s)", alg, AlgRS256, AlgES256)
	}
	if rotation < time.Second || rotation > maxKeyRotation {
		return nil, fmt.Errorf("key ring: key rotation %v is not between 1s and %v", rotation, maxKeyRotation)
	}
	if maxTokenTTL <= 0 {
		return nil, errors.New("key ring: token lifetime must be positive")
	}
	if now == nil {
		now = time.Now
	}
	r := &KeyRing{
		store:    store,
		alg:      alg,
		rotation: rotation,
		maxTTL:   maxTokenTTL,
		now:      now,
		loading:  make(chan struct{}, 1),
	}
	r.state.Store(&keyState{byKID: map[string]*SigningKey{}})
	return r, nil
}

// slotAt is the slot that t falls in.
func (r *KeyRing) slotAt(t time.Time) int64 {
	return t.UnixNano() / int64(r.rotation)
}

// retireAt is when the key of slot s may leave the key set: its last
// signature is made just before the slot ends.
func (r *KeyRing) retireAt(s int64) time.Time {
	return time.Unix(0, (s+1)*int64(r.rotation)).Add(r.maxTTL)
}

// signer returns the ring's key for slot s in st, if it is fit to sign:
// no token it signs then may outlive its publication.
func (r *KeyRing) signer(st *keyState, s int64) *SigningKey {
	for _, k := range st.keys {
		if k.slot == s && k.alg == r.alg && !k.retireAt.Before(r.retireAt(s)) {
			return k
		}
	}
	return nil
}

// Current returns the key that signs now, loading or creating it (and the
// next slot's) when the ring does not hold it yet. Its error wraps
// ErrSigningKeysUnavailable when the store could not provide it.
func (r *KeyRing) Current(ctx context.Context) (*SigningKey, error) {
	now := r.now()
	s := r.slotAt(now)
	st := r.state.Load()
	if k := r.signer(st, s); k != nil {
		if r.signer(st, s+1) == nil && now.Sub(st.loadedAt) >= keyReloadInterval {
			r.prepareNext(ctx, now)
		}
		return k, nil
	}
	if err := r.lock(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSigningKeysUnavailable, err)
	}
	defer r.unlock()
	if k := r.signer(r.state.Load(), s); k != nil {
		return k, nil // loaded by the caller we waited for
	}
	st, err := r.ensure(ctx, now)
	if err != nil {
		return nil, err
	}
	if k := r.signer(st, s); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: the stored key of slot %d is unusable: %w", ErrSigningKeysUnavailable, s, st.loadErr)
}

// prepareNext creates the next slot's key, when Refresh has not, so that
// it is still published a slot ahead. It is best effort: signing goes on
// with the current key whatever happens, and a caller finding another
// load running does not wait for it.
func (r *KeyRing) prepareNext(ctx context.Context, now time.Time) {
	select {
	case r.loading <- struct{}{}:
	default:
		return
	}
	defer r.unlock()
	if st := r.state.Load(); r.signer(st, r.slotAt(now)+1) == nil && now.Sub(st.loadedAt) >= keyReloadInterval {
		_, _ = r.ensure(ctx, now) // a failure is in the state, and retried a second later at the earliest
	}
}

// ByID returns the live key named kid, for verifying a token. Keys come
// from memory; a well-formed kid the ring does not know makes it reload
// from the store, at most once per keyReloadInterval, since the key may be
// one another instance just created. A kid that cannot be a thumbprint is
// refused without a look-up.
func (r *KeyRing) ByID(ctx context.Context, kid string) (*SigningKey, error) {
	if !wellFormedKID(kid) {
		return nil, errUnknownSigningKey
	}
	now := r.now()
	st := r.state.Load()
	if k := st.live(kid, now); k != nil {
		return k, nil
	}
	if err := r.lock(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSigningKeysUnavailable, err)
	}
	defer r.unlock()
	if cur := r.state.Load(); cur != st || now.Sub(cur.loadedAt) < keyReloadInterval {
		// Another caller loaded meanwhile, or did so too recently.
		if k := cur.live(kid, now); k != nil {
			return k, nil
		}
		return nil, unknownOrUnavailable(cur.loadErr)
	}
	st = r.load(ctx, now)
	if k := st.live(kid, now); k != nil {
		return k, nil
	}
	return nil, unknownOrUnavailable(st.loadErr)
}

// unknownOrUnavailable is the error for a kid not found after a load that
// ended with loadErr: the key may exist in a store that did not answer.
func unknownOrUnavailable(loadErr error) error {
	if loadErr != nil && !errors.Is(loadErr, errUnusableKey) {
		return loadErr
	}
	return errUnknownSigningKey
}

// JWKS returns the key set to publish (RFC 7517 5): the public half of
// every key not yet retired, with its kid, alg and use "sig". It is built
// from memory; until a first load it has no keys.
func (r *KeyRing) JWKS() []byte {
	now := r.now()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range r.state.Load().keys {
		if now.Before(k.retireAt) {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.public, KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		// Only keys this package parsed are in the set, and go-jose
		// encodes every RSA and P-256 public key.
		panic(fmt.Sprintf("key ring: encode key set: %v", err))
	}
	return b
}

// Refresh purges the keys retired (keyPurgeDelay ago), reloads the rest, and creates the keys
// of this slot and the next if they are missing. Run it when the ring is
// made and then periodically (a minute apart is plenty): it is how an
// instance learns of the next key another instance created, and how the
// next key is published a whole slot before it signs.
func (r *KeyRing) Refresh(ctx context.Context) error {
	if err := r.lock(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrSigningKeysUnavailable, err)
	}
	defer r.unlock()
	now := r.now()
	if _, err := r.store.PurgeSigningKeys(ctx, now.Add(-keyPurgeDelay)); err != nil {
		return fmt.Errorf("%w: purge: %w", ErrSigningKeysUnavailable, err)
	}
	st, err := r.ensure(ctx, now)
	if err != nil {
		return err
	}
	return st.loadErr // a stored key that cannot be used
}

// ensure loads the keys and makes sure the store has a key fit to sign for
// the slot of now and for the next one, creating or extending them, then
// loads again if it changed anything. It runs under the loading lock.
func (r *KeyRing) ensure(ctx context.Context, now time.Time) (*keyState, error) {
	st := r.load(ctx, now)
	if st.loadErr != nil && !errors.Is(st.loadErr, errUnusableKey) {
		return nil, st.loadErr
	}
	s := r.slotAt(now)
	changed := false
	for _, slot := range []int64{s, s + 1} {
		want := r.retireAt(slot)
		i := slices.IndexFunc(st.keys, func(k *SigningKey) bool { return k.slot == slot && k.alg == r.alg })
		switch {
		case i < 0:
			k, err := newStoredSigningKey(r.alg, slot, now, want)
			if err != nil {
				return nil, err
			}
			// Another instance may insert first; the reload below
			// then finds its key instead.
			if _, err := r.store.InsertSigningKey(ctx, k); err != nil {
				return nil, fmt.Errorf("%w: insert: %w", ErrSigningKeysUnavailable, err)
			}
			changed = true
		case st.keys[i].retireAt.Before(want):
			// Made by a ring with a shorter token lifetime or rotation
			// period (a config change): keep it published long enough
			// for the tokens this ring signs.
			if err := r.store.ExtendSigningKey(ctx, st.keys[i].kid, want); err != nil {
				return nil, fmt.Errorf("%w: extend: %w", ErrSigningKeysUnavailable, err)
			}
			changed = true
		}
	}
	if changed {
		st = r.load(ctx, now)
		if st.loadErr != nil && !errors.Is(st.loadErr, errUnusableKey) {
			return nil, st.loadErr
		}
	}
	return st, nil
}

// errUnusableKey marks a load that skipped stored keys it could not parse.
var errUnusableKey = errors.New("unusable stored signing key")

// load reads every key from the store into a new state. A store failure
// keeps the keys already held, so verification goes on during an outage;
// a row that does not parse is skipped and reported in loadErr.
func (r *KeyRing) load(ctx context.Context, now time.Time) *keyState {
	prev := r.state.Load()
	stored, err := r.store.SigningKeys(ctx)
	if err != nil {
		st := &keyState{keys: prev.keys, byKID: prev.byKID, loadedAt: now,
			loadErr: fmt.Errorf("%w: %w", ErrSigningKeysUnavailable, err)}
		r.state.Store(st)
		return st
	}
	st := &keyState{byKID: make(map[string]*SigningKey, len(stored)), loadedAt: now}
	var bad []error
	for _, sk := range stored {
		k, err := parseSigningKey(sk)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		st.keys = append(st.keys, k)
		st.byKID[k.kid] = k
	}
	if len(bad) > 0 {
		st.loadErr = fmt.Errorf("%w: %w", errUnusableKey, errors.Join(bad...))
	}
	slices.SortFunc(st.keys, func(a, b *SigningKey) int {
		return cmp.Or(cmp.Compare(a.slot, b.slot), cmp.Compare(a.alg, b.alg))
	})
	r.state.Store(st)
	return st
}

// live returns the key kid if it is not retired at now.
func (st *keyState) live(kid string, now time.Time) *SigningKey {
	if k := st.byKID[kid]; k != nil && now.Before(k.retireAt) {
		return k
	}
	return nil
}

func (r *KeyRing) lock(ctx context.Context) error {
	select {
	case r.loading <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *KeyRing) unlock() { <-r.loading }
