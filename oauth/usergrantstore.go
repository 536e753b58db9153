package oauth

import (
	"context"
	"time"
)

// Consent is a user's recorded consent to one client: what the user
// approved on the consent page or through the dashboard flow.
type Consent struct {
	ClientID string
	Scopes   []string
	// GrantedAt is when the consent last grew: a new scope moves it, an
	// authorization for scopes already granted does not.
	GrantedAt time.Time
}

// UserGrantStore lists and ends what a user has granted: the connected
// apps a user sees and revokes, the admin API's user routes and a
// user-wide sign-out. Each revocation runs in one transaction and
// announces the access and personal tokens it revokes to the other
// instances sharing the store, as RevokeToken does.
type UserGrantStore interface {
	// Consents returns userID's consents, ordered by client id.
	Consents(ctx context.Context, userID string) ([]Consent, error)
	// RevokeClientGrant deletes userID's consent to clientID, deletes
	// the user's unused codes for clientID and revokes every refresh
	// family of the user for clientID with all its tokens. It returns
	// the hashes of the access tokens it revoked that had not expired,
	// for Validator.Forget, and whether there was anything to revoke.
	RevokeClientGrant(ctx context.Context, userID, clientID string, now time.Time) (revoked []TokenHash, found bool, err error)
	// RevokeUser does what RevokeClientGrant does for every client of
	// userID, and deletes the user's personal token; the hashes returned
	// include the personal token's.
	RevokeUser(ctx context.Context, userID string, now time.Time) (revoked []TokenHash, found bool, err error)
}
