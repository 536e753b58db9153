package oauth

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Validation failures. The guard maps ErrInvalidToken to 401 and
// ErrUnavailable to 503 (SPEC 3).
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrUnavailable  = errors.New("token store unavailable")
)

// ValidatorStore is what the validator needs from a store.
type ValidatorStore interface {
	TokenLookup
	TouchPersonalToken(ctx context.Context, h TokenHash, t time.Time) error
}

// CacheConfig bounds the validation cache.
type CacheConfig struct {
	// MaxEntries is the most tokens kept; default 1,000,000.
	MaxEntries int64
	// TTL is how long a look-up is trusted without asking the store again;
	// default 5m. It is also how long a cached token keeps working while
	// the store cannot be reached (SPEC 5).
	TTL time.Duration
}

// Defaults for CacheConfig.
const (
	DefaultCacheEntries = 1_000_000
	DefaultCacheTTL     = 5 * time.Minute
	// lookupTimeout bounds every store call made while a request waits.
	lookupTimeout = 2 * time.Second
	// touchInterval is how often last_used_at of a personal token is
	// written at most; writing it on every request would put a store write
	// on the hot path.
	touchInterval = time.Minute
	// touchFlushInterval is how often the queued last_used_at writes go to
	// the store, one at a time from one goroutine, so a burst of cache
	// misses (after a restart) does not become a burst of writers.
	touchFlushInterval = time.Second
	// maxPendingTouches bounds the queue; uses beyond it are dropped.
	maxPendingTouches = 100_000
)

// Validator turns a bearer token's text into the principal it speaks for,
// from a bounded in-memory cache in front of the store.
type Validator struct {
	store ValidatorStore
	cache *ristretto.Cache[uint64, *cachedToken]
	ttl   time.Duration
	// revocations counts Forget calls, so that a store answer that raced
	// with a revocation is not cached after it. forgetMu makes "check the
	// count, then cache" atomic with respect to Forget: otherwise a Forget
	// landing between the two would queue its delete before the stale set.
	// Cache hits never take it.
	revocations atomic.Uint64
	forgetMu    sync.RWMutex
	now         func() time.Time

	touchMu        sync.Mutex
	pendingTouches map[TokenHash]time.Time
	stopFlusher    chan struct{}
	flusherDone    chan struct{}
	closeOnce      sync.Once
}

// cachedToken is one cache entry. principal is nil for a token the store
// did not know, so that a flood of made-up but well-formed tokens costs one
// store query each per TTL, not one per request.
type cachedToken struct {
	hash      TokenHash
	principal *Principal
	lastTouch atomic.Int64 // unix nanoseconds of the last last_used_at write
}

// NewValidator returns a validator over store with the given cache bounds.
func NewValidator(store ValidatorStore, cfg CacheConfig) (*Validator, error) {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultCacheEntries
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultCacheTTL
	}
	cache, err := ristretto.NewCache(&ristretto.Config[uint64, *cachedToken]{
		NumCounters: cfg.MaxEntries * 10, // ristretto's advice: 10x the entries
		MaxCost:     cfg.MaxEntries,      // each entry costs 1
		BufferItems: 64,
		// Count entries, not bytes: without this ristretto adds its own
		// per-item overhead to each cost and max_entries would hold far
		// fewer tokens than configured.
		IgnoreInternalCost: true,
		// The key is already a hash; keep it as is.
		KeyToHash: func(k uint64) (uint64, uint64) { return k, 0 },
	})
	if err != nil {
		return nil, err
	}
	v := &Validator{
		store:          store,
		cache:          cache,
		ttl:            cfg.TTL,
		now:            time.Now,
		pendingTouches: make(map[TokenHash]time.Time),
		stopFlusher:    make(chan struct{}),
		flusherDone:    make(chan struct{}),
	}
	go v.flushTouches()
	return v, nil
}

