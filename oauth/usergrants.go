package oauth

import (
	"context"
	"errors"
	"time"
)

// UserGrant is one client a user has authorized, as the user's list of
// connected apps shows it.
type UserGrant struct {
	ClientID string
	// ClientName is the client's name, or its id when no client of that
	// id is known any more.
	ClientName string
	Scopes     []string
	// GrantedAt is when the user last granted the client a new scope.
	GrantedAt time.Time
}

// errNoUser refuses a revocation for the empty user id: every user has an
// id, and in the store the empty one marks the tokens clients hold for
// themselves (ClientTokenStore), which no user's revocation may reach.
var errNoUser = errors.New("oauth: no user id")

// errNoUserGrantStore answers the user-grant methods of an AuthServer
// built without a UserGrants store.
var errNoUserGrantStore = errors.New("oauth: no store for users' grants")

// ListGrants returns the clients userID has consented to, ordered by
// client id, with the scopes consented to.
func (s *AuthServer) ListGrants(ctx context.Context, userID string) ([]UserGrant, error) {
	if s.UserGrants == nil {
		return nil, errNoUserGrantStore
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	consents, err := s.UserGrants.Consents(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]UserGrant, 0, len(consents))
	for _, c := range consents {
		out = append(out, UserGrant{
			ClientID:   c.ClientID,
			ClientName: s.clientName(ctx, c.ClientID),
			Scopes:     c.Scopes,
			GrantedAt:  c.GrantedAt,
		})
	}
	return out, nil
}

// clientName names clientID for a user: the client's name, or its id
// when the client is no longer known (removed from the config) or cannot
// be read just now.
func (s *AuthServer) clientName(ctx context.Context, clientID string) string {
	if s.Clients == nil {
		return clientID
	}
	if c, err := s.Clients.FindClient(ctx, clientID); err == nil && c != nil && c.Name != "" {
		return c.Name
	}
	return clientID
}

// RevokeGrant ends userID's grant to clientID: the consent, every code
// not yet exchanged, and every access and refresh token of the user for
// that client, on every instance sharing the store. The next authorization
// asks for consent again. A client the user never authorized, or one no
// longer known, is not an error: there is nothing to end.
func (s *AuthServer) RevokeGrant(ctx context.Context, userID, clientID string) error {
	if userID == "" {
		return errNoUser
	}
	return s.revokeUserGrants(ctx, AuditEvent{Message: AuditGrantRevoked, UserID: userID, ClientID: clientID},
		func(ctx context.Context) ([]TokenHash, bool, error) {
			return s.UserGrants.RevokeClientGrant(ctx, userID, clientID, s.now())
		})
}

// RevokeUser ends everything userID holds ("sign out everywhere"): every
// consent, code and OAuth token of the user, and the personal token, on
// every instance sharing the store.
func (s *AuthServer) RevokeUser(ctx context.Context, userID string) error {
	if userID == "" {
		return errNoUser
	}
	return s.revokeUserGrants(ctx, AuditEvent{Message: AuditUserRevoked, UserID: userID},
		func(ctx context.Context) ([]TokenHash, bool, error) {
			return s.UserGrants.RevokeUser(ctx, userID, s.now())
		})
}

// revokeUserGrants runs one of the store's revocations, forgets the tokens
// it revoked in this instance's cache, and records event when there was
// something to revoke.
func (s *AuthServer) revokeUserGrants(ctx context.Context, event AuditEvent, revoke func(context.Context) ([]TokenHash, bool, error)) error {
	if s.UserGrants == nil {
		return errNoUserGrantStore
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	start := time.Now()
	revoked, found, err := revoke(ctx)
	timeStoreCall(s.metrics(), OpRevoke, start)
	if err != nil {
		return err
	}
	s.forget(revoked)
	if found {
		s.audit(ctx, event)
	}
	return nil
}
