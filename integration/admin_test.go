package integration

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const (
	billingRedirect = "https://billing.example.com/callback"
	billingBody     = `{"client_id":"billing","name":"Billing <Portal>","redirect_uris":["` + billingRedirect + `"],"scopes":["chargers:read","sessions:read"]}`
)

// adminAPI calls the admin endpoint at base (http://host:port).
type adminAPI struct{ base string }

func (a adminAPI) call(t *testing.T, method, path, body string) response {
	t.Helper()
	var headers []string
	if body != "" {
		headers = []string{"Content-Type", "application/json"}
	}
	return do(t, method, a.base+path, body, headers...)
}

// addClient adds a stored client and returns its secret.
func (a adminAPI) addClient(t *testing.T, body string) string {
	t.Helper()
	r := a.call(t, "POST", "/tokengate/clients", body)
	if r.status != 201 {
		t.Fatalf("POST /tokengate/clients: %d %s", r.status, r.body)
	}
	secret, _ := r.decode(t)["client_secret"].(string)
	return secret
}

func billingConfig(g *gateway, secret string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: "billing", ClientSecret: secret, RedirectURL: billingRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: g.base + "/oauth/authorize", TokenURL: g.base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
}

// billingTokens runs authorize (JSON flow) and the code exchange with
// PKCE for the stored client billing.
func billingTokens(t *testing.T, g *gateway, conf *oauth2.Config, user, scope string) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	code := authorizeJSON(t, g, user, "billing", billingRedirect, scope, verifier)
	tok, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange for billing: %v", err)
	}
	return tok
}

func refreshWith(conf *oauth2.Config, refresh string) (*oauth2.Token, error) {
	return conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refresh, Expiry: time.Now().Add(-time.Hour)}).Token()
}

// TestAdminStoredClient: a client added through the admin API takes part
// in every flow as a static one does, and its changes take
// effect at once: new scopes, a new secret, its removal.
func TestAdminStoredClient(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g, adminURL := startGatewayWithAdmin(t, database, oauthClients)
		admin := adminAPI{adminURL}
		secret := admin.addClient(t, billingBody)
		conf := billingConfig(g, secret)
		chargers := g.base + "/functions/v1/api/chargers"

		// Code + PKCE, the guard, refresh, introspection, revocation.
		tok := billingTokens(t, g, conf, "user-billing", "chargers:read sessions:read")
		if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+tok.AccessToken); r.status != 200 {
			t.Fatalf("stored client's access token at the guard: %d %s", r.status, r.body)
		}
		if got := g.chargers.last(t).Header.Get("X-Authenticated-Client-Id"); got != "billing" {
			t.Errorf("X-Authenticated-Client-Id %q, want billing", got)
		}
		fresh, err := refreshWith(conf, tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		r := do(t, "POST", g.base+"/oauth/introspect", url.Values{"token": {fresh.AccessToken}}.Encode(),
			append(basicAuth("billing", secret), "Content-Type", "application/x-www-form-urlencoded")...)
		if m := r.decode(t); m["active"] != true || m["client_id"] != "billing" {
			t.Errorf("introspection: %s", r.body)
		}
		r = do(t, "POST", g.base+"/oauth/revoke", url.Values{"token": {fresh.AccessToken}}.Encode(),
			append(basicAuth("billing", secret), "Content-Type", "application/x-www-form-urlencoded")...)
		if r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+fresh.AccessToken); r.status != 401 {
			t.Errorf("revoked access token: %d, want 401", r.status)
		}

		// The consent page names the stored client.
		r = do(t, "GET", g.base+"/oauth/authorize?"+url.Values{"client_id": {"billing"}, "redirect_uri": {billingRedirect},
			"response_type": {"code"}, "scope": {"chargers:read"}, "state": {"s"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}.Encode(),
			"", "Authorization", "Bearer "+userJWT(t, "user-consent"))
		if r.status != 200 || !strings.Contains(r.body, "Billing &lt;Portal&gt;") {
			t.Errorf("consent page: %d, want 200 naming the client (escaped)", r.status)
		}

		// PUT: a refresh gets at most the new scopes at once.
		tok = billingTokens(t, g, conf, "user-billing", "chargers:read sessions:read")
		r = admin.call(t, "PUT", "/tokengate/clients/billing",
			`{"name":"Billing","redirect_uris":["`+billingRedirect+`"],"scopes":["sessions:read"]}`)
		if r.status != 200 {
			t.Fatalf("PUT: %d %s", r.status, r.body)
		}
		narrowed, err := refreshWith(conf, tok.RefreshToken)
		if err != nil || narrowed.Extra("scope") != "sessions:read" {
			t.Fatalf("refresh after narrowing: %v, scope %v; want sessions:read", err, narrowed.Extra("scope"))
		}

		// A new secret: the old one stops at once.
		r = admin.call(t, "POST", "/tokengate/clients/billing/secret", "")
		newSecret, _ := r.decode(t)["client_secret"].(string)
		if r.status != 200 || newSecret == "" || newSecret == secret {
			t.Fatalf("rotate: %d %s", r.status, r.body)
		}
		r = tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {narrowed.RefreshToken}}, basicAuth("billing", secret)...)
		expectOAuthError(t, r, 401, "invalid_client")
		conf.ClientSecret = newSecret
		last, err := refreshWith(conf, narrowed.RefreshToken)
		if err != nil {
			t.Fatalf("refresh with the new secret: %v", err)
		}

		// DELETE: its refresh token dies at once, its access token runs out,
		// and a later client of the same id brings nothing back.
		if r := admin.call(t, "DELETE", "/tokengate/clients/billing", ""); r.status != 204 {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		r = tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {last.RefreshToken}}, basicAuth("billing", newSecret)...)
		expectOAuthError(t, r, 401, "invalid_client")
		if r := do(t, "GET", g.base+"/functions/v1/api/sessions", "", "Authorization", "Bearer "+last.AccessToken); r.status != 200 {
			t.Errorf("access token of a deleted client: %d, want 200 until it expires", r.status)
		}
		again := admin.addClient(t, billingBody)
		r = tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {last.RefreshToken}}, basicAuth("billing", again)...)
		expectOAuthError(t, r, 400, "invalid_grant")
	})
}