// Validate returns the principal of a bearer token (an access or personal
// token), ErrInvalidToken when it is malformed, unknown, expired or
// revoked, or ErrUnavailable when the store cannot be asked.
func (v *Validator) Validate(ctx context.Context, text string) (*Principal, error) {
	kind, err := ParseToken(text)
	if err != nil || (kind != KindAccess && kind != KindPersonal) {
		return nil, ErrInvalidToken
	}
	h := HashToken(text)
	key := cacheKey(h)
	now := v.now()
	if e, ok := v.cache.Get(key); ok && e.hash == h {
		return v.accept(e, now)
	}

	seen := v.revocations.Load()
	lookupCtx, cancel := context.WithTimeout(ctx, lookupTimeout)
	p, err := v.store.LookupToken(lookupCtx, kind, h)
	cancel()
	e := &cachedToken{hash: h}
	switch {
	case err == nil:
		p.scopeText = strings.Join(p.Scopes, " ")
		e.principal = &p
		e.lastTouch.Store(now.UnixNano()) // the look-up stands for a use
		if kind == KindPersonal {
			v.touch(h, now)
		}
	case errors.Is(err, ErrNotFound):
	default:
		return nil, ErrUnavailable
	}
	v.forgetMu.RLock()
	if v.revocations.Load() == seen {
		v.cache.SetWithTTL(key, e, 1, v.ttl)
		// ristretto applies sets in the background; waiting here (the miss
		// has paid for a store round trip already) means the very next
		// request is served from the cache, also if the store goes away.
		v.cache.Wait()
	}
	v.forgetMu.RUnlock()
	if e.principal == nil || e.principal.expired(now) {
		return nil, ErrInvalidToken
	}
	return e.principal, nil
}

func (v *Validator) accept(e *cachedToken, now time.Time) (*Principal, error) {
	p := e.principal
	if p == nil || p.expired(now) {
		return nil, ErrInvalidToken
	}
	if p.Kind == KindPersonal {
		last := e.lastTouch.Load()
		if now.UnixNano()-last >= int64(touchInterval) && e.lastTouch.CompareAndSwap(last, now.UnixNano()) {
			v.touch(e.hash, now)
		}
	}
	return p, nil
}

// touch queues a personal token's use; the request does not wait for it.
func (v *Validator) touch(h TokenHash, at time.Time) {
	v.touchMu.Lock()
	if prev, queued := v.pendingTouches[h]; queued || len(v.pendingTouches) < maxPendingTouches {
		if at.After(prev) {
			v.pendingTouches[h] = at
		}
	}
	v.touchMu.Unlock()
}

// flushTouches writes the queued uses every touchFlushInterval, and once
// more when the validator is closed.
func (v *Validator) flushTouches() {
	defer close(v.flusherDone)
	tick := time.NewTicker(touchFlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-v.stopFlusher:
			v.writeTouches()
			return
		case <-tick.C:
			v.writeTouches()
		}
	}
}

func (v *Validator) writeTouches() {
	v.touchMu.Lock()
	batch := v.pendingTouches
	if len(batch) == 0 {
		v.touchMu.Unlock()
		return
	}
	v.pendingTouches = make(map[TokenHash]time.Time, len(batch))
	v.touchMu.Unlock()
	for h, at := range batch {
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		_ = v.store.TouchPersonalToken(ctx, h, at) // best effort: last_used_at is informational
		cancel()
	}
}

// Forget drops a token from the cache. Call it after the store has revoked
// the token, so the next request asks the store again.
func (v *Validator) Forget(h TokenHash) {
	v.forgetMu.Lock()
	v.revocations.Add(1)
	v.cache.Del(cacheKey(h))
	v.forgetMu.Unlock()
}

// ForgetAll empties the cache, for when revocations may have been missed.
func (v *Validator) ForgetAll() {
	v.forgetMu.Lock()
	v.revocations.Add(1)
	v.cache.Clear()
	v.forgetMu.Unlock()
}

// Close writes the queued last_used_at updates and releases the cache. The
// store must still be open.
func (v *Validator) Close() {
	v.closeOnce.Do(func() {
		close(v.stopFlusher)
		<-v.flusherDone
		v.cache.Close()
	})
}

// cacheKey uses the first 8 bytes of the SHA-256 as the cache key; entries
// carry the whole hash, and a mismatch is treated as a miss.
func cacheKey(h TokenHash) uint64 {
	return binary.LittleEndian.Uint64(h[:8])
}
