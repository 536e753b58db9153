package module

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestValidate checks the config errors (docs/reference.md) on the JSON form,
// where no Caddyfile parser stands in front: each message names the culprit.
func TestValidate(t *testing.T) {
	base := func() *App {
		return &App{
			Issuer: "https://api.example.com",
			Users:  &UsersConfig{JWTSecret: "x"},
			Scopes: []ScopeConfig{{Name: "chargers:read"}, {Name: "sessions:read"}},
			Clients: []ClientConfig{
				{ID: "home-app", Secret: "s", RedirectURIs: []string{"https://home.example.com/cb"}},
				{ID: "mobile", RedirectURIs: []string{"com.example.mobile:/oauth", "http://127.0.0.1/callback"}},
			},
		}
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	cases := []struct {
		name   string
		change func(a *App)
		want   string
	}{
		{"issuer required", func(a *App) { a.Issuer = "" }, "issuer is required"},
		{"issuer https unless loopback", func(a *App) { a.Issuer = "http://api.example.com" }, "must use https"},
		{"issuer http loopback ok", func(a *App) { a.Issuer = "http://127.0.0.1:8080" }, ""},
		{"issuer with a placeholder is checked once expanded", func(a *App) { a.Issuer = "{env.TOKENGATE_ISSUER}" }, ""},
		{"undeclared scope in client", func(a *App) { a.Clients[0].Scopes = []string{"energy:read"} }, `"energy:read"`},
		{"undeclared personal_token_scopes", func(a *App) { a.PersonalTokenScopes = []string{"nope"} }, `"nope"`},
		{"negative max_clients_per_user", func(a *App) { a.MaxClientsPerUser = -1 }, "max_clients_per_user must be positive, got -1"},
		{"client without redirect_uri", func(a *App) { a.Clients[1].RedirectURIs = nil }, `client "mobile" has no redirect_uri`},
		{"non-loopback http redirect_uri", func(a *App) { a.Clients[0].RedirectURIs = []string{"http://home.example.com/cb"} }, "not loopback"},
		{"pkce optional on public client", func(a *App) { a.Clients[1].PKCE = "optional" }, `client "mobile" is public`},
		{"pkce optional on confidential client ok", func(a *App) { a.Clients[0].PKCE = "optional" }, ""},
		{"duplicate client id", func(a *App) { a.Clients[1].ID = "home-app" }, `duplicate client "home-app"`},
		{"scope declared twice", func(a *App) { a.Scopes = append(a.Scopes, ScopeConfig{Name: "chargers:read"}) }, "declared twice"},
		{"bad scope characters", func(a *App) { a.Scopes[0].Name = `a"b` }, "RFC 6749 3.3"},
		{"unknown database driver", func(a *App) { a.Database = &DatabaseConfig{Driver: "mysql"} }, `"mysql"`},
		{"postgres needs a DSN", func(a *App) { a.Database = &DatabaseConfig{Driver: "postgres"} }, "needs a DSN"},
		{"secret and secret_hash", func(a *App) { a.Clients[0].SecretHash = "sha256:" + strings.Repeat("a", 64) }, "both secret and secret_hash"},
		{"bad secret_hash", func(a *App) { a.Clients[0].Secret = ""; a.Clients[0].SecretHash = "md5:x" }, "sha256:<64 hex digits>"},
		{"cache ttl beyond 30 days", func(a *App) { a.Cache = &CacheConfig{TTL: caddy.Duration(31 * 24 * time.Hour)} }, "cache ttl must be at most"},
		{"cache ttl of 30 days ok", func(a *App) { a.Cache = &CacheConfig{TTL: caddy.Duration(30 * 24 * time.Hour)} }, ""},
		{"redirect_uri with fragment", func(a *App) { a.Clients[0].RedirectURIs = []string{"https://a.example/cb#x"} }, "fragment"},
		{"unknown grant type", func(a *App) { a.Clients[0].GrantTypes = []string{"authorization_code", "password"} },
			`client "home-app": unknown grant type "password"`},
		{"RFC 6749 4.4 client_credentials on a public client", func(a *App) { a.Clients[1].GrantTypes = []string{"client_credentials"} },
			`client "mobile": grant type client_credentials needs a confidential client`},
		{"client_credentials alone needs no redirect_uri", func(a *App) {
			a.Clients[0].GrantTypes, a.Clients[0].RedirectURIs = []string{"client_credentials"}, nil
		}, ""},
		{"authorization_code needs a redirect_uri", func(a *App) {
			a.Clients[0].GrantTypes, a.Clients[0].RedirectURIs = []string{"client_credentials", "authorization_code"}, nil
		}, `client "home-app" has no redirect_uri`},
		{"registration open ok", func(a *App) { a.Registration = &RegistrationConfig{Open: true} }, ""},
		{"registration with a token ok", func(a *App) { a.Registration = &RegistrationConfig{InitialAccessToken: "{env.T}"} }, ""},
		{"registration open and with a token", func(a *App) { a.Registration = &RegistrationConfig{Open: true, InitialAccessToken: "t"} }, "registration is either open or needs an initial access token"},
		{"registration neither open nor with a token", func(a *App) { a.Registration = &RegistrationConfig{} }, "registration is either open or needs an initial access token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := base()
			c.change(a)
			err := a.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	a := base()
	if err := a.ValidateScopes("tokengate directive", map[string][]string{"GET": {"chargers:read", "energy:write"}}); err == nil ||
		!strings.Contains(err.Error(), `"energy:write"`) {
		t.Errorf("ValidateScopes: %v", err)
	}
}
