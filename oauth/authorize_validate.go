package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"

	"go.uber.org/zap"
)

// ValidateAuthorize checks an authorization request as Authorize does, in
// the same order, but issues nothing and records no consent: the browser
// flow (GET authorize) validates before it shows the consent page. On success
// it returns the client and the requested scopes, deduplicated, in request
// order. On failure redirectable says whether the error may be sent to the
// redirect URI (RFC 6749 4.1.2.1): never when the client or the redirect URI
// is bad. The user is not checked; the caller authenticates the user first.
func (s *AuthServer) ValidateAuthorize(ctx context.Context, r AuthorizeRequest) (*Client, []string, *Error, bool) {
	c, err := s.Clients.FindClient(ctx, r.ClientID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil, ErrInvalidRequest.WithDescription("unknown client_id"), false
	case err != nil:
		s.logger().Error("reading the client failed", zap.String("client_id", r.ClientID), zap.Error(err))
		return nil, nil, ErrTemporarilyUnavailable, false
	}
	if r.RedirectURI == "" || !c.MatchRedirectURI(r.RedirectURI) {
		return nil, nil, ErrInvalidRequest.WithDescription("redirect_uri is not registered for this client"), false
	}
	switch r.ResponseType {
	case "code":
	case "":
		return c, nil, ErrInvalidRequest.WithDescription("response_type is required"), true
	default:
		return c, nil, ErrUnsupportedResponseType.WithDescription("response_type must be code"), true
	}
	if !c.AllowsGrant(GrantTypeAuthorizationCode) {
		// RFC 6749 4.1.2.1: a code it could not exchange.
		return c, nil, ErrUnauthorizedClient.WithDescription("this client may not use authorization_code"), true
	}
	scopes, serr := s.requestedScopes(c, r.Scope)
	if serr != nil {
		return c, nil, serr, true
	}
	if r.State == "" {
		return c, nil, ErrInvalidRequest.WithDescription("state is required"), true
	}
	// RFC 7636 4.4.1: S256 only, and an absent method is not
	// taken to mean "plain".
	switch {
	case r.CodeChallenge == "" && r.CodeChallengeMethod == "":
		if c.PKCERequired || !c.Confidential() {
			return c, nil, ErrInvalidRequest.WithDescription("code_challenge is required"), true
		}
	case r.CodeChallenge == "":
		return c, nil, ErrInvalidRequest.WithDescription("code_challenge is required with code_challenge_method"), true
	case !ValidChallenge(r.CodeChallenge):
		return c, nil, ErrInvalidRequest.WithDescription("code_challenge must be 43 base64url characters"), true
	case r.CodeChallengeMethod != PKCEMethodS256:
		return c, nil, ErrInvalidRequest.WithDescription("code_challenge_method must be S256"), true
	}
	if _, rerr := s.checkResources(r.Resources); rerr != nil {
		return c, nil, rerr, true
	}
	return c, scopes, nil, false
}

// ScopeDescription returns the declared description of a scope, or "" when
// the scope is undeclared or has none.
func (s *AuthServer) ScopeDescription(name string) string {
	for _, sc := range s.Scopes {
		if sc.Name == name {
			return sc.Description
		}
	}
	return ""
}

// DeriveKey returns a 32-byte key for purpose, derived with HMAC-SHA256
// from the store's server key, so that every instance sharing the store
// derives the same key, and it survives restarts. Different purposes get
// independent keys.
func (s *AuthServer) DeriveKey(ctx context.Context, purpose string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	key, err := s.serverKey(ctx)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("tokengate derived key\x00" + purpose))
	return m.Sum(nil), nil
}
