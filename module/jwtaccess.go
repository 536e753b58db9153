package module

import (
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// newJWTAccess returns the settings JWT access tokens (RFC 9068,
// docs/oidc.md) are read and signed under: the config's key ring, issuer
// and access_token_audience (the issuer by default). Whenever the config
// has signing keys the guard, revoke and introspect read JWT access
// tokens, so that those issued before a switch back to the opaque format
// keep working until they expire; nil when it has none.
func (a *App) newJWTAccess() *oauth.JWTAccessTokens {
	ring := a.keyRing()
	if ring == nil {
		return nil
	}
	aud := a.AccessTokenAudience
	if aud == "" {
		aud = a.Issuer
	}
	j, err := oauth.NewJWTAccessTokens(ring, a.Issuer, aud)
	if err != nil {
		// Provision requires the issuer; nothing else can be missing.
		a.logger.Error("JWT access tokens cannot be read", zap.Error(err))
		return nil
	}
	return j
}

// accessTokenFormat is the form of the access tokens the config issues.
func (a *App) accessTokenFormat() oauth.AccessTokenFormat {
	if a.jwtAccessTokens() {
		return oauth.AccessTokenJWT
	}
	return oauth.AccessTokenOpaque
}
