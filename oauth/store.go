package oauth

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a store when nothing matches.
var ErrNotFound = errors.New("not found")

// PersonalToken is the stored record of a user's personal API token.
type PersonalToken struct {
	UserID     string
	Hash       TokenHash
	Hint       string
	Scopes     []string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero when never used
}

// TokenLookup finds the principal behind a token hash. It is what the
// validator needs from a store.
type TokenLookup interface {
	// LookupToken returns the principal of the live token of kind k with
	// hash h, or ErrNotFound. Any other error means the store could not
	// answer.
	LookupToken(ctx context.Context, k Kind, h TokenHash) (Principal, error)
}

// PersonalTokenStore keeps each user's single personal API token.
type PersonalTokenStore interface {
	// ReplacePersonalToken makes t the only personal token of t.UserID, in
	// one transaction that is serialized per user, and returns the hash of
	// the token it replaced (ok false when there was none). Concurrent calls
	// for one user leave exactly one token, and each returns the hash that
	// was active just before its own write.
	ReplacePersonalToken(ctx context.Context, t PersonalToken) (replaced TokenHash, ok bool, err error)
	// DeletePersonalToken removes userID's personal token and returns its
	// hash; ok is false when the user had none.
	DeletePersonalToken(ctx context.Context, userID string) (deleted TokenHash, ok bool, err error)
	// PersonalToken returns userID's personal token, or ErrNotFound.
	PersonalToken(ctx context.Context, userID string) (PersonalToken, error)
	// TouchPersonalToken records that the token with hash h was used at t.
	TouchPersonalToken(ctx context.Context, h TokenHash, t time.Time) error
}

// Store is everything tokengate keeps durably. The SQLite and PostgreSQL
// implementations live in package oauth/sqlstore.
type Store interface {
	TokenLookup
	PersonalTokenStore
	GrantStore
	DeviceStore
	UserGrantStore
	ClientStore
	OwnedClientStore
	UserinfoStore
	SigningKeyStore
	ClientTokenStore
	// WatchRevocations calls forget with the hash of every token revoked
	// through another instance sharing the store, and reset each time it
	// starts listening, the first time included: whatever was cached before
	// then may have been revoked with nobody listening. The first reset is
	// therefore also the sign that revocations are being heard. It blocks
	// until ctx is done. A store that serves one instance only (SQLite) has
	// nothing to hear: it calls reset once, at once, and waits for ctx.
	WatchRevocations(ctx context.Context, forget func(TokenHash), reset func())
	// WatchClients calls changed with the id of each stored client added,
	// changed or removed through any instance sharing the store (an empty
	// id: any client), and reset each time it starts listening, the first
	// time included, since changes may have been missed before. It blocks
	// until ctx is done; a store that serves one instance calls reset
	// once and waits.
	WatchClients(ctx context.Context, changed func(id string), reset func())
	// Close releases the store's connections.
	Close() error
}
