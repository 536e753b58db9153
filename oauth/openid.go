package oauth

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"
)

// DefaultIDTokenTTL is an ID token's lifetime when OpenIDProvider has none.
const DefaultIDTokenTTL = time.Hour

// OpenIDProvider makes the token endpoint an OpenID Provider's: an ID
// token beside the tokens of a grant with the openid scope (OpenID Connect
// Core 3.1.3.3), at the code exchange and at every refresh (12.2), and a
// refresh token only for a grant with offline_access (11).
type OpenIDProvider struct {
	// Ring signs the ID tokens.
	Ring *KeyRing
	// Issuer is their iss, the authorization server's issuer.
	Issuer string
	// IDTokenTTL is their lifetime; zero means DefaultIDTokenTTL.
	IDTokenTTL time.Duration
}

// idTokenGrant is what an ID token says about the authorization it comes
// from.
type idTokenGrant struct {
	userID, clientID string
	scopes           []string
	// The code's context; a family's at a refresh, which keeps no nonce.
	GrantContext
}

// idTokenClaims returns the claims of an ID token for g, issued at now
// beside accessToken (OpenID Connect Core 2, 3.1.3.6, 5.4). The user's
// claims are those the scopes release; they cannot override the ones
// the provider sets, which come after.
func (p *OpenIDProvider) idTokenClaims(g idTokenGrant, accessToken string, now time.Time) map[string]any {
	c := map[string]any{}
	for name, v := range ReleasedClaims(g.Claims, g.scopes) {
		c[name] = v
	}
	c["iss"] = p.Issuer
	c["sub"] = g.userID
	c["aud"] = g.clientID
	// The party the token was issued to (2): always the client, also at
	// a refresh, as 12.2 asks of azp.
	c["azp"] = g.clientID
	c["iat"] = now.Unix()
	c["exp"] = now.Add(orDefault(p.IDTokenTTL, DefaultIDTokenTTL)).Unix()
	if !g.AuthTime.IsZero() {
		c["auth_time"] = g.AuthTime.Unix()
	}
	if g.Nonce != "" {
		c["nonce"] = g.Nonce
	}
	c["at_hash"] = AtHash(accessToken)
	return c
}

// openIDReady makes sure, before a grant is used, that an ID token can be
// signed once it is: a key ring without a key fails the request while
// the code or refresh token is still unconsumed.
func (s *AuthServer) openIDReady(ctx context.Context) *Error {
	if s.OpenID == nil {
		return nil
	}
	if s.OpenID.Ring == nil {
		s.logger().Error("no key ring for ID tokens")
		return ErrTemporarilyUnavailable
	}
	if _, err := s.OpenID.Ring.Current(ctx); err != nil {
		s.logger().Error("no signing key for ID tokens", zap.Error(err))
		return ErrTemporarilyUnavailable
	}
	return nil
}

// openIDResponse completes a token response for an OpenID Provider: no
// refresh token without offline_access (OpenID Connect Core 11; the one
// stored is never shown, so nobody can use it), and an ID token with
// openid.
func (s *AuthServer) openIDResponse(ctx context.Context, resp TokenResponse, g idTokenGrant, now time.Time) (TokenResponse, *Error) {
	if s.OpenID == nil {
		return resp, nil
	}
	if !slices.Contains(g.scopes, ScopeOfflineAccess) {
		resp.RefreshToken = ""
	}
	if !slices.Contains(g.scopes, ScopeOpenID) {
		return resp, nil
	}
	tok, err := SignIDToken(ctx, s.OpenID.Ring, s.OpenID.idTokenClaims(g, resp.AccessToken, now))
	if err != nil {
		s.logger().Error("signing an ID token failed", zap.String("client_id", g.clientID), zap.Error(err))
		return TokenResponse{}, ErrTemporarilyUnavailable
	}
	resp.IDToken = tok
	return resp, nil
}
