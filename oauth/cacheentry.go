package oauth

import (
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cachedToken is one entry of the validation cache. It is kept to 32 bytes
// (with the user ID its only other allocation), because the cache holds up
// to a million of them: what every entry shares — kind, client and scopes —
// lives in an interned grantShape, and times are whole seconds in 32 bits.
type cachedToken struct {
	// grant is nil for a token the store did not know, so that a flood of
	// made-up but well-formed tokens costs one store query each per TTL,
	// not one per request.
	grant  *grantShape
	userID string
	// staleAt is when the store must be asked again, in seconds since
	// cacheEpoch, rounded up.
	staleAt uint32
	// stamp is a time in seconds since cacheEpoch that depends on the
	// kind. Access token: when it expires, rounded down, so that a token
	// is refused up to a second early, never late; noExpiry for none.
	// Personal token: when its last_used_at was last written (updated
	// atomically, at most once per touchInterval).
	stamp atomic.Uint32
}

// grantShape is what many tokens have in common: one value per kind, client
// and scope set, shared by all their cache entries.
type grantShape struct {
	kind      Kind
	clientID  string
	scopes    []string
	scopeText string
	// audience and dpopKey are those of an access token. Bound tokens
	// each have a key of their own, so their shapes are rarely shared;
	// past maxSharedShapes they are simply not.
	audience string
	dpopKey  string
}

// cacheEpoch is the zero of the entries' 32-bit clocks; seconds since it
// fit in 32 bits until 2161.
var cacheEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxCacheTTL is the longest cache ttl; longer would mean trusting a
// token for weeks without asking the store.
const MaxCacheTTL = 30 * 24 * time.Hour

// noExpiry is the stamp of an access token without an expiry.
const noExpiry = 1<<32 - 1

// epochSeconds returns t in whole seconds since cacheEpoch, rounded down
// and clamped to 32 bits.
func epochSeconds(t time.Time) uint32 {
	return millisToSeconds(epochMillis(t))
}

// millisToSeconds turns milliseconds since cacheEpoch into whole seconds,
// rounded down and clamped below noExpiry.
func millisToSeconds(ms int64) uint32 {
	return uint32(min(ms/1000, noExpiry-1))
}

// epochMillis returns t in milliseconds since cacheEpoch, 0 for earlier.
func epochMillis(t time.Time) int64 {
	return max(t.Sub(cacheEpoch).Milliseconds(), 0)
}

// newCachedToken builds the entry for a store answer at now; p is nil for
// an unknown token.
func (v *Validator) newCachedToken(p *Principal, now time.Time) *cachedToken {
	nowMs := epochMillis(now)
	staleAt := (nowMs + v.ttl.Milliseconds() + 999) / 1000
	e := &cachedToken{staleAt: uint32(min(staleAt, noExpiry))}
	if p == nil {
		return e
	}
	e.grant, e.userID = v.shapes.intern(p), p.UserID
	switch {
	case p.Kind == KindPersonal:
		e.stamp.Store(epochSeconds(now)) // the look-up stands for a use
	case p.ExpiresAt.IsZero():
		e.stamp.Store(noExpiry)
	default:
		e.stamp.Store(epochSeconds(p.ExpiresAt))
	}
	return e
}

// fresh reports whether the entry may still answer without the store.
func (e *cachedToken) fresh(nowMs int64) bool {
	return nowMs < int64(e.staleAt)*1000
}

// principal returns whom the entry speaks for, and false when the store
// did not know the token or it has expired.
func (e *cachedToken) principal(nowMs int64) (Principal, bool) {
	g := e.grant
	if g == nil {
		return Principal{}, false
	}
	p := Principal{UserID: e.userID, ClientID: g.clientID, Scopes: g.scopes, Kind: g.kind, scopeText: g.scopeText,
		Audience: g.audience, DPoPKey: g.dpopKey}
	if g.kind == KindAccess {
		if expires := e.stamp.Load(); expires != noExpiry {
			if nowMs >= int64(expires)*1000 {
				return Principal{}, false
			}
			p.ExpiresAt = cacheEpoch.Add(time.Duration(expires) * time.Second)
		}
	}
	return p, true
}

// shouldTouch reports whether a personal token's use at nowMs is to be
// written to last_used_at, and claims the write so that concurrent
// requests do not repeat it.
func (e *cachedToken) shouldTouch(nowMs int64) bool {
	if e.grant == nil || e.grant.kind != KindPersonal {
		return false
	}
	nowSec := millisToSeconds(nowMs)
	last := e.stamp.Load()
	return int64(nowSec)-int64(last) >= int64(touchInterval/time.Second) && e.stamp.CompareAndSwap(last, nowSec)
}

// shapeTable interns grantShapes. The number of distinct shapes is small
// (kinds × clients × scope sets), but the store decides what comes back, so
// the table is bounded; beyond the bound a shape is simply not shared.
type shapeTable struct {
	mu     sync.Mutex
	shapes map[string]*grantShape
}

const maxSharedShapes = 10_000

func (t *shapeTable) intern(p *Principal) *grantShape {
	text := strings.Join(p.Scopes, " ")
	key := string(rune('0'+p.Kind)) + p.ClientID + "\x00" + text + "\x00" + p.Audience + "\x00" + p.DPoPKey
	t.mu.Lock()
	defer t.mu.Unlock()
	if g, ok := t.shapes[key]; ok {
		return g
	}
	g := &grantShape{kind: p.Kind, clientID: p.ClientID, scopes: p.Scopes, scopeText: text, audience: p.Audience, dpopKey: p.DPoPKey}
	if t.shapes == nil {
		t.shapes = make(map[string]*grantShape)
	}
	if len(t.shapes) < maxSharedShapes {
		t.shapes[key] = g
	}
	return g
}

// cacheKeyHash is the cache's KeyToHash. A key is a token's text, or its
// SHA-256 hash (32 bytes, which no token text is) where the hash is at hand
// already: to store a store's answer, or to forget a token.
// Either gives the same two halves of the hash: the first 8 bytes pick the
// entry and the next 8 must match too, so a false hit needs a 128-bit
// collision. The conflict half is never 0, which ristretto would read as
// "do not check".
func cacheKeyHash(key string) (uint64, uint64) {
	var h TokenHash
	if len(key) == len(h) {
		copy(h[:], key)
	} else {
		h = HashToken(key)
	}
	return binary.LittleEndian.Uint64(h[:8]), binary.LittleEndian.Uint64(h[8:16]) | 1
}
