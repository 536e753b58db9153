package caddyfile

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/caddy-tokengate/module"
)

// TestParseApp reads each form of the global option's lines
// (docs/reference.md).
func TestParseApp(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want        module.App
	}{
		{"issuer only", `tokengate {
			issuer https://api.example.com
		}`, module.App{Issuer: "https://api.example.com"}},
		{"database sqlite default file", `tokengate {
			database sqlite
		}`, module.App{Database: &module.DatabaseConfig{Driver: "sqlite"}}},
		{"database sqlite path", `tokengate {
			database sqlite /var/lib/tokengate.db
		}`, module.App{Database: &module.DatabaseConfig{Driver: "sqlite", Path: "/var/lib/tokengate.db"}}},
		{"database postgres placeholder kept for provisioning", `tokengate {
			database postgres {env.TOKENGATE_POSTGRES_DSN}
		}`, module.App{Database: &module.DatabaseConfig{Driver: "postgres", DSN: "{env.TOKENGATE_POSTGRES_DSN}"}}},
		{"users", `tokengate {
			users {
				jwt_secret {env.SUPABASE_JWT_SECRET}
				jwks_url https://p.supabase.co/auth/v1/.well-known/jwks.json
				issuer https://p.supabase.co/auth/v1
				audience authenticated
				user_claim sub
				cookie sb-access-token
				login_url https://app.example.com/login
			}
		}`, module.App{Users: &module.UsersConfig{
			JWTSecret: "{env.SUPABASE_JWT_SECRET}",
			JWKSURL:   "https://p.supabase.co/auth/v1/.well-known/jwks.json",
			Issuer:    "https://p.supabase.co/auth/v1",
			Audience:  "authenticated",
			UserClaim: "sub",
			Cookie:    "sb-access-token",
			LoginURL:  "https://app.example.com/login",
		}}},
		{"registration open (RFC 7591 3)", `tokengate {
			registration open
		}`, module.App{Registration: &module.RegistrationConfig{Open: true}}},
		{"registration with an initial access token, placeholder kept", `tokengate {
			registration token {env.TOKENGATE_REGISTRATION_TOKEN}
		}`, module.App{Registration: &module.RegistrationConfig{InitialAccessToken: "{env.TOKENGATE_REGISTRATION_TOKEN}"}}},
		{"scopes with and without description, in order", `tokengate {
			scope chargers:read "Charger status"
			scope energy:read
		}`, module.App{Scopes: []module.ScopeConfig{
			{Name: "chargers:read", Description: "Charger status"},
			{Name: "energy:read"},
		}}},
		{"confidential client, redirect_uri accumulates", `tokengate {
			client home-app {
				name "Home Energy App"
				secret {env.HOME_APP_SECRET}
				redirect_uri https://home.example.com/callback https://home.example.com/cb2
				redirect_uri https://home.example.com/cb3
				scopes chargers:read sessions:read
				pkce optional
			}
		}`, module.App{Clients: []module.ClientConfig{{
			ID:           "home-app",
			Name:         "Home Energy App",
			Secret:       "{env.HOME_APP_SECRET}",
			RedirectURIs: []string{"https://home.example.com/callback", "https://home.example.com/cb2", "https://home.example.com/cb3"},
			Scopes:       []string{"chargers:read", "sessions:read"},
			PKCE:         "optional",
		}}}},
		{"client_credentials client without redirect_uri", `tokengate {
			client meter-sync {
				secret {env.METER_SYNC_SECRET}
				scopes energy:read
				grant_types client_credentials
			}
		}`, module.App{Clients: []module.ClientConfig{{
			ID:         "meter-sync",
			Secret:     "{env.METER_SYNC_SECRET}",
			Scopes:     []string{"energy:read"},
			GrantTypes: []string{"client_credentials"},
		}}}},
		{"public client and hashed secret, in order", `tokengate {
			client mobile {
				redirect_uri com.example.mobile:/oauth
			}
			client hashed {
				secret_hash sha256:abc
			}
		}`, module.App{Clients: []module.ClientConfig{
			{ID: "mobile", RedirectURIs: []string{"com.example.mobile:/oauth"}},
			{ID: "hashed", SecretHash: "sha256:abc"},
		}}},
		{"lifetimes", `tokengate {
			code_ttl 5m
			access_token_ttl 1h
			refresh_token_ttl 30d
			refresh_max_age 0
			refresh_grace 2s
		}`, module.App{
			CodeTTL:         caddy.Duration(5 * time.Minute),
			AccessTokenTTL:  caddy.Duration(time.Hour),
			RefreshTokenTTL: caddy.Duration(30 * 24 * time.Hour),
			RefreshGrace:    caddy.Duration(2 * time.Second),
		}},
		{"personal_token_scopes and cache", `tokengate {
			personal_token_scopes chargers:read energy:read
			cache {
				max_entries 1000000
				ttl 5m
			}
		}`, module.App{
			PersonalTokenScopes: []string{"chargers:read", "energy:read"},
			Cache:               &module.CacheConfig{MaxEntries: 1000000, TTL: caddy.Duration(5 * time.Minute)},
		}},
		{"empty blocks", `tokengate {
			users {
			}
			cache {
			}
		}`, module.App{Users: &module.UsersConfig{}, Cache: &module.CacheConfig{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseApp(caddyfile.NewTestDispenser(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

// firstHandler adapts a site holding one directive after globalBlock and
// decodes the handler it produced into v.
func firstHandler(t *testing.T, directive string, v any) {
	t.Helper()
	out, _, err := adapt(t, site(directive))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []json.RawMessage `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	srv, ok := cfg.Apps.HTTP.Servers["srv0"]
	if !ok || len(srv.Routes) != 1 || len(srv.Routes[0].Handle) != 1 {
		t.Fatalf("want one route with one handler, got:\n%s", out)
	}
	if err := json.Unmarshal(srv.Routes[0].Handle[0], v); err != nil {
		t.Fatal(err)
	}
}

// TestParseGuard reads each form of the tokengate directive
// (docs/reference.md).
func TestParseGuard(t *testing.T) {
	for _, tc := range []struct {
		name, directive string
		want            module.Guard
	}{
		{"bare: any valid token", `tokengate`, module.Guard{}},
		{"empty block: any valid token", "tokengate {\n}", module.Guard{}},
		{"one inline scope for every method", `tokengate sessions:read`,
			module.Guard{Methods: map[string][]string{"*": {"sessions:read"}}}},
		{"two inline scopes, both required, in order", `tokengate sessions:read chargers:read`,
			module.Guard{Methods: map[string][]string{"*": {"sessions:read", "chargers:read"}}}},
		{"block with methods", `tokengate {
		GET chargers:read
		HEAD sessions:read
		POST chargers:read chargers:write
		PROPFIND sessions:read
		* sessions:read
	}`, module.Guard{Methods: map[string][]string{
			"GET":      {"chargers:read"},
			"HEAD":     {"sessions:read"},
			"POST":     {"chargers:read", "chargers:write"},
			"PROPFIND": {"sessions:read"},
			"*":        {"sessions:read"},
		}}},
		{"forward_authorization alone", `tokengate {
		forward_authorization
	}`, module.Guard{ForwardAuthorization: true}},
		{"upstream_jwt with claims", `tokengate {
		GET chargers:read
		upstream_jwt {
			secret {env.SUPABASE_JWT_SECRET}
			ttl 60s
			audience authenticated
			claim role authenticated
			claim aal aal1
		}
	}`, module.Guard{
			Methods: map[string][]string{"GET": {"chargers:read"}},
			UpstreamJWT: &module.UpstreamJWT{
				Secret:   "{env.SUPABASE_JWT_SECRET}",
				TTL:      caddy.Duration(time.Minute),
				Audience: "authenticated",
				Claims:   map[string]string{"role": "authenticated", "aal": "aal1"},
			},
		}},
		{"resource with method lines", `tokengate {
		resource https://api.example.com/chargers
		GET chargers:read
	}`, module.Guard{
			Methods:  map[string][]string{"GET": {"chargers:read"}},
			Resource: "https://api.example.com/chargers",
		}},
		{"resource with inline scopes, on loopback http", `tokengate sessions:read {
		resource http://127.0.0.1:8080
	}`, module.Guard{
			Methods:  map[string][]string{"*": {"sessions:read"}},
			Resource: "http://127.0.0.1:8080",
		}},
		{"inline scope with an options block", `tokengate sessions:read {
		forward_authorization
	}`, module.Guard{
			Methods:              map[string][]string{"*": {"sessions:read"}},
			ForwardAuthorization: true,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got struct {
				Handler string `json:"handler"`
				module.Guard
			}
			firstHandler(t, tc.directive, &got)
			if got.Handler != "tokengate" {
				t.Errorf("handler %q, want tokengate", got.Handler)
			}
			if !reflect.DeepEqual(got.Guard, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got.Guard, tc.want)
			}
		})
	}
}

// TestParseEndpoints reads the tokengate_endpoints directive
// (docs/reference.md).
func TestParseEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name, directive string
		want            module.Endpoints
	}{
		{"defaults are left to the handler", `tokengate_endpoints`, module.Endpoints{}},
		{"some paths moved", `tokengate_endpoints {
		token /functions/v1/oauth/token
		api_token /functions/v1/api-token
	}`, module.Endpoints{Token: "/functions/v1/oauth/token", APIToken: "/functions/v1/api-token"}},
		{"every path moved", `tokengate_endpoints {
		authorize /a
		token /t
		revoke /r
		introspect /i
		api_token /p
		grants /g
	}`, module.Endpoints{Authorize: "/a", Token: "/t", Revoke: "/r", Introspect: "/i", APIToken: "/p", Grants: "/g"}},
		{"two defaults swapped", `tokengate_endpoints {
		token /oauth/revoke
		revoke /oauth/token
	}`, module.Endpoints{Token: "/oauth/revoke", Revoke: "/oauth/token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got struct {
				Handler string `json:"handler"`
				module.Endpoints
			}
			firstHandler(t, tc.directive, &got)
			if got.Handler != "tokengate_endpoints" {
				t.Errorf("handler %q, want tokengate_endpoints", got.Handler)
			}
			if !reflect.DeepEqual(got.Endpoints, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got.Endpoints, tc.want)
			}
		})
	}
}
