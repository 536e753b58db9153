package oauth

import (
	"context"
	"errors"

	"go.uber.org/zap"
)

// accessKind is the kind of the token text an access token is stored
// under: the opaque token itself, or the id a JWT wraps.
func (s *AuthServer) accessKind() Kind {
	if s.AccessTokenFormat == AccessTokenJWT {
		return KindJWTID
	}
	return KindAccess
}

// readyToSign makes sure, before anything is consumed, that a JWT access
// token can be signed once the store has answered: the signing key is
// then in memory. Without it, a store outage of the keys would surface
// only after the code or refresh token was spent.
func (s *AuthServer) readyToSign(ctx context.Context) *Error {
	if s.AccessTokenFormat != AccessTokenJWT {
		return nil
	}
	if s.JWTAccess == nil {
		s.logger().Error("access_token_format jwt without signing keys")
		return ErrServerError
	}
	if _, err := s.JWTAccess.ring.Current(ctx); err != nil {
		s.logger().Error("loading the signing key failed", zap.Error(err))
		return ErrTemporarilyUnavailable
	}
	return nil
}

// accessTokenText returns what the client is given for the access token
// stored under the hash of t.id: t.id itself when access tokens are
// opaque, else the JWT signed around it (RFC 9068 2).
func (s *AuthServer) accessTokenText(ctx context.Context, t issuedAccessToken) (string, *Error) {
	if s.AccessTokenFormat != AccessTokenJWT {
		return t.id, nil
	}
	text, err := s.JWTAccess.sign(ctx, t)
	if err != nil {
		// readyToSign loaded the key: only a key rotating in between
		// with the store gone can get here, after the store has
		// recorded the token.
		s.logger().Error("signing a JWT access token failed", zap.String("client_id", t.clientID), zap.Error(err))
		return "", ErrTemporarilyUnavailable
	}
	return text, nil
}

// tokenHash returns the kind of a token presented to revoke or introspect
// and the hash it is stored under. An opaque token names itself; a JWT
// access token of this issuer is verified (signature, typ, iss; expired
// or not) and names the access token of its jti. Anything else is kind 0,
// for the caller to treat as unknown (RFC 7009 2.2, RFC 7662 2.2); the
// error is only for keys that could not be read.
func (s *AuthServer) tokenHash(ctx context.Context, token string) (Kind, TokenHash, *Error) {
	if k, err := ParseToken(token); err == nil {
		return k, HashToken(token), nil
	}
	if s.JWTAccess == nil || !looksLikeJWS(token) {
		return 0, TokenHash{}, nil
	}
	c, err := s.JWTAccess.verify(ctx, token, s.now(), true)
	switch {
	case errors.Is(err, ErrSigningKeysUnavailable):
		s.logger().Error("reading the signing keys failed", zap.Error(err))
		return 0, TokenHash{}, ErrTemporarilyUnavailable
	case err != nil:
		return 0, TokenHash{}, nil
	}
	return KindAccess, HashToken(c.ID), nil
}
