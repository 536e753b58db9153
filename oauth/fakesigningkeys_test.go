package oauth

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fakeSigningKeyStore is an in-memory SigningKeyStore that keeps the first
// key of each (slot, alg), as the SQL stores do, and counts its calls.
type fakeSigningKeyStore struct {
	mu   sync.Mutex
	keys map[string]StoredSigningKey // by kid

	failing atomic.Bool
	calls   atomic.Int64 // every method
	lists   atomic.Int64 // SigningKeys only
	inserts atomic.Int64 // InsertSigningKey only
}

var _ SigningKeyStore = (*fakeSigningKeyStore)(nil)

func newFakeSigningKeyStore() *fakeSigningKeyStore {
	return &fakeSigningKeyStore{keys: map[string]StoredSigningKey{}}
}

func (s *fakeSigningKeyStore) InsertSigningKey(_ context.Context, k StoredSigningKey) (bool, error) {
	s.calls.Add(1)
	s.inserts.Add(1)
	if s.failing.Load() {
		return false, errFakeStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.KID]; ok {
		return false, nil
	}
	for _, have := range s.keys {
		if have.Slot == k.Slot && have.Alg == k.Alg {
			return false, nil
		}
	}
	k.PrivateKey = slices.Clone(k.PrivateKey)
	s.keys[k.KID] = k
	return true, nil
}

func (s *fakeSigningKeyStore) ExtendSigningKey(_ context.Context, kid string, retireAt time.Time) error {
	s.calls.Add(1)
	if s.failing.Load() {
		return errFakeStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok && k.RetireAt.Before(retireAt) {
		k.RetireAt = retireAt
		s.keys[kid] = k
	}
	return nil
}

func (s *fakeSigningKeyStore) SigningKeys(context.Context) ([]StoredSigningKey, error) {
	s.calls.Add(1)
	s.lists.Add(1)
	if s.failing.Load() {
		return nil, errFakeStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StoredSigningKey, 0, len(s.keys))
	for _, k := range s.keys {
		k.PrivateKey = slices.Clone(k.PrivateKey)
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b StoredSigningKey) int { return cmp.Compare(a.Slot, b.Slot) })
	return out, nil
}

func (s *fakeSigningKeyStore) PurgeSigningKeys(_ context.Context, retiredBy time.Time) (int, error) {
	s.calls.Add(1)
	if s.failing.Load() {
		return 0, errFakeStoreDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for kid, k := range s.keys {
		if !k.RetireAt.After(retiredBy) {
			delete(s.keys, kid)
			n++
		}
	}
	return n, nil
}

// stored returns the store's key kid.
func (s *fakeSigningKeyStore) stored(kid string) (StoredSigningKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[kid]
	return k, ok
}

// put stores k as is, bypassing the one-key-per-slot rule, as a corrupted
// or hand-edited database would.
func (s *fakeSigningKeyStore) put(k StoredSigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.KID] = k
}
