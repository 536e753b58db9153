package module

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// Validate checks the configuration alone, without side effects, so that
// `caddy adapt` and `caddy validate` refuse a bad config with a message
// naming the culprit (docs/reference.md).
func (a *App) Validate() error {
	if a.Issuer == "" {
		return fmt.Errorf("tokengate: issuer is required")
	}
	// An issuer with a placeholder is checked once Provision has expanded it.
	if !hasPlaceholder(a.Issuer) {
		if err := checkIssuer(a.Issuer); err != nil {
			return err
		}
	}
	if a.Database != nil {
		switch a.Database.Driver {
		case "", "sqlite":
		case "postgres":
			if a.Database.DSN == "" {
				return fmt.Errorf("tokengate: database postgres needs a DSN")
			}
		default:
			return fmt.Errorf("tokengate: unknown database driver %q (want sqlite or postgres)", a.Database.Driver)
		}
	}
	if err := a.validateSigning(); err != nil {
		return err
	}
	if a.DeviceCodeTTL < 0 {
		return fmt.Errorf("tokengate: device_code_ttl must be positive, got %v", time.Duration(a.DeviceCodeTTL))
	}
	if a.MaxClientsPerUser < 0 {
		return fmt.Errorf("tokengate: max_clients_per_user must be positive, got %d", a.MaxClientsPerUser)
	}
	if r := a.Registration; r != nil && r.Open == (r.InitialAccessToken != "") {
		return fmt.Errorf("tokengate: registration is either open or needs an initial access token, not both or neither")
	}
	if a.Users != nil && a.Users.JWTSecret == "" && a.Users.JWKSURL == "" {
		return fmt.Errorf("tokengate: users needs jwt_secret or jwks_url")
	}
	declared := make(map[string]bool, len(a.Scopes))
	for _, s := range a.Scopes {
		if err := checkScopeName(s.Name); err != nil {
			return err
		}
		if declared[s.Name] {
			return fmt.Errorf("tokengate: scope %q declared twice", s.Name)
		}
		declared[s.Name] = true
	}
	if err := a.checkScopes("personal_token_scopes", a.PersonalTokenScopes); err != nil {
		return err
	}
	seen := make(map[string]bool, len(a.Clients))
	for _, c := range a.Clients {
		if c.ID == "" {
			return fmt.Errorf("tokengate: a client has no id")
		}
		if seen[c.ID] {
			return fmt.Errorf("tokengate: duplicate client %q", c.ID)
		}
		seen[c.ID] = true
		if err := a.checkClient(c); err != nil {
			return err
		}
	}
	if a.Cache != nil && a.Cache.MaxEntries < 0 {
		return fmt.Errorf("tokengate: cache max_entries must not be negative")
	}
	if a.Cache != nil && time.Duration(a.Cache.TTL) > oauth.MaxCacheTTL {
		return fmt.Errorf("tokengate: cache ttl must be at most %v, got %v", oauth.MaxCacheTTL, time.Duration(a.Cache.TTL))
	}
	return nil
}

// checkScopes refuses any scope in names that no scope line declares.
func (a *App) checkScopes(where string, names []string) error {
	if err := a.undeclared(where, names); err != nil {
		return fmt.Errorf("tokengate: %w", err)
	}
	return nil
}

// undeclared is checkScopes without the config's prefix.
func (a *App) undeclared(where string, names []string) error {
	for _, n := range names {
		if !a.declares(n) {
			return fmt.Errorf("%s names undeclared scope %q", where, n)
		}
	}
	return nil
}

func (a *App) declares(scope string) bool {
	for _, s := range a.allScopes() {
		if s.Name == scope {
			return true
		}
	}
	return false
}

// checkClient checks a client of the config: its secret, then the rules
// every client keeps (checkClientRules).
func (a *App) checkClient(c ClientConfig) error {
	where := fmt.Sprintf("client %q", c.ID)
	if c.Secret != "" && c.SecretHash != "" {
		return fmt.Errorf("tokengate: %s has both secret and secret_hash", where)
	}
	if c.SecretHash != "" {
		if err := checkSecretHash(c.SecretHash); err != nil {
			return fmt.Errorf("tokengate: %s: %w", where, err)
		}
	}
	rules := clientRules{where: where, public: c.Secret == "" && c.SecretHash == "", redirectURIs: c.RedirectURIs, scopes: c.Scopes, pkce: c.PKCE,
		grantTypes: c.GrantTypes}
	if err := a.checkClientRules(rules); err != nil {
		return fmt.Errorf("tokengate: %w", err)
	}
	return nil
}

