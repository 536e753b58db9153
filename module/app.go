package module

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
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
	// PersonalTokenScopes are granted to personal API tokens when they are
	// issued. Default: every declared scope.
	PersonalTokenScopes []string `json:"personal_token_scopes,omitempty"`
	// Cache bounds the validation cache.
	Cache *CacheConfig `json:"cache,omitempty"`

	state    *sharedState
	stateKey string
	users    *oauth.UserVerifier
	auth     *oauth.AuthServer
	personal *oauth.PersonalTokens
	metrics  *gatewayMetrics
	audit    auditLog
	logger   *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tokengate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets defaults, expands placeholders and opens (or, across a
// reload, reuses) the store and the validation cache.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.audit = auditLog{logger: a.logger.Named(auditLoggerName)}
	a.metrics = tokengateMetrics()
	if err := a.metrics.register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("tokengate: registering metrics: %w", err)
	}
	repl := caddy.NewReplacer()

	if a.CodeTTL == 0 {
		a.CodeTTL = caddy.Duration(10 * time.Minute)
	}
	if a.AccessTokenTTL == 0 {
		a.AccessTokenTTL = caddy.Duration(time.Hour)
	}
	if a.RefreshTokenTTL == 0 {
		a.RefreshTokenTTL = caddy.Duration(720 * time.Hour)
	}
	if len(a.PersonalTokenScopes) == 0 {
		for _, s := range a.Scopes {
			a.PersonalTokenScopes = append(a.PersonalTokenScopes, s.Name)
		}
	}

	db, err := a.resolveDatabase(repl)
	if err != nil {
		return err
	}
	cache := oauth.CacheConfig{}
	if a.Cache != nil {
		cache.MaxEntries = a.Cache.MaxEntries
		cache.TTL = time.Duration(a.Cache.TTL)
	}
	a.stateKey = db.poolKey(cache)
	state, err := loadSharedState(ctx, a.stateKey, db, cache, a.metrics)
	if err != nil {
		a.stateKey = ""
		return fmt.Errorf("tokengate: opening %s store: %w", db.driver, err)
	}
	a.state = state

	if a.Users != nil {
		a.users, err = newUserVerifier(a.Users, repl)
		if err != nil {
			return fmt.Errorf("tokengate: %w", err)
		}
	}
	a.auth, err = a.newAuthServer(repl)
	if err != nil {
		return fmt.Errorf("tokengate: %w", err)
	}
	a.personal = &oauth.PersonalTokens{
		Store:     state.store,
		Validator: state.validator,
		Scopes:    a.PersonalTokenScopes,
		Metrics:   a.metrics,
		Audit:     a.audit,
	}
	return nil
}

// resolveDatabase expands placeholders and fills in the default SQLite file.
func (a *App) resolveDatabase(repl *caddy.Replacer) (databaseTarget, error) {
	cfg := DatabaseConfig{}
	if a.Database != nil {
		cfg = *a.Database
	}
	switch cfg.Driver {
	case "", "sqlite":
		path, err := repl.ReplaceOrErr(cfg.Path, true, true)
		if err != nil {
			return databaseTarget{}, fmt.Errorf("tokengate: database sqlite path: %w", err)
		}
		if path == "" {
			path = filepath.Join(caddy.AppDataDir(), "tokengate", "tokengate.db")
		}
		return databaseTarget{driver: "sqlite", location: path}, nil
	case "postgres":
		dsn, err := repl.ReplaceOrErr(cfg.DSN, true, true)
		if err != nil || dsn == "" {
			return databaseTarget{}, fmt.Errorf("tokengate: database postgres DSN is empty after expanding placeholders")
		}
		return databaseTarget{driver: "postgres", location: dsn}, nil
	}
	return databaseTarget{}, fmt.Errorf("tokengate: unknown database driver %q", cfg.Driver)
}

// Start is part of caddy.App; the store was opened in Provision.
func (a *App) Start() error { return nil }

// Stop is part of caddy.App; the store is released in Cleanup, after the
// next config (if any) has taken its reference.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's reference to the shared store and cache.
func (a *App) Cleanup() error {
	if a.stateKey == "" {
		return nil
	}
	_, err := sharedStates.Delete(a.stateKey)
	a.stateKey = ""
	return err
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
