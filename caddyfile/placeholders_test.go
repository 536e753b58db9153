package caddyfile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestEmptyPlaceholders: a placeholder that comes out empty is caught when
// the config is provisioned (caddy validate, caddy run), with a message
// naming the option and the placeholder, wherever the placeholder goes
// ({env.X} and {file.X} work wherever a secret or DSN goes). It
// used to be reported as a missing tokengate global block when a handler
// happened to load the app first.
func TestEmptyPlaceholders(t *testing.T) {
	const unset = "TOKENGATE_CADDYFILE_TEST_UNSET"
	t.Setenv(unset, "")
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	emptyFile := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ph := "{env." + unset + "}"
	dbDir := t.TempDir()

	// config is a Caddyfile with every place set to a working value except
	// the one given by the case.
	config := func(issuer, database, jwtSecret, jwksURL, clientSecret, upstreamSecret string) string {
		users := "jwt_secret " + jwtSecret
		if jwksURL != "" {
			users += "\n\t\t\tjwks_url " + jwksURL
		}
		return `{
	admin off
	auto_https off
	tokengate {
		issuer ` + issuer + `
		database ` + database + `
		users {
			` + users + `
		}
		scope chargers:read
		client app {
			secret ` + clientSecret + `
			redirect_uri https://app.example.com/cb
		}
	}
}

http://localhost:8080 {
	tokengate_endpoints
	route /api* {
		tokengate {
			GET chargers:read
			upstream_jwt {
				secret ` + upstreamSecret + `
			}
		}
		respond ok
	}
}
`
	}
	const (
		issuer   = "https://api.example.com"
		secret   = "caddyfile-test-secret-0123456789abcdef"
		jwks     = ""
		upstream = "upstream-test-secret-0123456789abcdef"
	)
	sqlite := "sqlite " + filepath.Join(dbDir, "tg.db")
	for _, tc := range []struct {
		name, caddyfile, want string
	}{
		{"issuer", config(ph, sqlite, secret, jwks, secret, upstream),
			"tokengate: issuer: placeholder " + ph + " is empty"},
		{"issuer inside a URL", config("https://"+ph+"/auth", sqlite, secret, jwks, secret, upstream),
			"tokengate: issuer: placeholder " + ph + " is empty"},
		{"database sqlite path", config(issuer, "sqlite "+ph, secret, jwks, secret, upstream),
			"tokengate: database sqlite path: placeholder " + ph + " is empty"},
		{"database postgres DSN", config(issuer, "postgres "+ph, secret, jwks, secret, upstream),
			"tokengate: database postgres DSN: placeholder " + ph + " is empty"},
		{"users jwt_secret", config(issuer, sqlite, ph, jwks, secret, upstream),
			"tokengate: users jwt_secret: placeholder " + ph + " is empty"},
		{"users jwks_url", config(issuer, sqlite, secret, ph, secret, upstream),
			"tokengate: users jwks_url: placeholder " + ph + " is empty"},
		{"client secret", config(issuer, sqlite, secret, jwks, ph, upstream),
			`tokengate: client "app" secret: placeholder ` + ph + " is empty"},
		{"client secret from an empty file", config(issuer, sqlite, secret, jwks, "{file."+emptyFile+"}", upstream),
			`tokengate: client "app" secret: placeholder {file.` + emptyFile + "} is empty"},
		{"upstream_jwt secret", config(issuer, sqlite, secret, jwks, secret, ph),
			"tokengate: upstream_jwt: secret: placeholder " + ph + " is empty"},
		{"unknown placeholder in a secret is not repeated", config(issuer, sqlite, secret, jwks, "abc{not.a.placeholder}", upstream),
			`tokengate: client "app" secret: has a placeholder that is not recognized`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _, err := adapt(t, tc.caddyfile)
			if err != nil {
				t.Fatalf("adapt: %v (placeholders are expanded when the config is provisioned)", err)
			}
			var cfg caddy.Config
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			err = caddy.Validate(&cfg)
			if err == nil {
				t.Fatalf("validated; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "needs the tokengate global option block") {
				t.Errorf("error %q blames a missing global block", err)
			}
			if strings.Contains(err.Error(), "not.a.placeholder") {
				t.Errorf("error %q repeats a secret's text", err)
			}
		})
	}

	// The same Caddyfile with every value set validates, so each case
	// above fails for its own placeholder only.
	raw, _, err := adapt(t, config(issuer, sqlite, secret, jwks, secret, upstream))
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("the working config: %v", err)
	}
	if entries, _ := os.ReadDir(dbDir); len(entries) != 0 {
		t.Errorf("validation wrote %d files where the database would be", len(entries))
	}
}