// clientRules is what the rules of docs/reference.md look at in a client,
// whether it comes from the config or from the admin API.
type clientRules struct {
	where        string // how messages name the client: `client "home-app"`
	public       bool
	redirectURIs []string
	scopes       []string
	pkce         string // "", "required" or "optional"
	grantTypes   []string
}

// checkClientRules applies the rules every client keeps: known grant
// types, client_credentials for confidential clients only; at least one
// redirect URI for a client of the code flow, each absolute, without a
// fragment, and https unless its host is loopback; only declared scopes;
// and pkce optional for confidential clients only. The message names the
// culprit.
func (a *App) checkClientRules(c clientRules) error {
	if err := oauth.CheckGrantTypes(c.grantTypes, c.public); err != nil {
		return fmt.Errorf("%s: %w", c.where, err)
	}
	if len(c.redirectURIs) == 0 && oauth.NeedsRedirectURI(c.grantTypes) {
		return fmt.Errorf("%s has no redirect_uri", c.where)
	}
	for _, u := range c.redirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return fmt.Errorf("%s: %w", c.where, err)
		}
	}
	if err := a.undeclared(c.where, c.scopes); err != nil {
		return err
	}
	switch c.pkce {
	case "", "required":
	case "optional":
		if c.public {
			return fmt.Errorf("%s is public (no secret), so pkce cannot be optional", c.where)
		}
	default:
		return fmt.Errorf("%s: pkce must be required or optional, not %q", c.where, c.pkce)
	}
	return nil
}

// checkIssuer applies RFC 8414 2: an https URL with no query or fragment;
// plain http is allowed for a loopback host so a demo can run locally.
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return fmt.Errorf("tokengate: issuer %q is not an absolute URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("tokengate: issuer %q must not have a query or fragment", issuer)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !oauth.IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("tokengate: issuer %q must use https (http is allowed for loopback hosts only)", issuer)
		}
	default:
		return fmt.Errorf("tokengate: issuer %q must use https", issuer)
	}
	return nil
}

// checkRedirectURI accepts absolute URIs without fragment (RFC 6749 3.1.2);
// http only for loopback hosts (RFC 8252 7.3, 8.3). Private-use schemes such
// as com.example.app:/oauth are allowed for native apps (RFC 8252 7.1).
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("redirect_uri %q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("redirect_uri %q must not have a fragment", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		if !oauth.IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("redirect_uri %q uses http with a host that is not loopback; use https", raw)
		}
	case "https":
		if u.Host == "" {
			return fmt.Errorf("redirect_uri %q has no host", raw)
		}
	}
	return nil
}

// checkScopeName applies RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func checkScopeName(name string) error {
	if name == "" {
		return fmt.Errorf("tokengate: empty scope name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return fmt.Errorf("tokengate: scope %q has a character RFC 6749 3.3 does not allow", name)
		}
	}
	return nil
}

// checkSecretHash accepts "sha256:" and 64 hex digits.
func checkSecretHash(h string) error {
	hexPart, ok := strings.CutPrefix(h, "sha256:")
	if !ok || len(hexPart) != 64 {
		return fmt.Errorf("secret_hash must be sha256:<64 hex digits>")
	}
	for i := 0; i < len(hexPart); i++ {
		c := hexPart[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return fmt.Errorf("secret_hash must be sha256:<64 hex digits>")
		}
	}
	return nil
}

// ValidateScopes checks a guard's rules against the app's declared scopes.
func (a *App) ValidateScopes(where string, methods map[string][]string) error {
	for m, scopes := range methods {
		if err := a.checkScopes(fmt.Sprintf("%s (%s)", where, m), scopes); err != nil {
			return err
		}
	}
	return nil
}
