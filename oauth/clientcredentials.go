package oauth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// ClientToken is an access token a client holds for itself, issued by the
// client_credentials grant (RFC 6749 4.4): it has no user.
type ClientToken struct {
	Hash     TokenHash
	ClientID string
	// ClientGeneration is the Generation of the stored client the token
	// is issued to, empty for a client of the config.
	ClientGeneration string
	// FamilyID names the refresh family of its own the token is kept in,
	// so that it is revoked, introspected, purged and removed with its
	// client as every other access token is.
	FamilyID  string
	Scopes    []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// DPoPKey is the thumbprint of the DPoP key the token is bound to
	// (RFC 9449 5); empty for an unbound token.
	DPoPKey string
	// Audience is the resource the token is issued for (RFC 8707); empty
	// for none.
	Audience string
}

// ClientTokenStore keeps the tokens clients hold for themselves.
type ClientTokenStore interface {
	// IssueClientToken stores t as an access token with no user, alone in
	// a refresh family of its own with no user. A token of a stored client
	// (ClientGeneration set) is stored only while the store holds a client
	// of that id and generation, otherwise it is ErrNotFound; a removal of
	// the client that runs at the same time either finds the token, and
	// revokes it, or makes this call fail.
	IssueClientToken(ctx context.Context, t ClientToken) error
	// RevokeClientTokens revokes every token clientID holds for itself, on
	// every instance sharing the store, and returns the hashes of those
	// not yet expired, revoked now or before (ClientStore.DeleteClient
	// revokes them too), for Validator.Forget.
	RevokeClientTokens(ctx context.Context, clientID string, now time.Time) ([]TokenHash, error)
}

// userScopes are the OpenID Connect scopes: they ask for a user's identity
// (OIDC Core 5.4, 11), which a client token has none of, so a
// client_credentials token never carries them.
var userScopes = []string{"openid", "profile", "email", "offline_access"}

// ClientCredentials implements the client credentials grant (RFC 6749
// 4.4.2, 4.4.3) for an authenticated client: an access token that stands
// for the client itself, and never a refresh token. Only a confidential
// client whose grant types allow it may use it (unauthorized_client
// otherwise). With no scope the token gets every declared scope the client
// may ask for, in declared order, the OpenID Connect scopes left out; a
// scope it may not ask for, or one of those, is invalid_scope.
func (s *AuthServer) ClientCredentials(ctx context.Context, client *Client, scope string) (TokenResponse, *Error) {
	return s.ClientCredentialsFor(ctx, client, scope, TokenExtras{})
}

// ClientCredentialsDPoP is ClientCredentialsFor with a DPoP key only.
func (s *AuthServer) ClientCredentialsDPoP(ctx context.Context, client *Client, scope, dpopKey string) (TokenResponse, *Error) {
	return s.ClientCredentialsFor(ctx, client, scope, TokenExtras{DPoPKey: dpopKey})
}

// ClientCredentialsFor is ClientCredentials with the token request's
// extras: the token is issued for x.Resource (RFC 8707 2.2; a resource no
// guard names is invalid_target), and bound to the DPoP key x.DPoPKey
// (RFC 9449 5).
func (s *AuthServer) ClientCredentialsFor(ctx context.Context, client *Client, scope string, x TokenExtras) (TokenResponse, *Error) {
	dpopKey := x.DPoPKey
	if client == nil {
		return TokenResponse{}, ErrInvalidClient
	}
	if !client.Confidential() {
		return TokenResponse{}, ErrUnauthorizedClient.WithDescription("a public client cannot use client_credentials")
	}
	if !client.AllowsGrant(GrantTypeClientCredentials) {
		return TokenResponse{}, ErrUnauthorizedClient.WithDescription("this client may not use client_credentials")
	}
	if oerr := checkDPoPRequired(client, dpopKey); oerr != nil {
		return TokenResponse{}, oerr
	}
	if oerr := s.checkTokenResource(x.Resource); oerr != nil {
		return TokenResponse{}, oerr
	}
	scopes, oerr := s.clientCredentialsScopes(client, scope)
	if oerr != nil {
		return TokenResponse{}, oerr
	}
	if s.ClientTokens == nil {
		s.logger().Error("client_credentials: no store for client tokens", zap.String("client_id", client.ID))
		return TokenResponse{}, ErrServerError
	}
	text, h, err := NewToken(KindAccess)
	if err != nil {
		return TokenResponse{}, ErrServerError
	}
	family, err := newFamilyID()
	if err != nil {
		return TokenResponse{}, ErrServerError
	}
	now := s.now()
	expires := now.Add(orDefault(s.AccessTTL, DefaultAccessTTL))
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	err = s.ClientTokens.IssueClientToken(ctx, ClientToken{
		Hash:             h,
		ClientID:         client.ID,
		ClientGeneration: client.generation,
		FamilyID:         family,
		Scopes:           scopes,
		IssuedAt:         now,
		ExpiresAt:        expires,
		DPoPKey:          dpopKey,
		Audience:         x.Resource,
	})
	switch {
	case errors.Is(err, ErrNotFound):
		// The stored client was removed since this instance read it.
		return TokenResponse{}, ErrInvalidClient
	case err != nil:
		s.logger().Error("issuing a client token failed", zap.String("client_id", client.ID), zap.Error(err))
		return TokenResponse{}, ErrTemporarilyUnavailable
	}
	s.metrics().TokenIssued(GrantClientCredentials)
	s.audit(ctx, AuditEvent{Message: AuditTokenIssued, ClientID: client.ID, Grant: GrantClientCredentials, Scopes: scopes})
	return TokenResponse{
		AccessToken: text,
		TokenType:   tokenType(dpopKey),
		ExpiresIn:   int64(expires.Sub(now).Round(time.Second) / time.Second),
		Scope:       strings.Join(scopes, " "),
	}, nil
}

// clientCredentialsScopes is the scope of a client token (RFC 6749 3.3,
// 4.4.2): those asked for, each declared and allowed for the client, or
// with none asked for, every declared scope the client may ask for; never
// an OpenID Connect scope.
func (s *AuthServer) clientCredentialsScopes(c *Client, scope string) ([]string, *Error) {
	if strings.Trim(scope, " ") == "" {
		var out []string
		for _, sc := range s.Scopes {
			if c.MayRequest(sc.Name) && !slices.Contains(userScopes, sc.Name) {
				out = append(out, sc.Name)
			}
		}
		if len(out) == 0 {
			return nil, ErrInvalidScope.WithDescription("this client may ask for no scope a client token can carry")
		}
		return out, nil
	}
	scopes, oerr := s.requestedScopes(c, scope)
	if oerr != nil {
		return nil, oerr
	}
	for _, sc := range scopes {
		if slices.Contains(userScopes, sc) {
			return nil, ErrInvalidScope.WithDescription("scope " + sc + " is about a user; a client_credentials token has none")
		}
	}
	return scopes, nil
}
