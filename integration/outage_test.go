package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth/sqlstore"
)

// TestStoreOutage stops PostgreSQL under a running gateway
// (docs/operations.md): a cached token keeps working, an uncached one gets
// 503 with Retry-After (never 401), the api_token endpoint gets 503, and
// everything recovers when the server is back, without a restart.
func TestStoreOutage(t *testing.T) {
	srv := pgtest.StartServer(t)
	g := startGateway(t, "postgres "+srv.DSN, "")
	sessions := g.base + "/functions/v1/api/sessions"
	cached := g.personalToken(t, "user-outage-cached")
	uncached := g.personalToken(t, "user-outage-uncached")
	if r := do(t, "GET", sessions, "", "Authorization", "Bearer "+cached); r.status != 200 {
		t.Fatalf("before the outage: %d %s", r.status, r.body)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", sessions, "", "Authorization", "Bearer "+cached); r.status != 200 {
		t.Errorf("cached token during the outage: %d %s, want 200", r.status, r.body)
	}
	r := do(t, "GET", sessions, "", "Authorization", "Bearer "+uncached)
	if r.status != 503 || r.body != `{"error":"Token validation temporarily unavailable"}` || r.header.Get("Retry-After") == "" {
		t.Errorf("uncached token during the outage: %d %s Retry-After=%q", r.status, r.body, r.header.Get("Retry-After"))
	}
	if r.header.Get("WWW-Authenticate") != "" {
		t.Errorf("503 carries WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	if r := do(t, "POST", g.base+"/api-token", "", "Authorization", "Bearer "+userJWT(t, "user-outage-new")); r.status != 503 {
		t.Errorf("api_token during the outage: %d %s, want 503", r.status, r.body)
	}
	// A client this instance does not know cannot be looked up: 503, not
	// the 401 or 400 of an unknown client (a stored client may have it).
	r = do(t, "POST", g.base+"/oauth/token", "grant_type=refresh_token&refresh_token=tgr_x&client_id=stored-elsewhere",
		"Content-Type", "application/x-www-form-urlencoded")
	if r.status != 503 || !strings.Contains(r.body, "temporarily_unavailable") {
		t.Errorf("token endpoint, unknown client, during the outage: %d %s, want 503", r.status, r.body)
	}
	r = do(t, "GET", g.base+"/oauth/authorize?client_id=stored-elsewhere&redirect_uri=https%3A%2F%2Fa.example%2Fcb&response_type=code&scope=energy%3Aread&state=s",
		"", "Authorization", "Bearer "+userJWT(t, "user-outage-new"))
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("authorize page, unknown client, during the outage: %d, want 503 with Retry-After", r.status)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, recoveryTimeout, "uncached token accepted once the store is back", func() bool {
		return do(t, "GET", sessions, "", "Authorization", "Bearer "+uncached).status == 200
	})
}

// recoveryTimeout bounds waiting for the gateway to work again once the
// database is back. Recovery must come without a restart, but how soon is
// not promised; the wait ends as soon as it has.
const recoveryTimeout = 60 * time.Second

// TestRevocationReachesOtherInstances: a token revoked through another
// instance sharing the PostgreSQL database is refused here within 1 s,
// even though this instance has it cached (LISTEN/NOTIFY, docs/operations.md).
func TestRevocationReachesOtherInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	g := startGateway(t, "postgres "+dsn, "")
	sessions := g.base + "/functions/v1/api/sessions"
	// No readiness poll: a config with a PostgreSQL store starts serving
	// only once its LISTEN has taken hold, so a revocation elsewhere is
	// seen from the first request.
	tok := g.personalToken(t, "user-elsewhere")
	if r := do(t, "GET", sessions, "", "Authorization", "Bearer "+tok); r.status != 200 {
		t.Fatalf("before revocation: %d", r.status)
	}

	// The other instance: the same store code on the same database.
	other, err := sqlstore.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, ok, err := other.DeletePersonalToken(context.Background(), "user-elsewhere"); err != nil || !ok {
		t.Fatalf("revoking elsewhere: ok=%v err=%v", ok, err)
	}
	// the 1 s bound counts from here, when the revoking call returned
	// (its transaction, and so its NOTIFY, committed). eventually fails
	// only on a request sent after the second is up, so a request that is
	// merely slow to come back does not count against it.
	eventually(t, time.Second, "token revoked elsewhere refused", func() bool {
		return do(t, "GET", sessions, "", "Authorization", "Bearer "+tok).status == 401
	})
}

// TestLogsNeverCarrySecrets: one log line per personal-token change, and no
// token or user JWT anywhere in Caddy's logs, access log included.
func TestLogsNeverCarrySecrets(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	g := startGatewayWith(t, "sqlite "+t.TempDir()+"/tg.db", "",
		"log {\n\t\toutput file "+logFile+"\n\t\tlevel DEBUG\n\t}")
	// The access log too: add it to the site.
	g.caddyfile = strings.Replace(g.caddyfile, "\ttokengate_endpoints\n", "\tlog {\n\t\toutput file "+logFile+"\n\t}\n\ttokengate_endpoints\n", 1)
	loadCaddyfile(t, g.caddyfile)

	user := "user-logs"
	jwt := userJWT(t, user)
	first := g.personalToken(t, user)
	do(t, "GET", g.base+"/functions/v1/api/sessions", "", "Authorization", "Bearer "+first)
	second := g.personalToken(t, user)
	do(t, "GET", g.base+"/functions/v1/api/sessions?x=1", "", "Authorization", "Bearer "+first)
	do(t, "DELETE", g.base+"/api-token", "", "Authorization", "Bearer "+jwt)
	do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+second)
	stopCaddy(t)
	loadCaddyfile(t, g.caddyfile) // the test's cleanup stops it again

	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	logs := string(data)
	for _, secret := range []string{first, second, jwt, first[8:], jwt[strings.LastIndex(jwt, ".")+1:]} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token or JWT reached the log")
		}
	}
	for _, line := range []string{"personal token activated", "personal token rotated", "personal token deactivated"} {
		if n := strings.Count(logs, line); n != 1 {
			t.Errorf("log has %d lines %q, want 1", n, line)
		}
	}
	if !strings.Contains(logs, `"user_id":"user-logs"`) {
		t.Errorf("personal-token log lines do not name the user")
	}
	if !strings.Contains(logs, `"status":401`) {
		t.Errorf("access log missing: %.300s", logs)
	}
}
