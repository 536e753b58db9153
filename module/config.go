package module

import "github.com/caddyserver/caddy/v2"

// DatabaseConfig says where tokengate keeps its state.
type DatabaseConfig struct {
	// Driver is "sqlite" (the default) or "postgres".
	Driver string `json:"driver,omitempty"`
	// Path is the SQLite file. Default: tokengate/tokengate.db in Caddy's
	// data directory. Placeholders such as {env.X} are expanded.
	Path string `json:"path,omitempty"`
	// DSN is the PostgreSQL connection string (URL or key=value form),
	// required for the postgres driver. Placeholders such as {env.X} and
	// {file.X} are expanded.
	DSN string `json:"dsn,omitempty"`
}

// UsersConfig says how end users are identified: by a JWT from an external
// identity provider, signed either with a shared HS256 secret or with a key
// published at a JWKS URL, or both.
type UsersConfig struct {
	// JWTSecret is the HS256 shared secret. Placeholders are expanded.
	JWTSecret string `json:"jwt_secret,omitempty"`
	// JWKSURL is where the provider publishes its public keys (RS256,
	// ES256, EdDSA). Keys are cached and fetched again when a JWT names an
	// unknown key id, at most once a minute.
	JWKSURL string `json:"jwks_url,omitempty"`
	// Issuer, when set, must equal the JWT's iss claim.
	Issuer string `json:"issuer,omitempty"`
	// Audience, when set, must be among the JWT's aud claim.
	Audience string `json:"audience,omitempty"`
	// UserClaim is the claim that holds the user id. Default: sub.
	UserClaim string `json:"user_claim,omitempty"`
	// Cookie is the cookie the browser flow takes the JWT from, when there
	// is no Authorization header.
	Cookie string `json:"cookie,omitempty"`
	// LoginURL is where the browser flow sends a user with no session,
	// with return_to set to the authorize URL.
	LoginURL string `json:"login_url,omitempty"`
}

// ScopeConfig declares a scope. Only declared scopes may be granted or
// required.
type ScopeConfig struct {
	// Name is the scope as it appears in requests and tokens.
	Name string `json:"name"`
	// Description is shown on the consent page.
	Description string `json:"description,omitempty"`
}

// ClientConfig registers an OAuth client.
type ClientConfig struct {
	// ID is the client_id.
	ID string `json:"id"`
	// Name is shown on the consent page. Default: the ID.
	Name string `json:"name,omitempty"`
	// Secret makes the client confidential. Placeholders are expanded.
	Secret string `json:"secret,omitempty"`
	// SecretHash is the alternative to Secret: "sha256:<hex>" of the secret.
	SecretHash string `json:"secret_hash,omitempty"`
	// RedirectURIs are compared byte for byte, except that loopback http
	// URIs may differ in port (RFC 8252 7.3). At least one is required
	// when GrantTypes has authorization_code.
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// Scopes the client may ask for. Default: every declared scope.
	Scopes []string `json:"scopes,omitempty"`
	// PKCE is "required" (the default) or "optional"; optional is allowed
	// for confidential clients only.
	PKCE string `json:"pkce,omitempty"`
	// GrantTypes the client may use: authorization_code, refresh_token,
	// client_credentials (confidential clients only) and
	// urn:ietf:params:oauth:grant-type:device_code. Default:
	// authorization_code and refresh_token.
	GrantTypes []string `json:"grant_types,omitempty"`
	// DPoPBoundAccessTokens makes the token endpoint refuse the client's
	// requests without a DPoP proof (RFC 9449 5.2), so that all its access
	// tokens are bound to its key. Default: false, a proof is optional
	// and binds the tokens of the request that carries it.
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
}

// CacheConfig bounds the in-memory cache of validated tokens.
type CacheConfig struct {
	// MaxEntries is the most tokens kept. Default: 1000000.
	MaxEntries int64 `json:"max_entries,omitempty"`
	// TTL is how long a store answer is trusted, and how long a cached
	// token keeps working while the store cannot be reached. Default: 5m.
	TTL caddy.Duration `json:"ttl,omitempty"`
}

// UpstreamJWT replaces the Authorization header sent upstream with a fresh
// HS256 JWT, for backends that already verify their identity provider's
// JWTs.
type UpstreamJWT struct {
	// Secret signs the JWT. Placeholders are expanded. Required.
	Secret string `json:"secret,omitempty"`
	// TTL is the JWT's lifetime. Default: 60s.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// Audience, when set, becomes the aud claim.
	Audience string `json:"audience,omitempty"`
	// Claims are extra string claims, such as role=authenticated.
	Claims map[string]string `json:"claims,omitempty"`
}

// OpenIDConfig turns tokengate into an OpenID Connect provider
// (docs/oidc.md): the openid, profile, email and offline_access scopes,
// ID tokens, the userinfo endpoint and the discovery document.
type OpenIDConfig struct {
	// SigningAlg is the JWS algorithm of ID tokens and JWT access tokens:
	// "RS256" (the default, an RSA 2048 key) or "ES256" (a P-256 key).
	SigningAlg string `json:"signing_alg,omitempty"`
	// IDTokenTTL is an ID token's lifetime. Default: 1h.
	IDTokenTTL caddy.Duration `json:"id_token_ttl,omitempty"`
	// KeyRotation is how long one signing key signs before the next takes
	// over; each key is published one period before it signs and stays
	// published until the last token it signed has expired. At least 1m.
	// Default: 720h.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`
	// Claims are the claims of the user's IdP JWT that are copied, at
	// authorization, into ID tokens and userinfo answers, each only with
	// the scope that OpenID Connect Core 5.4 gives it: email and
	// email_verified with email, the others with profile. Only claims of
	// those two scopes may be named. Default: all of them.
	Claims []string `json:"claims,omitempty"`
}

// RegistrationConfig says who may register a client dynamically (RFC
// 7591 3): anyone, with Open, or whoever presents InitialAccessToken as a
// bearer token (RFC 7591 1.2). Exactly one of the two is set.
type RegistrationConfig struct {
	// Open lets anyone register a client.
	Open bool `json:"open,omitempty"`
	// InitialAccessToken is the bearer token a registration request must
	// carry. Placeholders such as {env.X} and {file.X} are expanded.
	InitialAccessToken string `json:"initial_access_token,omitempty"`
}