// TestAdminStoredClientRestart: stored clients and their grants survive a
// reload and a restart; a reload that fails leaves the admin routes
// working on the config still running; a static id stays out of the
// API's reach.
func TestAdminStoredClientRestart(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g, adminURL := startGatewayWithAdmin(t, database, oauthClients)
		admin := adminAPI{adminURL}
		secret := admin.addClient(t, billingBody)
		conf := billingConfig(g, secret)
		tok := billingTokens(t, g, conf, "user-restart", "chargers:read")

		loadCaddyfile(t, strings.Replace(g.caddyfile, "personal_token_scopes", "code_ttl 5m\n\t\tpersonal_token_scopes", 1))
		if r := admin.call(t, "GET", "/tokengate/clients/billing", ""); r.status != 200 {
			t.Fatalf("after a reload GET billing: %d %s", r.status, r.body)
		}
		tok, err := refreshWith(conf, tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh after a reload: %v", err)
		}
		broken := strings.Replace(g.caddyfile, "database "+database, "database postgres {env.TOKENGATE_TEST_UNSET_DSN}", 1)
		if err := tryLoadCaddyfile(broken); err == nil || !strings.Contains(err.Error(), "TOKENGATE_TEST_UNSET_DSN} is empty") {
			t.Fatalf("loading a config with an empty DSN: %v, want it refused", err)
		}
		if r := admin.call(t, "GET", "/tokengate/clients/billing", ""); r.status != 200 {
			t.Fatalf("after a failed reload GET billing: %d %s", r.status, r.body)
		}

		stopCaddy(t)
		loadCaddyfile(t, g.caddyfile)
		waitReady(t, g.base+"/")

		if r := admin.call(t, "GET", "/tokengate/clients/billing", ""); r.status != 200 || r.decode(t)["source"] != "store" {
			t.Fatalf("after restart GET billing: %d %s", r.status, r.body)
		}
		if _, err := refreshWith(conf, tok.RefreshToken); err != nil {
			t.Errorf("refresh after restart: %v", err)
		}
		r := admin.call(t, "DELETE", "/tokengate/clients/home-app", "")
		if r.status != 409 || r.decode(t)["error"] != "client home-app is defined in the Caddyfile" {
			t.Errorf("DELETE a static client: %d %s", r.status, r.body)
		}
	})
}

// TestAdminLogsNeverCarrySecrets: the secrets and tokens the admin API
// hands out reach no log line, at DEBUG, while the changes are audited.
func TestAdminLogsNeverCarrySecrets(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	g := newGateway(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients, "log {\n\t\toutput file "+logFile+"\n\t\tlevel DEBUG\n\t}",
		func(c string) string { return strings.Replace(c, "admin off", "admin "+admin, 1) })
	g.start(t)
	api := adminAPI{"http://" + admin}
	secret := api.addClient(t, billingBody)
	r := api.call(t, "POST", "/tokengate/clients/billing/secret", "")
	rotated, _ := r.decode(t)["client_secret"].(string)
	r = api.call(t, "POST", "/tokengate/users/user-admin-logs/personal-token", "")
	personal, _ := r.decode(t)["token"].(string)
	api.call(t, "DELETE", "/tokengate/clients/billing", "")
	if secret == "" || rotated == "" || personal == "" {
		t.Fatal("the admin API handed out no secret or token")
	}
	stopCaddy(t)
	loadCaddyfile(t, g.caddyfile) // the test's cleanup stops it again

	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	logs := string(data)
	for _, s := range []string{secret, rotated, personal, secret[4:20], personal[4:20]} {
		if strings.Contains(logs, s) {
			t.Errorf("a secret or token handed out by the admin API reached the log")
		}
	}
	for _, line := range []string{`"msg":"client added","client_id":"billing"`, `"msg":"client secret rotated","client_id":"billing"`,
		`"msg":"client removed","client_id":"billing"`, `"msg":"personal token activated","user_id":"user-admin-logs"`} {
		if !strings.Contains(logs, line) {
			t.Errorf("no audit line %s", line)
		}
	}
}
