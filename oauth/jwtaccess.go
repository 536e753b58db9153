package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidJWTAccessToken wraps every reason a JWT access token is
// refused; the wrapped text is a fixed phrase, safe to show a client.
var ErrInvalidJWTAccessToken = errors.New("invalid JWT access token")

// jwtLeeway is the clock skew allowed on exp, nbf and iat.
const jwtLeeway = 30 * time.Second

// typAccessToken is the JOSE header typ of an access token (RFC 9068 2.1).
const typAccessToken = "at+jwt"

// Reasons a token's header is refused before its signature is checked.
var (
	errCritHeader = errors.New("token has a crit header")
	errTokenType  = errors.New("token typ is not at+jwt")
	errSigningAlg = errors.New("token alg is not its key's")
)

// AccessTokenClaims are the claims of a JWT access token (RFC 9068 2.2).
type AccessTokenClaims struct {
	jwt.RegisteredClaims // iss, sub, aud, exp, nbf, iat, jti

	ClientID string `json:"client_id"`
	// Scope is the granted scopes, space-separated (RFC 9068 2.2.3).
	Scope string `json:"scope,omitempty"`
	// AuthTime is when the user authorized (RFC 9068 2.2.1).
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	// Confirmation binds the token to a DPoP key (RFC 9449 6.1).
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// Confirmation is the cnf claim of a sender-constrained token.
type Confirmation struct {
	// JKT is the RFC 7638 thumbprint of the DPoP public key.
	JKT string `json:"jkt"`
}

// SignAccessToken signs c with the ring's current key, as an RFC 9068
// access token: header kid and typ at+jwt. c must expire no later than the
// key stays published.
func SignAccessToken(ctx context.Context, ring *KeyRing, c AccessTokenClaims) (string, error) {
	return sign(ctx, ring, c, typAccessToken)
}

// joseHeader is the header of every token tokengate signs.
type joseHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// sign signs the JSON of claims with the ring's current key under a
// header of typ and kid (RFC 7515 7.1).
func sign(ctx context.Context, ring *KeyRing, claims any, typ string) (string, error) {
	k, err := ring.Current(ctx)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	// A token outliving its key would stop verifying while unexpired.
	// exp is read back from the JSON, so that any claims type works.
	var probe struct {
		Exp *jwt.NumericDate `json:"exp"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil || probe.Exp == nil {
		return "", errors.New("sign token: exp missing or not a number")
	}
	if probe.Exp.After(k.retireAt) {
		return "", fmt.Errorf("sign token: exp %v is after its key retires (%v)", probe.Exp.Time, k.retireAt)
	}
	header, err := json.Marshal(joseHeader{Alg: k.alg, Kid: k.kid, Typ: typ})
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := jwt.GetSigningMethod(k.alg).Sign(input, k.private)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// VerifyAccessToken checks a JWT access token as RFC 9068 4 and RFC 8725
// ask, and returns its claims. The key is the ring's key named by kid,
// never one the token points at (jku, x5u, jwk and x5c are ignored), and
// alg must be that key's own. typ must be at+jwt, any crit header is
// refused (none is understood), iss must equal issuer, aud must be or
// contain audience, and exp, nbf and iat get 30 s of leeway at now.
//
// A refused token gets an error wrapping ErrInvalidJWTAccessToken; one
// that could not be judged because the store did not answer gets one
// wrapping ErrSigningKeysUnavailable.
func VerifyAccessToken(ctx context.Context, ring *KeyRing, text, issuer, audience string, now time.Time) (*AccessTokenClaims, error) {
	if issuer == "" || audience == "" {
		return nil, errors.New("verify access token: issuer and audience are required")
	}
	if !isCompactJWS(text) {
		return nil, fmt.Errorf("%w: malformed token", ErrInvalidJWTAccessToken)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{AlgRS256, AlgES256}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(jwtLeeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	var keyErr error
	c := &AccessTokenClaims{}
	_, err := p.ParseWithClaims(text, c, func(t *jwt.Token) (any, error) {
		k, err := accessTokenKey(ctx, ring, t)
		keyErr = err
		return k, err
	})
	if err != nil {
		if errors.Is(keyErr, ErrSigningKeysUnavailable) {
			return nil, keyErr
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidJWTAccessToken, refusalReason(err, keyErr))
	}
	// RFC 9068 2.2: these are required too; the parser checked exp and aud.
	if c.Subject == "" || c.ClientID == "" || c.ID == "" || c.IssuedAt == nil {
		return nil, fmt.Errorf("%w: required claim missing", ErrInvalidJWTAccessToken)
	}
	return c, nil
}

// accessTokenKey checks the header of t and returns the public key that
// must have signed it.
func accessTokenKey(ctx context.Context, ring *KeyRing, t *jwt.Token) (any, error) {
	// RFC 7515 4.1.11: a recipient must refuse a crit it does not
	// understand, and this one understands none.
	if _, ok := t.Header["crit"]; ok {
		return nil, errCritHeader
	}
	// RFC 9068 4: typ at+jwt, the media type application/at+jwt written
	// either way (RFC 7515 4.1.9), in any case.
	typ, _ := t.Header["typ"].(string)
	typ = strings.ToLower(typ)
	if typ != typAccessToken && typ != "application/"+typAccessToken {
		return nil, errTokenType
	}
	kid, _ := t.Header["kid"].(string)
	k, err := ring.ByID(ctx, kid)
	if err != nil {
		return nil, err
	}
	// RFC 8725 3.1: the key decides the algorithm, not the token.
	if t.Method.Alg() != k.alg {
		return nil, errSigningAlg
	}
	return k.public, nil
}
