package oauth

import (
	"context"
	"errors"
	"time"
)

// Grant errors returned by a GrantStore. ErrNotFound means the code or
// token is unknown, expired, revoked or not the caller's.
var (
	// ErrCodeReused: a consumed authorization code was presented again
	// (RFC 6749 4.1.2). The store has revoked the code's family.
	ErrCodeReused = errors.New("authorization code reused")
	// ErrRefreshReused: a rotated refresh token was presented again after
	// the grace period (RFC 9700 4.14.2). The store has revoked its family.
	ErrRefreshReused = errors.New("refresh token reused")
)

// ReuseError reports a detected reuse. It matches ErrCodeReused or
// ErrRefreshReused with errors.Is, and carries what the caller must log
// and forget.
type ReuseError struct {
	Reused   error // ErrCodeReused or ErrRefreshReused
	FamilyID string
	ClientID string
	UserID   string
	// Revoked are the hashes of the family's access tokens, for
	// Validator.Forget.
	Revoked []TokenHash
}

func (e *ReuseError) Error() string { return e.Reused.Error() + " (family " + e.FamilyID + ")" }

// Unwrap lets errors.Is match Reused.
func (e *ReuseError) Unwrap() error { return e.Reused }

// Code is a stored authorization code (RFC 6749 4.1.2), kept by hash.
type Code struct {
	Hash        TokenHash
	ClientID    string
	UserID      string
	RedirectURI string
	Scopes      []string
	// Challenge is the S256 code_challenge; empty when PKCE was not used.
	Challenge string
	// FamilyID names the refresh family the code's tokens will belong to.
	FamilyID  string
	ExpiresAt time.Time
	UsedAt    time.Time // zero until exchanged

	// ClientGeneration is the Generation of the stored client the code was
	// issued to, empty for a client of the config. The family inherits
	// it.
	ClientGeneration string

	// GrantContext is what the family inherits besides the scopes.
	GrantContext
}

// GrantContext is what an authorization carries beyond its scopes, kept
// with its code and then with its refresh family.
type GrantContext struct {
	// Nonce is the authorization request's nonce (OpenID Connect Core
	// 3.1.2.1); empty for none. A family does not keep it.
	Nonce string
	// AuthTime is when the user authorized; zero when unknown.
	AuthTime time.Time
	// Claims is the JSON object of the user's claims read from the IdP's
	// JWT at authorization; nil for none.
	Claims []byte
	// Resources are the resource indicators asked for (RFC 8707).
	Resources []string
	// DPoPKey is the RFC 7638 thumbprint of the DPoP key the family's
	// refresh tokens are bound to (RFC 9449 5); empty for none. A code
	// does not keep it: the family gets the pair's FamilyDPoPKey.
	DPoPKey string
}

// IssuedToken is the stored side of one issued token.
type IssuedToken struct {
	Hash      TokenHash
	ExpiresAt time.Time
}

// IssuedPair is an access token and a refresh token issued together.
type IssuedPair struct {
	Access   IssuedToken
	Refresh  IssuedToken
	IssuedAt time.Time
	// Scopes of the pair; nil on rotation means those of the old token.
	Scopes []string
	// MaxFamilyAge, when positive, makes a rotated refresh token expire no
	// later than its family's creation plus this (refresh_max_age).
	MaxFamilyAge time.Duration
	// Audience is the access token's resource (RFC 8707); empty for none.
	Audience string
	// AccessDPoPKey is the thumbprint of the DPoP key the access token is
	// bound to (RFC 9449 6); empty for an unbound token.
	AccessDPoPKey string
	// FamilyDPoPKey, at a code exchange, binds the new family's refresh
	// tokens to a DPoP key; rotation keeps the family's binding.
	FamilyDPoPKey string
}

// RefreshExpiry returns when the pair's refresh token expires in a family
// created at familyCreated.
func (p IssuedPair) RefreshExpiry(familyCreated time.Time) time.Time {
	if p.MaxFamilyAge > 0 {
		if limit := familyCreated.Add(p.MaxFamilyAge); limit.Before(p.Refresh.ExpiresAt) {
			return limit
		}
	}
	return p.Refresh.ExpiresAt
}

