package module

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// openIDScopes are the scopes OpenID Connect defines (OpenID Connect Core
// 3.1.2.1, 5.4, 11), which exist without scope lines when openid is on,
// with the descriptions the consent page shows unless a scope line gives
// another.
var openIDScopes = []ScopeConfig{
	{Name: oauth.ScopeOpenID, Description: "Confirm who you are (your user id)"},
	{Name: oauth.ScopeProfile, Description: "Your name and profile details"},
	{Name: oauth.ScopeEmail, Description: "Your email address"},
	{Name: oauth.ScopeOfflineAccess, Description: "Stay connected while you are not using the app"},
}

// isOpenIDScope reports whether name is one of openIDScopes.
func isOpenIDScope(name string) bool {
	for _, s := range openIDScopes {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Defaults of the openid option.
const (
	defaultSigningAlg  = "RS256"
	defaultIDTokenTTL  = time.Hour
	defaultKeyRotation = 720 * time.Hour
	// minKeyRotation keeps a cluster from making keys faster than it can
	// agree on them and relying parties can fetch them.
	minKeyRotation = time.Minute
)

// The access_token_format values.
const (
	accessTokenOpaque = "opaque"
	accessTokenJWT    = "jwt"
)

// allScopes returns every scope that exists: those of the scope lines and,
// with openid on, the OpenID Connect scopes that no scope line
// redescribes.
func (a *App) allScopes() []ScopeConfig {
	if a.OpenID == nil {
		return a.Scopes
	}
	all := slices.Clip(a.Scopes)
	for _, s := range openIDScopes {
		if !slices.ContainsFunc(a.Scopes, func(d ScopeConfig) bool { return d.Name == s.Name }) {
			all = append(all, s)
		}
	}
	return all
}

// scopeNames returns the names of allScopes.
func (a *App) scopeNames() []string {
	all := a.allScopes()
	names := make([]string, 0, len(all))
	for _, s := range all {
		names = append(names, s.Name)
	}
	return names
}

// jwtAccessTokens reports whether access tokens are RFC 9068 JWTs.
func (a *App) jwtAccessTokens() bool { return a.AccessTokenFormat == accessTokenJWT }

// needsSigningKeys reports whether the app signs anything: ID tokens or
// JWT access tokens.
func (a *App) needsSigningKeys() bool { return a.OpenID != nil || a.jwtAccessTokens() }

// signingSettings returns the key ring's algorithm and rotation period,
// and the longest lifetime of a token it signs. Without openid, JWT
// access tokens use the openid option's defaults.
func (a *App) signingSettings() (alg string, rotation, maxTokenTTL time.Duration) {
	alg, rotation = defaultSigningAlg, defaultKeyRotation
	if o := a.OpenID; o != nil {
		if o.SigningAlg != "" {
			alg = o.SigningAlg
		}
		if o.KeyRotation > 0 {
			rotation = time.Duration(o.KeyRotation)
		}
		maxTokenTTL = orDuration(time.Duration(o.IDTokenTTL), defaultIDTokenTTL)
	}
	if a.jwtAccessTokens() {
		maxTokenTTL = max(maxTokenTTL, time.Duration(a.AccessTokenTTL))
	}
	return alg, rotation, maxTokenTTL
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// provisionSigning sets the defaults of the openid option and of JWT
// access tokens and expands access_token_audience.
func (a *App) provisionSigning(repl *caddy.Replacer) error {
	if o := a.OpenID; o != nil {
		if o.SigningAlg == "" {
			o.SigningAlg = defaultSigningAlg
		}
		if o.IDTokenTTL == 0 {
			o.IDTokenTTL = caddy.Duration(defaultIDTokenTTL)
		}
		if o.KeyRotation == 0 {
			o.KeyRotation = caddy.Duration(defaultKeyRotation)
		}
		if len(o.Claims) == 0 {
			o.Claims = oauth.StandardClaimNames()
		}
	}
	if a.AccessTokenFormat == "" {
		a.AccessTokenFormat = accessTokenOpaque
	}
	if a.AccessTokenAudience == "" {
		if a.jwtAccessTokens() {
			a.AccessTokenAudience = a.Issuer
		}
		return nil
	}
	aud, err := expandPlaceholders(repl, "access_token_audience", a.AccessTokenAudience)
	if err != nil {
		return fmt.Errorf("tokengate: %w", err)
	}
	if err := checkAudience(aud); err != nil {
		return err
	}
	a.AccessTokenAudience = aud
	return nil
}

// validateSigning checks the openid option, access_token_format and
// access_token_audience on their own.
func (a *App) validateSigning() error {
	if o := a.OpenID; o != nil {
		switch o.SigningAlg {
		case "", "RS256", "ES256":
		default:
			return fmt.Errorf("tokengate: openid signing_alg must be RS256 or ES256, not %q", o.SigningAlg)
		}
		if o.IDTokenTTL < 0 {
			return fmt.Errorf("tokengate: openid id_token_ttl must be positive")
		}
		if o.KeyRotation != 0 && time.Duration(o.KeyRotation) < minKeyRotation {
			return fmt.Errorf("tokengate: openid key_rotation must be at least %v, got %v", minKeyRotation, time.Duration(o.KeyRotation))
		}
		for i, c := range o.Claims {
			if oauth.ClaimScope(c) == "" {
				return fmt.Errorf("tokengate: openid claims: %q is not a claim of the profile or email scope (OpenID Connect Core 5.4)", c)
			}
			if slices.Contains(o.Claims[:i], c) {
				return fmt.Errorf("tokengate: openid claims: %q is listed twice", c)
			}
		}
	}
	switch a.AccessTokenFormat {
	case "", accessTokenOpaque, accessTokenJWT:
	default:
		return fmt.Errorf("tokengate: access_token_format must be opaque or jwt, not %q", a.AccessTokenFormat)
	}
	if a.AccessTokenAudience != "" {
		if !a.jwtAccessTokens() {
			return fmt.Errorf("tokengate: access_token_audience is the aud of JWT access tokens; it needs access_token_format jwt")
		}
		if !hasPlaceholder(a.AccessTokenAudience) {
			if err := checkAudience(a.AccessTokenAudience); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkAudience accepts an absolute URI without fragment, as RFC 9068 3
// asks of the resource an access token is for.
func checkAudience(aud string) error {
	u, err := url.Parse(aud)
	if err != nil || u.Scheme == "" || u.Opaque == "" && u.Host == "" {
		return fmt.Errorf("tokengate: access_token_audience %q is not an absolute URI", aud)
	}
	if strings.Contains(aud, "#") {
		return fmt.Errorf("tokengate: access_token_audience %q must not have a fragment", aud)
	}
	return nil
}
