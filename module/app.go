package module

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
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
	// DeviceCodeTTL is how long a device code and its user code live
	// (RFC 8628 3.2 expires_in). Default: 10m.
	DeviceCodeTTL caddy.Duration `json:"device_code_ttl,omitempty"`
	// PersonalTokenScopes are granted to personal API tokens when they are
	// issued. Default: every declared scope.
	PersonalTokenScopes []string `json:"personal_token_scopes,omitempty"`
	// MaxClientsPerUser is the most clients one user may register through
	// the clients endpoint of tokengate_endpoints. Default: 10.
	MaxClientsPerUser int `json:"max_clients_per_user,omitempty"`
	// Cache bounds the validation cache.
	Cache *CacheConfig `json:"cache,omitempty"`
	// OpenID, when present, makes tokengate an OpenID Connect provider
	// (docs/oidc.md). Default: off.
	OpenID *OpenIDConfig `json:"openid,omitempty"`
	// AccessTokenFormat is "opaque" (the default: tga_ tokens) or "jwt"
	// (RFC 9068 JWT access tokens signed with the keys of the JWKS, with or
	// without OpenID).
	AccessTokenFormat string `json:"access_token_format,omitempty"`
	// AccessTokenAudience is the aud claim of JWT access tokens, an
	// absolute URI; only with access_token_format jwt. Placeholders are
	// expanded. Default: the issuer.
	AccessTokenAudience string `json:"access_token_audience,omitempty"`
	// Registration turns on dynamic client registration (RFC 7591) at the
	// registration path of tokengate_endpoints: open to anyone, or for
	// callers that hold an initial access token. Default: off.
	Registration *RegistrationConfig `json:"registration,omitempty"`

	// Built in Provision from the config alone.
	ctx       caddy.Context
	db        databaseTarget
	cacheCfg  oauth.CacheConfig
	stateKey  string // the pool key of db and cacheCfg
	users     *oauth.UserVerifier
	clients   oauth.ClientRegistry // the static clients
	logger    *zap.Logger
	startWait time.Duration
	// resources are those the guards of this config name (RFC 9728),
	// added as they provision.
	resources *resourceRegistry
	// registrationTokenHash is the SHA-256 of the initial access token
	// registration asks for; nil when registration is open or off.
	registrationTokenHash []byte

	// Built in Start on the open store. Handlers read the fields below only
	// once started is done, which orders Start's writes before their reads;
	// state != nil then says Start succeeded.
	started  *startSignal
	state    *sharedState
	registry *oauth.Clients // static and stored clients
	admin    *oauth.ClientAdmin
	auth     *oauth.AuthServer
	device   *oauth.DeviceGrant
	personal *oauth.PersonalTokens
	// jwtAccess reads and signs JWT access tokens (jwtaccess.go); nil
	// when the config has no signing keys.
	jwtAccess *oauth.JWTAccessTokens
	metrics   *gatewayMetrics
	audit     auditLog
	// held says this config has a reference to the shared state, which
	// Cleanup gives back.
	held bool
	// keys is the signing key ring, shared like the state (keyring.go);
	// nil when the config signs nothing.
	keys    *sharedKeyRing
	keysKey string // its pool key
}

// defaultMaxClientsPerUser is MaxClientsPerUser's default.
const defaultMaxClientsPerUser = 10

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tokengate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets defaults, expands placeholders and builds everything that
// depends on the config alone, so that a bad config fails here, under
// `caddy validate` too. It has no side effects: the store is opened in
// Start, which `caddy validate` does not call.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	a.started = newStartSignal()
	a.startWait = startWait
	a.resources = new(resourceRegistry)
	a.audit = auditLog{logger: a.logger.Named(auditLoggerName)}
	// The registry is the config's own, in memory: registering is no
	// side effect outside this config.
	a.metrics = tokengateMetrics()
	if err := a.metrics.register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("tokengate: registering metrics: %w", err)
	}
	repl := caddy.NewReplacer()

	issuer, err := expandPlaceholders(repl, "issuer", a.Issuer)
	if err != nil {
		return fmt.Errorf("tokengate: %w", err)
	}
	if issuer != a.Issuer {
		if err := checkIssuer(issuer); err != nil {
			return err
		}
		a.Issuer = issuer
	}
	if a.CodeTTL == 0 {
		a.CodeTTL = caddy.Duration(10 * time.Minute)
	}
	if a.AccessTokenTTL == 0 {
		a.AccessTokenTTL = caddy.Duration(time.Hour)
	}
	if a.RefreshTokenTTL == 0 {
		a.RefreshTokenTTL = caddy.Duration(720 * time.Hour)
	}
	if a.DeviceCodeTTL == 0 {
		a.DeviceCodeTTL = caddy.Duration(oauth.DefaultDeviceCodeTTL)
	}
	if a.MaxClientsPerUser == 0 {
		a.MaxClientsPerUser = defaultMaxClientsPerUser
	}
	if len(a.PersonalTokenScopes) == 0 {
		for _, s := range a.Scopes {
			// A personal token stands for no OpenID Connect sign-in.
			if a.OpenID == nil || !isOpenIDScope(s.Name) {
				a.PersonalTokenScopes = append(a.PersonalTokenScopes, s.Name)
			}
		}
	}
	if err := a.provisionSigning(repl); err != nil {
		return err
	}

	if a.registrationTokenHash, err = a.resolveRegistrationToken(repl); err != nil {
		return err
	}
	if a.db, err = a.resolveDatabase(repl); err != nil {
		return err
	}
	if a.Cache != nil {
		a.cacheCfg.MaxEntries = a.Cache.MaxEntries
		a.cacheCfg.TTL = time.Duration(a.Cache.TTL)
	}
	a.stateKey = a.db.poolKey(a.cacheCfg)

	if a.Users != nil {
		a.users, err = newUserVerifier(a.Users, repl)
		if err != nil {
			return fmt.Errorf("tokengate: %w", err)
		}
	}
	a.clients, err = a.newClientRegistry(repl)
	if err != nil {
		return fmt.Errorf("tokengate: %w", err)
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
		path, err := expandPlaceholders(repl, "database sqlite path", cfg.Path)
		if err != nil {
			return databaseTarget{}, fmt.Errorf("tokengate: %w", err)
		}
		if path == "" {
			path = filepath.Join(caddy.AppDataDir(), "tokengate", "tokengate.db")
		}
		return databaseTarget{driver: "sqlite", location: path}, nil
	case "postgres":
		dsn, err := expandPlaceholders(repl, "database postgres DSN", cfg.DSN)
		if err != nil {
			return databaseTarget{}, fmt.Errorf("tokengate: %w", err)
		}
		if dsn == "" {
			return databaseTarget{}, fmt.Errorf("tokengate: database postgres DSN is empty")
		}
		return databaseTarget{driver: "postgres", location: dsn}, nil
	}
	return databaseTarget{}, fmt.Errorf("tokengate: unknown database driver %q", cfg.Driver)
}

