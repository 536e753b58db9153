package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"
)

var (
	// ErrInvalidUserJWT is wrapped by every error for a user JWT that is
	// refused. The full message says why in words safe to show the client; it
	// never contains the token or a claim value.
	ErrInvalidUserJWT = errors.New("invalid user JWT")

	// ErrUserKeysUnavailable means the identity provider's JWKS could not be
	// fetched and no cached key verifies the token: a temporary server-side
	// condition, not a verdict on the token.
	ErrUserKeysUnavailable = errors.New("user JWT keys unavailable")
)

const (
	defaultUserClaim  = "sub"
	defaultUserLeeway = 30 * time.Second

	// minHS256SecretLen is the smallest HS256 secret accepted: RFC 7518 3.2
	// requires a key at least as long as the hash output. It also refuses an
	// empty secret from an unset environment variable, with which anyone
	// could sign.
	minHS256SecretLen = 32

	// maxUserJWTLen bounds the token before any decoding; identity provider
	// JWTs are a few kilobytes at most.
	maxUserJWTLen = 16 << 10
)

// UserVerifierConfig configures a UserVerifier. At least one of HS256Secret
// and JWKSURL must be set; with both, a token may use either.
type UserVerifierConfig struct {
	// HS256Secret is the identity provider's shared secret for HS256 tokens.
	// Nil: HS256 is not accepted. It must be at least 32 bytes long.
	HS256Secret []byte

	// JWKSURL is where the identity provider publishes its public keys
	// (RS256, ES256, EdDSA). Empty: asymmetric tokens are not accepted. It
	// must be https, except on a loopback host.
	JWKSURL string

	// Issuer, when set, must equal the token's iss claim.
	Issuer string

	// Audience, when set, must be one of the token's aud values.
	Audience string

	// UserClaim names the claim holding the user id; default "sub". It must
	// be a non-empty string.
	UserClaim string

	// Leeway is the clock skew allowed on exp, nbf and iat; default 30s.
	Leeway time.Duration

	// HTTPClient fetches the JWKS; default a client with a 10 s timeout.
	HTTPClient *http.Client

	// Now returns the current time; default time.Now. Tests set it.
	Now func() time.Time
}

// UserVerifier verifies end-user JWTs issued by an external identity
// provider. It is safe for concurrent use.
type UserVerifier struct {
	secret    []byte
	jwks      *jwksCache // nil without a JWKS URL
	userClaim string
	parser    *jwt.Parser
}

// NewUserVerifier checks cfg and returns a verifier. Nothing is fetched until
// the first token needs a JWKS key.
func NewUserVerifier(cfg UserVerifierConfig) (*UserVerifier, error) {
	if cfg.HS256Secret == nil && cfg.JWKSURL == "" {
		return nil, errors.New("users: a JWT secret or a JWKS URL is required")
	}
	if cfg.HS256Secret != nil && len(cfg.HS256Secret) < minHS256SecretLen {
		return nil, fmt.Errorf("users: the JWT secret must be at least %d bytes", minHS256SecretLen)
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("users: negative leeway")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = defaultUserLeeway
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = defaultUserClaim
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: jwksFetchTimeout}
	}

	v := &UserVerifier{userClaim: cfg.UserClaim}
	// RFC 8725 3.1: the algorithms accepted are fixed by configuration, never
	// chosen by the token. HS256 is accepted only with a shared secret, so a
	// token cannot make a public key serve as an HMAC secret.
	var methods []string
	if cfg.HS256Secret != nil {
		v.secret = append([]byte(nil), cfg.HS256Secret...)
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		if err := checkJWKSURL(cfg.JWKSURL); err != nil {
			return nil, err
		}
		v.jwks = newJWKSCache(cfg.JWKSURL, cfg.HTTPClient, cfg.Now)
		methods = append(methods,
			jwt.SigningMethodRS256.Alg(),
			jwt.SigningMethodES256.Alg(),
			jwt.SigningMethodEdDSA.Alg())
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(), // exp is optional in RFC 7519 4.1.4; without it a token never expires
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	// RFC 8725 3.8 and 3.9: a token issued for another issuer or audience
	// must not be accepted here.
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// checkJWKSURL refuses a key set URL that a network attacker could answer
// in the identity provider's place.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("users: jwks_url must be an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return errors.New("users: jwks_url must use https unless its host is loopback")
}

// VerifiedUser is the end user of a verified IdP JWT.
type VerifiedUser struct {
	// ID is the user id, from the user claim.
	ID string
	// Claims are every claim of the JWT, as JSON decodes them; the
	// caller picks what it may keep (PickClaims).
	Claims map[string]any
}

// Verify checks token's signature (RFC 7515) and claims (RFC 7519 4.1) and
// returns the user id it carries. A refused token gets an error wrapping
// ErrInvalidUserJWT; ErrUserKeysUnavailable means the token could not be
// judged because the identity provider's keys could not be fetched.
func (v *UserVerifier) Verify(ctx context.Context, token string) (string, error) {
	u, err := v.VerifyUser(ctx, token)
	return u.ID, err
}

// VerifyUser is Verify returning the verified claims too.
func (v *UserVerifier) VerifyUser(ctx context.Context, token string) (VerifiedUser, error) {
	if !isCompactJWS(token) {
		return VerifiedUser{}, fmt.Errorf("%w: malformed token", ErrInvalidUserJWT)
	}
	var keyErr error
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		k, err := v.key(ctx, t)
		keyErr = err
		return k, err
	})
	if err != nil {
		if errors.Is(keyErr, ErrUserKeysUnavailable) {
			return VerifiedUser{}, keyErr
		}
		return VerifiedUser{}, fmt.Errorf("%w: %s", ErrInvalidUserJWT, refusalReason(err, keyErr))
	}
	user, ok := claims[v.userClaim].(string)
	if !ok || user == "" {
		return VerifiedUser{}, fmt.Errorf("%w: user claim missing or not a string", ErrInvalidUserJWT)
	}
	// The id travels on in request headers and logs, where control
	// characters could forge lines.
	if strings.ContainsFunc(user, unicode.IsControl) {
		return VerifiedUser{}, fmt.Errorf("%w: user claim contains control characters", ErrInvalidUserJWT)
	}
	return VerifiedUser{ID: user, Claims: claims}, nil
}

// isCompactJWS reports whether token has the alphabet and size of a JWS in
// compact serialization (RFC 7515 7.1): base64url segments and dots. The
// base64 decoder skips line breaks, so without this check a token with a
// trailing newline would verify.
func isCompactJWS(token string) bool {
	if token == "" || len(token) > maxUserJWTLen {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// key picks the verification key for t. The parser has already refused any
// alg not configured, so only the algorithm families below can arrive.
func (v *UserVerifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		if v.secret == nil {
			return nil, errKeyAlg
		}
		return v.secret, nil
	}
	if v.jwks == nil {
		return nil, errKeyAlg
	}
	// RFC 7515 4.1.4: kid is optional and must be a string when present.
	kid := ""
	if raw, ok := t.Header["kid"]; ok {
		s, ok := raw.(string)
		if !ok {
			return nil, errUnknownKey
		}
		kid = s
	}
	return v.jwks.key(ctx, kid, alg)
}

// refusalReason turns a parse error into a fixed phrase, because the library's
// messages may quote parts of the decoded token.
func refusalReason(err, keyErr error) string {
	if keyErr != nil {
		return keyErr.Error() // one of the fixed lookup errors
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature or algorithm not accepted"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "required claim missing"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	default:
		return "token not accepted"
	}
}