// RefreshGrant is what a refresh token stands for, shown to the check of
// RotateRefresh before anything is written.
type RefreshGrant struct {
	FamilyID        string
	ClientID        string
	UserID          string
	Scopes          []string
	FamilyCreatedAt time.Time
	// ClientGeneration is that of the code the family began with.
	ClientGeneration string
	// GrantContext is the family's (Nonce is always empty).
	GrantContext
}

// Rotation is the outcome of a successful RotateRefresh.
type Rotation struct {
	// Replay is true when the token had been rotated within the grace
	// period: nothing was written, and the caller returns the pair it
	// derives again from the presented token.
	Replay   bool
	FamilyID string
	UserID   string
	// Scopes and AccessExpiresAt describe the pair as stored.
	Scopes          []string
	AccessExpiresAt time.Time
	// AccessDPoPKey is the key the stored access token is bound to; on a
	// replay, that of the first rotation.
	AccessDPoPKey string
}

// TokenInfo is a stored access or refresh token, for introspection.
type TokenInfo struct {
	Kind      Kind
	ClientID  string
	UserID    string
	Scopes    []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Audience and DPoPKey of an access token; empty for none.
	Audience string
	DPoPKey  string
}

// GrantStore keeps authorization codes, OAuth tokens and their families,
// consents and the server key. Single use and rotation are decided inside
// the store's transactions, never by in-process locks (docs/operations.md).
type GrantStore interface {
	// SaveCode stores a freshly issued code.
	SaveCode(ctx context.Context, c Code) error
	//
	// A code or refresh token issued to a stored client (ClientGeneration
	// not empty) is honoured by ExchangeCode and RotateRefresh only while
	// the store holds a client of that id and generation: otherwise it is
	// ErrNotFound, whatever an instance's view of the clients says.
	// ExchangeCode consumes the code with hash h, in one transaction: an
	// unknown or expired code is ErrNotFound; a used one revokes its family
	// and returns a *ReuseError; otherwise check runs, and when it fails
	// the code is left unconsumed and its error returned; when it passes
	// the code is marked used and pair is stored as the family's first.
	// Of N concurrent calls at most one succeeds.
	ExchangeCode(ctx context.Context, h TokenHash, now time.Time, check func(Code) error, pair IssuedPair) (Code, error)
	// RotateRefresh replaces the refresh token with hash old, issued to
	// clientID, by pair, in one transaction. An unknown, expired or revoked
	// token, or one of another client, is ErrNotFound. With grace > 0, a
	// token rotated no more than grace ago returns Rotation{Replay: true}
	// without writing; any other rotated token revokes its family and
	// returns a *ReuseError.
	// check runs on live tokens before anything is written; its error is
	// returned as is, and the token is left unconsumed.
	RotateRefresh(ctx context.Context, old TokenHash, clientID string, now time.Time, grace time.Duration, check func(RefreshGrant) error, pair IssuedPair) (Rotation, error)
	// RevokeToken revokes the access token with hash h, or the whole
	// family of the refresh token with hash h, when it belongs to
	// clientID; otherwise it does nothing. It returns the access-token
	// hashes revoked (RFC 7009 2.1).
	RevokeToken(ctx context.Context, h TokenHash, clientID string, now time.Time) ([]TokenHash, error)
	// IntrospectToken returns the live (unrevoked) access or refresh token
	// with hash h, expired or not, or ErrNotFound.
	IntrospectToken(ctx context.Context, h TokenHash) (TokenInfo, error)
	// GrantedScopes returns the scopes userID has consented to for clientID.
	GrantedScopes(ctx context.Context, userID, clientID string) ([]string, error)
	// RecordConsent adds scopes to those userID consented to for clientID.
	RecordConsent(ctx context.Context, userID, clientID string, scopes []string) error
	// ServerKey returns the installation's 32-byte secret, created on first
	// use; every instance sharing the store gets the same one.
	ServerKey(ctx context.Context) ([]byte, error)
	// PurgeExpired deletes codes (device codes included) and tokens
	// expired for more than a day before now, and returns how many rows
	// went.
	PurgeExpired(ctx context.Context, now time.Time) (int, error)
}

// purgeDelay is how long expired codes and tokens are kept: long enough
// that a late reuse of one is still recognized as reuse.
const purgeDelay = 24 * time.Hour

// PurgeBefore returns the expiry before which PurgeExpired deletes at now.
func PurgeBefore(now time.Time) time.Time { return now.Add(-purgeDelay) }
