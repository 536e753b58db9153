package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// cliRun is one run of `caddy tokengate ...`.
type cliRun struct {
	stdout, stderr string
	exit           int
}

// tokengateCLI runs the built caddy binary's tokengate command against the
// admin endpoint at adminURL.
func tokengateCLI(t *testing.T, adminURL string, args ...string) cliRun {
	t.Helper()
	args = append(append([]string{"tokengate"}, args...), "--address", strings.TrimPrefix(adminURL, "http://"))
	cmd := exec.Command(caddyBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	run := cliRun{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		run.exit = exit.ExitCode()
	case err != nil:
		t.Fatalf("caddy %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("$ caddy %s\n%s%s(exit %d)", strings.Join(args[:len(args)-2], " "), run.stdout, run.stderr, run.exit)
	return run
}

// expect checks the exit status and that each pattern matches stdout (or,
// for a failed run, stderr).
func (r cliRun) expect(t *testing.T, exit int, patterns ...string) {
	t.Helper()
	if r.exit != exit {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.exit, exit, r.stdout, r.stderr)
	}
	out := r.stdout
	if exit != 0 {
		out = r.stderr
	}
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(out) {
			t.Errorf("output does not match %q:\n%s", p, out)
		}
	}
}

// TestCLI runs `caddy tokengate` as a process of its own against the
// admin API of a running Caddy: every client and personal-token
// subcommand, an API error exiting non-zero with the API's message.
func TestCLI(t *testing.T) {
	g, adminURL := startGatewayWithAdmin(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients)
	cli := func(args ...string) cliRun { return tokengateCLI(t, adminURL, args...) }
	secretLine := regexp.MustCompile(`(?m)^client_secret\s+(tgs_\S{43})$`)

	added := cli("client", "add", "--id", "billing", "--name", "Billing", "--redirect-uri", billingRedirect,
		"--scope", "energy:read", "--scope", "sessions:read")
	added.expect(t, 0, `(?m)^client_id\s+billing$`, `(?m)^type\s+confidential$`, `(?m)^source\s+store$`,
		`(?m)^scopes\s+energy:read sessions:read$`, `(?m)^redirect_uris\s+`+regexp.QuoteMeta(billingRedirect)+`$`)
	m := secretLine.FindStringSubmatch(added.stdout)
	if m == nil || !strings.Contains(added.stderr, "shown only once") {
		t.Fatalf("client add printed no secret, or no warning on stderr:\n%s%s", added.stdout, added.stderr)
	}
	if r := tokenRequest(t, g, map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {"tgr_x"}}, basicAuth("billing", m[1])...); r.status != 400 {
		t.Errorf("the printed secret at the token endpoint: %d %s, want 400 (authenticated, bad grant)", r.status, r.body)
	}

	cli("client", "add", "--name", "Mobile two", "--redirect-uri", "http://127.0.0.1/cb", "--public").
		expect(t, 0, `(?m)^client_id\s+c_[0-9a-f]{24}$`, `(?m)^type\s+public$`)
	cli("client", "list").expect(t, 0,
		`(?m)^ID\s+NAME\s+TYPE\s+SOURCE\s+SCOPES$`,
		`(?m)^billing\s+Billing\s+confidential\s+store\s+energy:read sessions:read$`,
		`(?m)^home-app\s+Home Energy App\s+confidential\s+config\s+chargers:read sessions:read$`,
		`(?m)^mobile\s+mobile\s+public\s+config\s+`)
	list := cli("client", "list", "--json")
	var objs []map[string]any
	if err := json.Unmarshal([]byte(list.stdout), &objs); err != nil || len(objs) != 6 {
		t.Errorf("client list --json: %v, %d clients, want 6:\n%s", err, len(objs), list.stdout)
	}
	cli("client", "get", "home-app").expect(t, 0, `(?m)^source\s+config$`, `(?m)^created_at\s+-$`)
	cli("client", "get", "billing").expect(t, 0, `(?m)^created_at\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, `(?m)^pkce\s+required$`)

	rotated := cli("client", "rotate-secret", "billing")
	rotated.expect(t, 0, `(?m)^client_id\s+billing$`)
	if n := secretLine.FindStringSubmatch(rotated.stdout); n == nil || n[1] == m[1] {
		t.Errorf("rotate-secret printed no new secret:\n%s", rotated.stdout)
	}

	// API errors: the API's message, and a non-zero exit.
	cli("client", "remove", "home-app").expect(t, 1, `client home-app is defined in the Caddyfile \(HTTP 409\)`)
	cli("client", "add", "--id", "billing", "--name", "Again", "--redirect-uri", billingRedirect).
		expect(t, 1, `client billing already exists \(HTTP 409\)`)
	cli("client", "add", "--name", "Plain", "--redirect-uri", "http://plain.example.com/cb").
		expect(t, 1, `redirect_uri "http://plain.example.com/cb" uses http with a host that is not loopback; use https \(HTTP 400\)`)
	cli("client", "add", "--name", "Undeclared", "--redirect-uri", billingRedirect, "--scope", "energy:write").
		expect(t, 1, `names undeclared scope "energy:write" \(HTTP 400\)`)
	cli("client", "add", "--name", "P", "--redirect-uri", billingRedirect, "--public", "--pkce-optional").
		expect(t, 1, `is public \(no secret\), so pkce cannot be optional \(HTTP 400\)`)

	cli("client", "remove", "billing").expect(t, 0, `^Removed client billing\.\n$`)
	cli("client", "get", "billing").expect(t, 1, `client billing not found \(HTTP 404\)`)

	issued := cli("personal-token", "issue", "--user", "user-cli")
	issued.expect(t, 0, `(?m)^user\s+user-cli$`, `(?m)^token\s+tgp_\S+$`, `(?m)^created_at\s+\d{4}-`)
	tok := regexp.MustCompile(`(?m)^token\s+(tgp_\S+)$`).FindStringSubmatch(issued.stdout)[1]
	sessions := g.base + "/functions/v1/api/sessions"
	if r := do(t, "GET", sessions, "", "Authorization", "Bearer "+tok); r.status != 200 {
		t.Errorf("the issued personal token at the guard: %d", r.status)
	}
	cli("personal-token", "revoke", "--user", "user-cli").expect(t, 0, `^User user-cli has no active personal token now\.\n$`)
	if r := do(t, "GET", sessions, "", "Authorization", "Bearer "+tok); r.status != 401 {
		t.Errorf("the revoked personal token at the guard: %d, want 401", r.status)
	}
	cli("personal-token", "revoke", "--user", "user-cli").expect(t, 0)
}