// Start opens (or, across a reload, reuses) the store and the validation
// cache, starts the revocation listener and the purger, and builds the
// authorization server on them. Caddy starts the apps of a config in no
// set order, so the http app may already be serving: handlers wait for
// Start (see awaitStart).
func (a *App) Start() error {
	state, err := loadSharedState(a.ctx, a.stateKey, a.db, a.cacheCfg, a.metrics)
	if err != nil {
		a.started.close()
		return fmt.Errorf("tokengate: opening %s store: %w", a.db.driver, err)
	}
	a.held = true
	if err := a.startKeyRing(state); err != nil {
		a.started.close()
		return fmt.Errorf("tokengate: signing keys: %w", err)
	}
	a.use(state)
	a.started.close()
	return nil
}

// use builds what serves requests on the open store of state: the
// clients, static and stored, the authorization server and personal
// tokens.
func (a *App) use(state *sharedState) {
	a.state = state
	a.registry = &oauth.Clients{Static: a.clients, Stored: state.clients}
	a.admin = &oauth.ClientAdmin{Clients: a.registry, Store: state.store, Owned: state.store, Audit: a.audit,
		Tokens: state.store, Validator: state.validator}
	a.jwtAccess = a.newJWTAccess()
	a.auth = a.newAuthServer(state)
	a.device = &oauth.DeviceGrant{Auth: a.auth, Store: state.store, TTL: time.Duration(a.DeviceCodeTTL)}
	a.personal = &oauth.PersonalTokens{
		Store:     state.store,
		Validator: state.validator,
		Scopes:    a.PersonalTokenScopes,
		Metrics:   a.metrics,
		Audit:     a.audit,
	}
}

// Stop is part of caddy.App. The store is released in Cleanup, which Caddy
// runs after Stop, and after the next config (if any) has started and taken
// its own reference; Cleanup also runs alone when a config is validated,
// fails to start, or fails after starting, so it is the one place that
// releases.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's reference to the shared store and cache,
// if Start took one. It tolerates a failed Provision and a config that was
// never started.
func (a *App) Cleanup() error {
	if a.started != nil {
		// Handlers still waiting for a Start that will not come give up.
		a.started.close()
	}
	// The ring uses the store: it goes first.
	keysErr := a.releaseKeyRing()
	if !a.held {
		return keysErr
	}
	a.held = false
	_, err := sharedStates.Delete(a.stateKey)
	return errors.Join(keysErr, err)
}

// startWait bounds how long a request waits for Start: opening a new store
// may wait listenReadyTimeout for the revocation listener, and migrating a
// database takes a moment more.
const startWait = 2 * listenReadyTimeout

// awaitStart reports whether the store is open, waiting for Start (at most
// a.startWait, and no longer than the request lives) if it has not run yet.
// False means the caller answers as for an unreachable store.
func (a *App) awaitStart(ctx context.Context) bool {
	if a.started == nil { // not provisioned
		return false
	}
	select {
	case <-a.started.done:
		return a.state != nil
	default:
	}
	timer := time.NewTimer(a.startWait)
	defer timer.Stop()
	select {
	case <-a.started.done:
		return a.state != nil
	case <-timer.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// startSignal is done once Start has run, or once Cleanup has found that
// it never will.
type startSignal struct {
	once sync.Once
	done chan struct{}
}

func newStartSignal() *startSignal { return &startSignal{done: make(chan struct{})} }

func (s *startSignal) close() { s.once.Do(func() { close(s.done) }) }

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
