package oauth

import (
	"context"
	"errors"
	"time"
)

// ClientSource says where a client is defined.
type ClientSource string

// The sources of clients.
const (
	// SourceConfig: a static client of the Caddyfile (or JSON config).
	SourceConfig ClientSource = "config"
	// SourceStore: a client added through the admin API or by a user's
	// self-service.
	SourceStore ClientSource = "store"
	// SourceRegistration: a client that registered itself (RFC 7591).
	SourceRegistration ClientSource = "registration"
)

// StoredClient is a client kept in the store, as the store keeps it.
type StoredClient struct {
	ID   string
	Name string
	// SecretHash is the SHA-256 of the client secret; nil for a public
	// client (RFC 6749 2.1). The secret itself is never stored.
	SecretHash   []byte
	RedirectURIs []string
	// Scopes the client may ask for, explicitly: a client added without
	// scopes gets every scope declared at that moment.
	Scopes       []string
	PKCERequired bool
	// GrantTypes the client may use (RFC 7591 2). Default:
	// authorization_code and refresh_token.
	GrantTypes []string
	// DPoPBoundAccessTokens makes the client's access tokens bound to a
	// DPoP key (RFC 9449 5.2).
	DPoPBoundAccessTokens bool
	// Source is SourceStore or SourceRegistration.
	Source ClientSource
	// OwnerUserID is the user who added the client through self-service;
	// empty for a client the operator added.
	OwnerUserID string
	// RegistrationTokenHash is the SHA-256 of the client's registration
	// access token (RFC 7592 3); nil when it has none.
	RegistrationTokenHash []byte
	// Generation tells this client apart from any earlier or later client
	// of the same id: it is random, set when the client is created, and
	// carried by its codes and refresh tokens, which are honoured only
	// while a client of that generation exists (docs/decisions.md).
	Generation string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ErrClientExists is returned by ClientStore.CreateClient when the id is
// taken.
var ErrClientExists = errors.New("client already exists")

// ClientStore keeps the stored clients. It is what StoredClients and
// ClientAdmin need of a store.
type ClientStore interface {
	// CreateClient stores a new client, or returns ErrClientExists.
	CreateClient(ctx context.Context, c StoredClient) error
	// GetClient returns the client with id, or ErrNotFound.
	GetClient(ctx context.Context, id string) (StoredClient, error)
	// ListClients returns every stored client, sorted by id.
	ListClients(ctx context.Context) ([]StoredClient, error)
	// UpdateClient replaces the name, redirect URIs, scopes, PKCE rule,
	// grant types and DPoP rule of the client c.ID, and sets its UpdatedAt;
	// the rest stays. An unknown id is ErrNotFound.
	UpdateClient(ctx context.Context, c StoredClient) error
	// SetClientSecretHash replaces the client's secret hash, or returns
	// ErrNotFound.
	SetClientSecretHash(ctx context.Context, id string, hash []byte, now time.Time) error
	// DeleteClient removes the client and, in the same transaction, its
	// authorization codes and consents, and revokes its refresh tokens and
	// the tokens it holds for itself (ClientTokenStore); the access tokens
	// of its users are left to run out. An unknown id is ErrNotFound.
	DeleteClient(ctx context.Context, id string, now time.Time) error
}

// ErrClientLimit is returned by OwnedClientStore.CreateOwnedClient when
// the owner has as many clients as they may.
var ErrClientLimit = errors.New("client limit reached")

// OwnedClientStore keeps the clients users register for themselves
// (StoredClient.OwnerUserID). It is what ClientAdmin needs of a store for
// a user's self-service, beside ClientStore.
type OwnedClientStore interface {
	// CreateOwnedClient stores c, a client of the user c.OwnerUserID,
	// unless that user has limit clients or more already (ErrClientLimit)
	// or the id is taken (ErrClientExists). The count and the insert are
	// one transaction, serialized per user across every instance sharing
	// the store, so concurrent calls never leave more than limit.
	CreateOwnedClient(ctx context.Context, c StoredClient, limit int) error
	// ListOwnedClients returns the clients of the user owner, sorted by id.
	ListOwnedClients(ctx context.Context, owner string) ([]StoredClient, error)
}

// Client is the Client the protocol uses for r.
func (r StoredClient) Client() *Client {
	source := r.Source
	if source == "" {
		source = SourceStore
	}
	return &Client{
		ID:           r.ID,
		Name:         r.Name,
		secretHash:   r.SecretHash,
		RedirectURIs: r.RedirectURIs,
		Scopes:       r.Scopes,
		PKCERequired: r.PKCERequired,
		GrantTypes:   grantTypesOrDefault(r.GrantTypes),
		Source:       source,
		generation:   r.Generation,

		DPoPBoundAccessTokens: r.DPoPBoundAccessTokens,
	}
}

// Public reports whether the client has no secret (RFC 6749 2.1).
func (r StoredClient) Public() bool { return r.SecretHash == nil }
