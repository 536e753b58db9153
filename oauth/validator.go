package oauth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Validation failures. The guard maps ErrInvalidToken to 401 and
// ErrUnavailable to 503 (docs/reference.md).
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
	// the store cannot be reached (docs/operations.md).
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
	// cache is keyed by token text (see cacheKeyHash). Entries carry no
	// ristretto TTL: staleAt is checked on every hit instead, which costs
	// nothing extra and keeps ristretto's per-entry expiry map away.
	cache  *ristretto.Cache[string, *cachedToken]
	ttl    time.Duration
	shapes shapeTable
	// revocations counts Forget calls, so that a store answer that raced
	// with a revocation is not cached after it. forgetMu makes "check the
	// count, then cache" atomic with respect to Forget: otherwise a Forget
	// landing between the two would queue its delete before the stale set.
	// Cache hits never take it.
	revocations atomic.Uint64
	forgetMu    sync.RWMutex
	now         func() time.Time
	metrics     Metrics

	touchMu        sync.Mutex
	pendingTouches map[TokenHash]time.Time
	flushNow       chan chan struct{} // a flush on demand, closed when done
	stopFlusher    chan struct{}
	flusherDone    chan struct{}
	closeOnce      sync.Once
}

// cacheCountersPerEntry sizes ristretto's admission counters. Ristretto
// suggests ten per entry; at the default million entries those take 48 MB
// before a single token is cached, and two per entry (8 MB) keep the
// admission policy working: what it has to tell apart is a token in use
// from a burst of one-off (made-up) ones.
const cacheCountersPerEntry = 2

// NewValidator returns a validator over store with the given cache bounds.
func NewValidator(store ValidatorStore, cfg CacheConfig) (*Validator, error) {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultCacheEntries
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultCacheTTL
	}
	if cfg.TTL > MaxCacheTTL {
		return nil, fmt.Errorf("cache ttl %v is longer than the longest allowed, %v", cfg.TTL, MaxCacheTTL)
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, *cachedToken]{
		NumCounters: cfg.MaxEntries * cacheCountersPerEntry,
		MaxCost:     cfg.MaxEntries, // each entry costs 1
		BufferItems: 64,
		// Count entries, not bytes: without this ristretto adds its own
		// per-item overhead to each cost and max_entries would hold far
		// fewer tokens than configured.
		IgnoreInternalCost: true,
		KeyToHash:          cacheKeyHash,
	})
	if err != nil {
		return nil, err
	}
	v := &Validator{
		store:          store,
		cache:          cache,
		ttl:            cfg.TTL,
		now:            time.Now,
		metrics:        noMetrics{},
		pendingTouches: make(map[TokenHash]time.Time),
		flushNow:       make(chan chan struct{}),
		stopFlusher:    make(chan struct{}),
		flusherDone:    make(chan struct{}),
	}
	go v.flushTouches()
	return v, nil
}

// SetMetrics makes the validator count cache hits, misses and store
// look-ups in m. Call it before the validator is in use.
func (v *Validator) SetMetrics(m Metrics) {
	v.metrics = metricsOrNone(m)
}

// Validate returns the principal of a bearer token (an access or personal
// token), ErrInvalidToken when it is malformed, unknown, expired or
// revoked, or ErrUnavailable when the store cannot be asked. The
// principal's Scopes are shared with the cache: read them, never change
// them. It reads opaque tokens only; ValidateWith reads JWTs too.
func (v *Validator) Validate(ctx context.Context, text string) (Principal, error) {
	return v.ValidateWith(ctx, text, nil)
}

// ValidateWith is Validate that also takes JWT access tokens of jwt
// (RFC 9068) when jwt is not nil.
func (v *Validator) ValidateWith(ctx context.Context, text string, jwt *JWTAccessTokens) (Principal, error) {
	kind, err := ParseToken(text)
	if err != nil {
		if jwt != nil && looksLikeJWS(text) {
			return v.validateJWT(ctx, text, jwt)
		}
		return Principal{}, ErrInvalidToken
	}
	if kind != KindAccess && kind != KindPersonal {
		return Principal{}, ErrInvalidToken
	}
	now := v.now()
	nowMs := epochMillis(now)
	if e, ok := v.cache.Get(text); ok && e.fresh(nowMs) {
		v.metrics.CacheHit()
		return v.accept(e, text, now, nowMs)
	}
	v.metrics.CacheMiss()

	h := HashToken(text)
	seen := v.revocations.Load()
	p, err := v.lookup(ctx, kind, h)
	var e *cachedToken
	switch {
	case err == nil:
		e = v.newCachedToken(&p, now)
		if kind == KindPersonal {
			v.touch(h, now)
		}
	case errors.Is(err, ErrNotFound):
		e = v.newCachedToken(nil, now)
	default:
		return Principal{}, ErrUnavailable
	}
	v.remember(h, e, seen)
	if p, ok := e.principal(nowMs); ok {
		return p, nil
	}
	return Principal{}, ErrInvalidToken
}

// lookup asks the store for the token of kind k with hash h, within
// lookupTimeout.
func (v *Validator) lookup(ctx context.Context, k Kind, h TokenHash) (Principal, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	start := time.Now()
	p, err := v.store.LookupToken(ctx, k, h)
	timeStoreCall(v.metrics, OpValidate, start)
	return p, err
}

// remember caches e for the token with hash h, unless a revocation came
// after seen (the value of revocations before the store was asked): the
// store's answer may predate it.
func (v *Validator) remember(h TokenHash, e *cachedToken, seen uint64) {
	v.forgetMu.RLock()
	if v.revocations.Load() == seen {
		v.cache.Set(string(h[:]), e, 1) // the hash is computed already
		// ristretto applies sets in the background; waiting here (the miss
		// has paid for a store round trip already) means the very next
		// request is served from the cache, also if the store goes away.
		v.cache.Wait()
	}
	v.forgetMu.RUnlock()
}

func (v *Validator) accept(e *cachedToken, text string, now time.Time, nowMs int64) (Principal, error) {
	p, ok := e.principal(nowMs)
	if !ok {
		return Principal{}, ErrInvalidToken
	}
	if e.shouldTouch(nowMs) {
		v.touch(HashToken(text), now)
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
		case done := <-v.flushNow:
			v.writeTouches()
			close(done)
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
	// Not sized after the batch: a burst of misses (after a restart)
	// should not leave a map that large behind.
	v.pendingTouches = make(map[TokenHash]time.Time)
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
	v.cache.Del(string(h[:]))
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
