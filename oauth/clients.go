package oauth

import (
	"context"
	"errors"
	"sort"
)

// Clients answers for every client of a config: the static clients of the
// config and the stored clients, together. A static id wins: a stored
// client of the same id is not seen while the config defines one.
type Clients struct {
	Static ClientRegistry
	// Stored is the view of the stored clients; nil means none.
	Stored *StoredClients
}

// FindClient implements ClientFinder: a static client, or else a stored
// one, read from the store when the view does not know it.
func (cs *Clients) FindClient(ctx context.Context, id string) (*Client, error) {
	c, _, err := cs.find(ctx, id)
	return c, err
}

// find is FindClient that also says whether the store was read.
func (cs *Clients) find(ctx context.Context, id string) (*Client, bool, error) {
	if c := cs.Static[id]; c != nil {
		return c, false, nil
	}
	if cs.Stored == nil {
		return nil, false, ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	c, _, read, err := cs.Stored.Find(ctx, id)
	return c, read, err
}

// Authenticate checks a client's credentials (RFC 6749 2.3.1), as
// ClientRegistry.Authenticate does, for static and stored clients. An
// unknown client and a wrong secret both get ErrInvalidClient after the
// same work: a failure that did not need the store asks it all the same,
// as a client unknown to this instance makes it do. Any other error means
// the store could not be read.
func (cs *Clients) Authenticate(ctx context.Context, id, secret string, presented bool) (*Client, error) {
	c, read, err := cs.find(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	c, err = authenticate(c, secret, presented)
	if err != nil && !read && cs.Stored != nil {
		ctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		cs.Stored.probe(ctx, id)
	}
	return c, err
}

// SomeClientAllows reports whether some client, static or stored, may use
// grantType, for metadata's grant_types_supported (RFC 8414 2). It reads
// what this instance holds, never the store: the view of the stored
// clients is read in full at start and kept current.
func (cs *Clients) SomeClientAllows(grantType string) bool {
	for _, c := range cs.Static {
		if c.AllowsGrant(grantType) {
			return true
		}
	}
	return cs.Stored != nil && cs.Stored.someAllows(grantType, cs.Static)
}

// ListedClient is a client as the admin API lists it: a static client, or
// a stored one with its record.
type ListedClient struct {
	Client *Client
	// Stored is the record of a stored client; nil for a static one.
	Stored *StoredClient
}

// List returns every client, static and stored, sorted by id, the stored
// ones read from the store. A stored client hidden by a static one of the
// same id is left out.
func (cs *Clients) List(ctx context.Context) ([]ListedClient, error) {
	out := make([]ListedClient, 0, len(cs.Static))
	for _, c := range cs.Static {
		out = append(out, ListedClient{Client: c})
	}
	if cs.Stored != nil {
		ctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		recs, err := cs.Stored.List(ctx)
		if err != nil {
			return nil, err
		}
		for i := range recs {
			if cs.Static[recs[i].ID] == nil {
				out = append(out, ListedClient{Client: recs[i].Client(), Stored: &recs[i]})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client.ID < out[j].Client.ID })
	return out, nil
}

// Get returns the client id as List shows it, or ErrNotFound. A stored
// client is read from the store, so that the answer is current.
func (cs *Clients) Get(ctx context.Context, id string) (ListedClient, error) {
	if c := cs.Static[id]; c != nil {
		return ListedClient{Client: c}, nil
	}
	if cs.Stored == nil {
		return ListedClient{}, ErrNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := cs.Stored.Refresh(ctx, id); err != nil {
		return ListedClient{}, err
	}
	c, rec, _, err := cs.Stored.Find(ctx, id)
	if err != nil {
		return ListedClient{}, err
	}
	return ListedClient{Client: c, Stored: &rec}, nil
}

// Interface guards
var _ ClientFinder = (*Clients)(nil)
