package integration

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// logLines reads a file of JSON log lines.
func logLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line %q is not JSON: %v", path, sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestAuditAndLogSecrecy runs a full flow with the audit logger sent to a
// file of its own by a plain Caddy log block, every logger at DEBUG into
// another file and the access log on; then it reads the audit file's
// events, and searches every line written anywhere for the tokens, codes,
// secrets and user JWTs used in the flow.
func TestAuditAndLogSecrecy(t *testing.T) {
	dir := t.TempDir()
	auditFile, allFile, accessFile := filepath.Join(dir, "audit.log"), filepath.Join(dir, "all.log"), filepath.Join(dir, "access.log")
	logs := `
	log audit {
		include tokengate.audit
		output file ` + auditFile + `
		format json
	}
	log everything {
		output file ` + allFile + `
		format json
		level DEBUG
	}`
	g := newGateway(t, "sqlite "+dir+"/tg.db", oauthClients, logs, func(c string) string {
		return strings.Replace(c, "\ttokengate_endpoints\n",
			"\tlog {\n\t\toutput file "+accessFile+"\n\t\tformat json\n\t}\n\ttokengate_endpoints\n", 1)
	})
	g.start(t)
	chargers := g.base + "/functions/v1/api/chargers"

	var secrets []string
	keep := func(s ...string) { secrets = append(secrets, s...) }
	keep(homeSecret, "wrong-secret", userJWTSecret)

	user := "audit-user"
	jwt := userJWT(t, user)
	keep(jwt)
	first := g.personalToken(t, user)
	second := g.personalToken(t, user) // rotates
	keep(first, second)
	do(t, "GET", chargers, "", "Authorization", "Bearer "+second)
	do(t, "GET", chargers, "", "Authorization", "Bearer "+first) // refused
	if r := do(t, "DELETE", g.base+"/api-token", "", "Authorization", "Bearer "+jwt); r.status != 204 {
		t.Fatalf("DELETE /api-token: %d", r.status)
	}

	verifier := oauth2.GenerateVerifier()
	code := authorizeJSON(t, g, user, "home-app", homeRedirect, "chargers:read sessions:read", verifier)
	access, refresh := exchangeCode(t, g, code, verifier)
	keep(verifier, code, access, refresh)
	do(t, "GET", chargers, "", "Authorization", "Bearer "+access)
	// Tokens in the URL are refused, and kept out of the access log.
	for _, q := range []string{"access_token=" + access + "&page=2", "token=" + url.QueryEscape(access)} {
		if r := do(t, "GET", chargers+"?"+q, ""); r.status != 401 {
			t.Fatalf("token in the URL: %d", r.status)
		}
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	r := tokenRequest(t, g, form, basicAuth("home-app", homeSecret)...)
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	rotated := r.decode(t)
	keep(rotated["access_token"].(string), rotated["refresh_token"].(string))
	expectOAuthError(t, tokenRequest(t, g, form, basicAuth("home-app", homeSecret)...), 400, "invalid_grant") // reuse
	expectOAuthError(t, tokenRequest(t, g, form, basicAuth("home-app", "wrong-secret")...), 401, "invalid_client")
	introspect := url.Values{"token": {rotated["access_token"].(string)}}
	do(t, "POST", g.base+"/oauth/introspect", introspect.Encode(),
		append(basicAuth("home-app", homeSecret), "Content-Type", "application/x-www-form-urlencoded")...)

	// A second family, revoked by the client.
	verifier2 := oauth2.GenerateVerifier()
	code2 := authorizeJSON(t, g, user, "home-app", homeRedirect, "chargers:read", verifier2)
	access2, refresh2 := exchangeCode(t, g, code2, verifier2)
	keep(verifier2, code2, access2, refresh2)
	revoke := url.Values{"token": {refresh2}}
	if r := do(t, "POST", g.base+"/oauth/revoke", revoke.Encode(),
		append(basicAuth("home-app", homeSecret), "Content-Type", "application/x-www-form-urlencoded")...); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	stopCaddy(t) // flushes and closes the log files

	// The audit file holds the events, in order, each once, and nothing
	// but the audit logger's lines.
	var got []string
	for _, l := range logLines(t, auditFile) {
		if l["logger"] != "tokengate.audit" {
			t.Errorf("audit file has a line of logger %v: %v", l["logger"], l)
		}
		got = append(got, l["msg"].(string))
		switch l["msg"] {
		case "token issued", "token refreshed":
			if l["user_id"] != user || l["client_id"] != "home-app" || l["remote_ip"] != "127.0.0.1" || l["grant"] == nil || l["scope"] == nil {
				t.Errorf("%v line lacks a field: %v", l["msg"], l)
			}
		case "refresh token reuse detected":
			if l["level"] != "warn" || l["user_id"] != user {
				t.Errorf("reuse line: %v", l)
			}
		case "client authentication failed":
			if l["client_id"] != "home-app" || l["remote_ip"] != "127.0.0.1" {
				t.Errorf("client authentication line: %v", l)
			}
		}
	}
	want := []string{
		"personal token activated", "personal token rotated", "personal token deactivated",
		"authorization granted", "token issued", "token refreshed", "refresh token reuse detected",
		"client authentication failed", "authorization granted", "token issued", "token revoked",
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit events:\n got %q\nwant %q", got, want)
	}

	// No line of any logger, at any level, nor of the access log, holds a
	// secret of the flow, or the part of a token after its prefix.
	accessLines := logLines(t, accessFile)
	var redacted []string
	for _, l := range accessLines {
		req, _ := l["request"].(map[string]any)
		if uri, _ := req["uri"].(string); strings.Contains(uri, "REDACTED") {
			redacted = append(redacted, uri)
			if l["status"] != float64(401) || l["msg"] != "handled request" {
				t.Errorf("redacted access log line: %v", l)
			}
		}
	}
	wantRedacted := []string{"/functions/v1/api/chargers?access_token=REDACTED&page=2", "/functions/v1/api/chargers?token=REDACTED"}
	if !slices.Equal(redacted, wantRedacted) {
		t.Errorf("access log lines of the refused URLs: %q, want %q", redacted, wantRedacted)
	}
	if all := logLines(t, allFile); len(all) == 0 || len(accessLines) == 0 {
		t.Fatalf("%d lines in the DEBUG log, %d in the access log: the logs were not written", len(all), len(accessLines))
	} else {
		t.Logf("%d audit lines, %d lines in the DEBUG log, %d in the access log", len(got), len(all), len(accessLines))
	}
	for _, path := range []string{allFile, accessFile, auditFile} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(raw), s) || len(s) > 8 && strings.Contains(string(raw), s[4:]) {
				t.Errorf("%s contains a secret of the flow (%.6s...)", filepath.Base(path), s)
			}
		}
	}
}
