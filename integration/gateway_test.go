package integration

import (
	"fmt"
	"testing"
)

// gateway is a running Caddy with tokengate in front of three recording
// backends, on the paths of the demo deployment (Caddyfile.example).
type gateway struct {
	base                       string
	chargers, sessions, energy *recordingBackend
	other                      *recordingBackend
	database                   string
	caddyfile                  string
	// config makes the Caddyfile for a port.
	config func(port int) string
}

// gatewayCaddyfile is the config under test. Personal tokens get every scope
// but chargers:write, so the 403 rows can be reached with them.
const gatewayCaddyfile = `{
	admin off
	persist_config off
	storage file_system {$TEST_DATA_DIR}
	default_bind 127.0.0.1
	skip_install_trust
	%[8]s
	tokengate {
		issuer http://127.0.0.1:%[1]d
		database %[2]s
		users {
			jwt_secret {env.TEST_USER_JWT_SECRET}
			audience authenticated
		}
		scope chargers:read "Charger status and active sessions"
		scope chargers:write "Register new chargers"
		scope sessions:read "Charging session history"
		scope energy:read "Energy statistics and aggregates"
		personal_token_scopes chargers:read sessions:read energy:read
		%[7]s
	}
}

http://127.0.0.1:%[1]d {
	tokengate_endpoints
	route /functions/v1/api/chargers* {
		tokengate {
			GET chargers:read
			POST chargers:write
		}
		reverse_proxy %[3]s
	}
	route /functions/v1/api/sessions* {
		tokengate sessions:read
		reverse_proxy %[4]s
	}
	route /functions/v1/api/energy* {
		tokengate {
			* energy:read
			upstream_jwt {
				secret {env.TEST_USER_JWT_SECRET}
				ttl 60s
				claim role authenticated
			}
		}
		reverse_proxy %[5]s
	}
	route /any* {
		tokengate
		reverse_proxy %[6]s {
			header_up X-Placeholder-User {http.auth.user.id}
			header_up X-Placeholder-Scope {http.auth.user.scope}
			header_up X-Placeholder-Type {http.auth.user.token_type}
		}
	}
	route /forward* {
		tokengate {
			GET sessions:read
			forward_authorization
		}
		reverse_proxy %[6]s
	}
	route /both* {
		tokengate {
			GET sessions:read chargers:write energy:read
		}
		reverse_proxy %[6]s
	}
}
`

// startGateway starts Caddy on database (for example "sqlite /tmp/x.db").
// extra goes inside the tokengate global block.
func startGateway(t *testing.T, database, extra string) *gateway {
	t.Helper()
	return startGatewayWith(t, database, extra, "")
}

// startGatewayWith is startGateway with more global options.
func startGatewayWith(t *testing.T, database, extra, globalOptions string) *gateway {
	t.Helper()
	g := newGateway(t, database, extra, globalOptions)
	g.start(t)
	return g
}

// newGateway makes the backends of a gateway, which start then runs;
// edits, applied in order, change its Caddyfile before it is loaded.
func newGateway(t *testing.T, database, extra, globalOptions string, edits ...func(string) string) *gateway {
	t.Helper()
	g := &gateway{
		chargers: newBackend(t, "chargers"),
		sessions: newBackend(t, "sessions"),
		energy:   newBackend(t, "energy"),
		other:    newBackend(t, "other"),
		database: database,
	}
	g.config = func(port int) string {
		c := fmt.Sprintf(gatewayCaddyfile, port, database,
			g.chargers.hostPort(), g.sessions.hostPort(), g.energy.hostPort(), g.other.hostPort(), extra, globalOptions)
		for _, edit := range edits {
			c = edit(c)
		}
		return c
	}
	return g
}

// start loads the gateway's Caddyfile on a free port and waits until it
// serves.
func (g *gateway) start(t *testing.T) {
	t.Helper()
	port := loadOnFreePort(t, func(port int) string {
		g.caddyfile = g.config(port)
		return g.caddyfile
	})
	g.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	t.Cleanup(func() { stopCaddy(t) })
	waitReady(t, g.base+"/")
}

// personalToken activates a personal token for user through the api_token
// endpoint and returns it.
func (g *gateway) personalToken(t *testing.T, user string) string {
	t.Helper()
	r := do(t, "POST", g.base+"/api-token", "", "Authorization", "Bearer "+userJWT(t, user))
	if r.status != 201 {
		t.Fatalf("POST /api-token: %d %s", r.status, r.body)
	}
	tok, _ := r.decode(t)["token"].(string)
	if tok == "" {
		t.Fatalf("no token in %s", r.body)
	}
	return tok
}
