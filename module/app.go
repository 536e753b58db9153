package module

import (
	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the tokengate app: the configuration shared by the guard and the
// endpoints handlers (clients, scopes, users, lifetimes) and the open store
// and validation cache. It is configured by the tokengate global option.
type App struct {
	// Issuer is the authorization server's identifier (RFC 8414), used in
	// metadata and in the iss parameter of authorization responses. It must
	// be https unless its host is loopback. Required.
	Issuer string `json:"issuer,omitempty"`
	// Database says where state is kept. Default: SQLite in Caddy's data
	// directory.
	Database *DatabaseConfig `json:"database,omitempty"`
	// Users says how end users are identified.
	Users *UsersConfig `json:"users,omitempty"`
	// Scopes are every scope that may be granted or required.
	Scopes []ScopeConfig `json:"scopes,omitempty"`
	// Clients are the OAuth clients.
	Clients []ClientConfig `json:"clients,omitempty"`
	// CodeTTL is an authorization code's lifetime. Default: 10m.
	CodeTTL caddy.Duration `json:"code_ttl,omitempty"`
	// AccessTokenTTL is an access token's lifetime. Default: 1h.
	AccessTokenTTL caddy.Duration `json:"access_token_ttl,omitempty"`
	// RefreshTokenTTL is each refresh token's lifetime; every rotation
	// starts a new one. Default: 720h.
	RefreshTokenTTL caddy.Duration `json:"refresh_token_ttl,omitempty"`
	// RefreshMaxAge is the absolute limit of a refresh-token family. 0 (the
	// default) means none.
	RefreshMaxAge caddy.Duration `json:"refresh_max_age,omitempty"`
	// RefreshGrace is how long after a rotation the rotated refresh token
	// still returns the same new pair instead of counting as reuse.
	// Default: 0s.
	RefreshGrace caddy.Duration `json:"refresh_grace,omitempty"`
	// PersonalTokenScopes are granted to personal API tokens. Default: every
	// declared scope.
	PersonalTokenScopes []string `json:"personal_token_scopes,omitempty"`
	// Cache bounds the validation cache.
	Cache *CacheConfig `json:"cache,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tokengate",
		New: func() caddy.Module { return new(App) },
	}
}
