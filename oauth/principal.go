package oauth

import (
	"strings"
	"time"
)

// Principal is who a valid bearer token speaks for and what it may do.
type Principal struct {
	// UserID is the end user the token was issued to; empty for a client
	// token (client_credentials, RFC 6749 4.4), which stands for the
	// client itself.
	UserID string
	// ClientID is the OAuth client the token was issued to; empty for a
	// personal token.
	ClientID string
	// Scopes are the granted scopes, in the order they were granted.
	Scopes []string
	// Kind is KindAccess or KindPersonal.
	Kind Kind
	// ExpiresAt is when the token stops working; zero for never.
	ExpiresAt time.Time
	// Audience is the resource an access token was issued for (RFC 8707);
	// empty for none.
	Audience string
	// DPoPKey is the thumbprint of the DPoP key an access token is bound
	// to (RFC 9449 6); empty for an unbound token.
	DPoPKey string

	// scopeText caches ScopeString for principals held in the cache, which
	// are read on every request; set before the principal is shared.
	scopeText string
}

// The token types the guard names in X-Authenticated-Token-Type and
// {http.auth.user.token_type}.
const (
	TokenTypeOAuth    = "oauth"    // an access token issued for a user
	TokenTypePersonal = "personal" // a personal API token
	TokenTypeClient   = "client"   // an access token a client holds for itself
)

// TokenType says what kind of token the principal comes from: one of the
// TokenType constants. An access token with no user is a client token.
func (p *Principal) TokenType() string {
	switch {
	case p.Kind == KindAccess && p.UserID == "":
		return TokenTypeClient
	case p.Kind == KindAccess:
		return TokenTypeOAuth
	case p.Kind == KindPersonal:
		return TokenTypePersonal
	}
	return p.Kind.String()
}

// Subject is whom the token speaks for, as a JWT's sub or an
// introspection's names it: the user, or for a client token the client.
func (p *Principal) Subject() string {
	if p.UserID == "" && p.Kind == KindAccess {
		return p.ClientID
	}
	return p.UserID
}

// HasScope reports whether the principal was granted scope s.
func (p *Principal) HasScope(s string) bool {
	for _, have := range p.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// FirstMissing returns the first scope of required that p lacks, in the
// order given (the guard's 403 names the first missing one in
// required_scope).
func (p *Principal) FirstMissing(required []string) (string, bool) {
	for _, s := range required {
		if !p.HasScope(s) {
			return s, true
		}
	}
	return "", false
}

// ScopeString returns the scopes space-separated, as OAuth writes them.
func (p *Principal) ScopeString() string {
	if p.scopeText != "" || len(p.Scopes) == 0 {
		return p.scopeText
	}
	return strings.Join(p.Scopes, " ")
}

// expired reports whether the token has run out at now.
func (p *Principal) expired(now time.Time) bool {
	return !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt)
}
