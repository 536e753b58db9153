package oauth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// errFakeStoreDown is what fakeTokenStore answers while failing. It is not
// ErrNotFound, so the validator must treat it as "the store cannot answer".
var errFakeStoreDown = errors.New("fake store: connection refused")

// fakeTokenStore is an in-memory ValidatorStore and PersonalTokenStore for
// unit tests. Every method is guarded by one mutex, which also serializes
// ReplacePersonalToken per user as the interface requires.
type fakeTokenStore struct {
	mu sync.Mutex
	// tokens holds access (and any other kind of) tokens by hash.
	tokens map[TokenHash]fakeEntry
	// personal holds each user's personal token; personalByHash indexes it.
	personal       map[string]PersonalToken
	personalByHash map[TokenHash]string
	// touched records every TouchPersonalToken call in order.
	touched []fakeTouch
	// afterLookup, when set, runs inside LookupToken after the answer has
	// been read and before it is returned, outside the mutex.
	afterLookup func(k Kind, h TokenHash)

	failing       atomic.Bool
	lookups       atomic.Int64
	touches       atomic.Int64
	lookupsNoDead atomic.Int64 // look-ups whose context had no deadline
	lastKind      atomic.Int32 // kind of the last look-up
}

type fakeEntry struct {
	kind      Kind
	principal Principal
}

type fakeTouch struct {
	hash TokenHash
	at   time.Time
}

var (
	_ ValidatorStore     = (*fakeTokenStore)(nil)
	_ PersonalTokenStore = (*fakeTokenStore)(nil)
)

func newFakeTokenStore() *fakeTokenStore {
	return &fakeTokenStore{
		tokens:         make(map[TokenHash]fakeEntry),
		personal:       make(map[string]PersonalToken),
		personalByHash: make(map[TokenHash]string),
	}
}

// setFailing makes every method return errFakeStoreDown (true) or work again.
func (s *fakeTokenStore) setFailing(fail bool) { s.failing.Store(fail) }

// lookupCount is how many times LookupToken has been called.
func (s *fakeTokenStore) lookupCount() int64 { return s.lookups.Load() }

// touchCount is how many times TouchPersonalToken has succeeded.
func (s *fakeTokenStore) touchCount() int64 { return s.touches.Load() }

// setAfterLookup installs (or with nil removes) the afterLookup hook.
func (s *fakeTokenStore) setAfterLookup(f func(k Kind, h TokenHash)) {
	s.mu.Lock()
	s.afterLookup = f
	s.mu.Unlock()
}

// issue creates a token of kind k for p, stores it, and returns its text.
func (s *fakeTokenStore) issue(k Kind, p Principal) (string, TokenHash) {
	text, h, err := NewToken(k)
	if err != nil {
		panic(err)
	}
	s.put(k, h, p)
	return text, h
}

// put stores principal p under hash h for kind k.
func (s *fakeTokenStore) put(k Kind, h TokenHash, p Principal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[h] = fakeEntry{kind: k, principal: p}
}

// revoke removes the token with hash h, whatever its kind.
func (s *fakeTokenStore) revoke(h TokenHash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, h)
	if user, ok := s.personalByHash[h]; ok {
		delete(s.personalByHash, h)
		delete(s.personal, user)
	}
}

// touchesOf returns the times TouchPersonalToken recorded for h.
func (s *fakeTokenStore) touchesOf(h TokenHash) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var at []time.Time
	for _, t := range s.touched {
		if t.hash == h {
			at = append(at, t.at)
		}
	}
	return at
}

func (s *fakeTokenStore) LookupToken(ctx context.Context, k Kind, h TokenHash) (Principal, error) {
	s.lookups.Add(1)
	s.lastKind.Store(int32(k))
	if _, ok := ctx.Deadline(); !ok {
		s.lookupsNoDead.Add(1)
	}
	if s.failing.Load() {
		return Principal{}, errFakeStoreDown
	}
	s.mu.Lock()
	p, err := s.lookupLocked(k, h)
	hook := s.afterLookup
	s.mu.Unlock()
	if hook != nil {
		hook(k, h)
	}
	return p, err
}

func (s *fakeTokenStore) lookupLocked(k Kind, h TokenHash) (Principal, error) {
	if e, ok := s.tokens[h]; ok && e.kind == k {
		return clonePrincipal(e.principal), nil
	}
	if k != KindPersonal {
		return Principal{}, ErrNotFound
	}
	user, ok := s.personalByHash[h]
	if !ok {
		return Principal{}, ErrNotFound
	}
	t := s.personal[user]
	return Principal{
		UserID: t.UserID,
		Scopes: append([]string(nil), t.Scopes...),
		Kind:   KindPersonal,
	}, nil
}

func clonePrincipal(p Principal) Principal {
	p.Scopes = append([]string(nil), p.Scopes...)
	return p
}

func (s *fakeTokenStore) TouchPersonalToken(ctx context.Context, h TokenHash, t time.Time) error {
	if s.failing.Load() {
		return errFakeStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touched = append(s.touched, fakeTouch{hash: h, at: t})
	if user, ok := s.personalByHash[h]; ok {
		rec := s.personal[user]
		if t.After(rec.LastUsedAt) {
			rec.LastUsedAt = t
			s.personal[user] = rec
		}
	}
	s.touches.Add(1)
	return nil
}

func (s *fakeTokenStore) ReplacePersonalToken(ctx context.Context, t PersonalToken) (TokenHash, bool, error) {
	if s.failing.Load() {
		return TokenHash{}, false, errFakeStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.personal[t.UserID]
	if had {
		delete(s.personalByHash, old.Hash)
	}
	t.Scopes = append([]string(nil), t.Scopes...)
	s.personal[t.UserID] = t
	s.personalByHash[t.Hash] = t.UserID
	return old.Hash, had, nil
}

func (s *fakeTokenStore) DeletePersonalToken(ctx context.Context, userID string) (TokenHash, bool, error) {
	if s.failing.Load() {
		return TokenHash{}, false, errFakeStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.personal[userID]
	if !had {
		return TokenHash{}, false, nil
	}
	delete(s.personal, userID)
	delete(s.personalByHash, old.Hash)
	return old.Hash, true, nil
}

func (s *fakeTokenStore) PersonalToken(ctx context.Context, userID string) (PersonalToken, error) {
	if s.failing.Load() {
		return PersonalToken{}, errFakeStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.personal[userID]
	if !ok {
		return PersonalToken{}, ErrNotFound
	}
	t.Scopes = append([]string(nil), t.Scopes...)
	return t, nil
}

// activeHashes returns the hashes of every personal token userID holds; a
// correct store never holds more than one.
func (s *fakeTokenStore) activeHashes(userID string) []TokenHash {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hs []TokenHash
	for h, u := range s.personalByHash {
		if u == userID {
			hs = append(hs, h)
		}
	}
	return hs
}
