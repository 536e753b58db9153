package oauth

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
)

// StoredClients is one instance's view of the clients in a ClientStore,
// shared by every config on that store. It is kept current in three ways:
// the instance's own changes are read back at once (Refresh); the store's
// change notices from other instances (Refresh for one client, Reload
// for all when notices may have been missed); and a client the view does
// not know is looked up in the store (Find), so that a client just added
// through another instance is known before its notice arrives.
//
// Reads that overlap may finish in any order. Each read is numbered when
// it starts, and the view keeps, for each client, the number of the read
// it holds: an answer older than what the view holds is dropped. A read
// that starts later sees at least what an earlier one saw, so the view
// never goes back to an older state of a client.
type StoredClients struct {
	store ClientStore
	reads atomic.Uint64

	mu      sync.RWMutex
	entries map[string]storedEntry
	// floor is the number of the last full Reload applied: any answer
	// from an older read is dropped.
	floor uint64
}

// storedEntry is what the view holds of one client id. A nil client is a
// removal, kept so that an older answer does not bring the client back.
type storedEntry struct {
	rec    StoredClient
	client *Client
	read   uint64
}

// NewStoredClients returns an empty view of store's clients.
func NewStoredClients(store ClientStore) *StoredClients {
	return &StoredClients{store: store, entries: make(map[string]storedEntry)}
}

// Find returns the stored client id from the view, or else from the store
// (read through, and kept). ErrNotFound means there is none; any other
// error that the store could not be read. read says whether the store was
// asked.
func (v *StoredClients) Find(ctx context.Context, id string) (c *Client, rec StoredClient, read bool, err error) {
	v.mu.RLock()
	e, ok := v.entries[id]
	v.mu.RUnlock()
	if ok && e.client != nil {
		return e.client, e.rec, false, nil
	}
	n := v.reads.Add(1)
	rec, err = v.store.GetClient(ctx, id)
	if err != nil {
		return nil, StoredClient{}, true, err
	}
	// Kept unless the view has meanwhile heard something newer, which
	// wins: it may be the client's removal.
	held := v.apply(id, rec, rec.Client(), n)
	if held.client == nil {
		return nil, StoredClient{}, true, ErrNotFound
	}
	return held.client, held.rec, true, nil
}

// probe reads id from the store and forgets the answer: a failed client
// authentication costs a look-up whether or not the client was known.
func (v *StoredClients) probe(ctx context.Context, id string) {
	_, _ = v.store.GetClient(ctx, id)
}

// Refresh reads the client id from the store again and updates the view:
// after a change through this instance, and on a change notice from
// another. A client that is gone is removed.
func (v *StoredClients) Refresh(ctx context.Context, id string) error {
	n := v.reads.Add(1)
	rec, err := v.store.GetClient(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		v.apply(id, StoredClient{}, nil, n)
		return nil
	case err != nil:
		return err
	}
	v.apply(id, rec, rec.Client(), n)
	return nil
}

// apply puts the answer of read n for id (c nil: there is no such
// client) into the view, unless the view holds a newer one, and returns
// what the view holds for id then.
func (v *StoredClients) apply(id string, rec StoredClient, c *Client, n uint64) storedEntry {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.entries[id]
	if n < v.floor || (ok && n <= e.read) {
		return e
	}
	e = storedEntry{rec: rec, client: c, read: n}
	v.entries[id] = e
	return e
}

// Reload reads every stored client and replaces the view with them: at
// start, and whenever notices may have been missed.
func (v *StoredClients) Reload(ctx context.Context) error {
	_, err := v.reload(ctx)
	return err
}

// List reads every stored client, as Reload does, and returns them sorted
// by id.
func (v *StoredClients) List(ctx context.Context) ([]StoredClient, error) {
	return v.reload(ctx)
}

func (v *StoredClients) reload(ctx context.Context) ([]StoredClient, error) {
	n := v.reads.Add(1)
	recs, err := v.store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	v.mu.Lock()
	defer v.mu.Unlock()
	if n < v.floor {
		return recs, nil
	}
	next := make(map[string]storedEntry, len(recs))
	// What the view heard after this read began stays, removals included.
	for id, e := range v.entries {
		if e.read > n {
			next[id] = e
		}
	}
	for _, rec := range recs {
		if _, newer := next[rec.ID]; !newer {
			next[rec.ID] = storedEntry{rec: rec, client: rec.Client(), read: n}
		}
	}
	v.entries, v.floor = next, n
	return recs, nil
}

// someAllows reports whether a client the view holds may use grantType,
// leaving out those hidden by a static client of the same id.
func (v *StoredClients) someAllows(grantType string, static ClientRegistry) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for id, e := range v.entries {
		if e.client != nil && static[id] == nil && e.client.AllowsGrant(grantType) {
			return true
		}
	}
	return false
}

// Forget forgets what the view holds of id, so that its next use reads it
// from the store; any read already under way is older, and is dropped.
func (v *StoredClients) Forget(id string) {
	v.apply(id, StoredClient{}, nil, v.reads.Add(1))
}
