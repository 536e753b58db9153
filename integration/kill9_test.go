package integration

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

const (
	ledgerRedirect = "https://ledger.example.com/cb"
	ledgerBody     = `{"client_id":"ledger","name":"Ledger","redirect_uris":["` + ledgerRedirect + `"],"scopes":["chargers:read"]}`
)

// TestKillAdminChangesSurvive: what the admin API answered with success
// survives a caddy process killed with SIGKILL, and nothing it revoked
// comes back, on SQLite and PostgreSQL. A process makes
// a stored client, tokens for two users, a new secret, a personal token,
// a user's revocation and a client's removal; it is killed; a new process
// on the same database, with an empty cache, must find each of them.
func TestKillAdminChangesSurvive(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := newGateway(t, database, oauthClients, "")
		start := func() (*caddyProcess, adminAPI) {
			p := startCaddyProcess(t, func(port, adminPort int) string {
				return strings.Replace(g.config(port), "admin off", fmt.Sprintf("admin 127.0.0.1:%d", adminPort), 1)
			})
			g.base = p.base
			return p, adminAPI{p.admin}
		}
		chargers := func() string { return g.base + "/functions/v1/api/chargers" }
		guard := func(token string) int {
			return do(t, "GET", chargers(), "", "Authorization", "Bearer "+token).status
		}
		refresh := func(clientID, secret, token string) response {
			return tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}, basicAuth(clientID, secret)...)
		}
		const userA, userB = "kill-user-a", "kill-user-b"

		p, admin := start()
		oldSecret := admin.addClient(t, billingBody)
		ledgerSecret := admin.addClient(t, ledgerBody)
		conf := billingConfig(g, oldSecret)
		tokA := billingTokens(t, g, conf, userA, "chargers:read sessions:read")
		tokB := billingTokens(t, g, conf, userB, "chargers:read")
		personalB := g.personalToken(t, userB)
		ledger := connect(t, g, userA, "ledger", ledgerSecret, ledgerRedirect, "chargers:read")

		r := admin.call(t, "POST", "/tokengate/clients/billing/secret", "")
		newSecret, _ := r.decode(t)["client_secret"].(string)
		if r.status != 200 || newSecret == "" || newSecret == oldSecret {
			t.Fatalf("rotate billing's secret: %d %s", r.status, r.body)
		}
		conf.ClientSecret = newSecret
		// A refresh with the new secret, answered before the kill: the pair
		// it hands out must outlive the process, the token it rotated must not.
		rotatedA, err := refreshWith(conf, tokA.RefreshToken)
		if err != nil {
			t.Fatalf("refresh of user A with the new secret: %v", err)
		}
		r = admin.call(t, "POST", "/tokengate/users/"+userA+"/personal-token", "")
		personalA, _ := r.decode(t)["token"].(string)
		if r.status != 201 || !strings.HasPrefix(personalA, "tgp_") {
			t.Fatalf("POST personal-token for user A: %d %s", r.status, r.body)
		}
		if r := admin.call(t, "DELETE", "/tokengate/users/"+userB, ""); r.status != 204 {
			t.Fatalf("DELETE user B: %d %s", r.status, r.body)
		}
		if r := admin.call(t, "DELETE", "/tokengate/clients/ledger", ""); r.status != 204 {
			t.Fatalf("DELETE ledger: %d %s", r.status, r.body)
		}
		// Each token below was in use on this process, so its answer is
		// cached here; the new process must take it from the store.
		for name, tc := range map[string]struct {
			token string
			want  int
		}{"user A's access token": {tokA.AccessToken, 200}, "user A's refreshed access token": {rotatedA.AccessToken, 200},
			"user A's personal token": {personalA, 200}, "user B's access token": {tokB.AccessToken, 401},
			"user B's personal token": {personalB, 401}} {
			if got := guard(tc.token); got != tc.want {
				t.Fatalf("before the kill, %s at the guard: %d, want %d", name, got, tc.want)
			}
		}

		p.kill(t)
		_, admin = start()

		// The stored client, with its new secret only.
		r = admin.call(t, "GET", "/tokengate/clients/billing", "")
		if r.status != 200 || r.decode(t)["source"] != "store" {
			t.Fatalf("after the kill, GET billing: %d %s", r.status, r.body)
		}
		expectOAuthError(t, refresh("billing", oldSecret, rotatedA.RefreshToken), 401, "invalid_client")
		conf = billingConfig(g, newSecret)
		fresh, err := refreshWith(conf, rotatedA.RefreshToken)
		if err != nil {
			t.Fatalf("after the kill, refresh of user A with the new secret: %v", err)
		}

		// User A's tokens pass the guard, as the user they were issued to.
		for name, token := range map[string]string{"access token": tokA.AccessToken, "refreshed access token": rotatedA.AccessToken,
			"access token refreshed after the kill": fresh.AccessToken, "personal token": personalA} {
			if got := guard(token); got != 200 {
				t.Errorf("after the kill, user A's %s at the guard: %d, want 200", name, got)
				continue
			}
			if got := g.chargers.last(t).Header.Get("X-Authenticated-Userid"); got != userA {
				t.Errorf("after the kill, user A's %s reached the backend as %q", name, got)
			}
		}

		// User B stays signed out everywhere.
		for name, token := range map[string]string{"access token": tokB.AccessToken, "personal token": personalB} {
			if got := guard(token); got != 401 {
				t.Errorf("after the kill, revoked user B's %s at the guard: %d, want 401", name, got)
			}
		}
		expectOAuthError(t, refresh("billing", newSecret, tokB.RefreshToken), 400, "invalid_grant")

		// The removed client stays gone, and adding one of the same id
		// brings its refresh token back no more than the restart did.
		if r := admin.call(t, "GET", "/tokengate/clients/ledger", ""); r.status != 404 {
			t.Errorf("after the kill, GET the removed client: %d %s, want 404", r.status, r.body)
		}
		expectOAuthError(t, refresh("ledger", ledgerSecret, ledger.refresh), 401, "invalid_client")
		again := admin.addClient(t, ledgerBody)
		expectOAuthError(t, refresh("ledger", again, ledger.refresh), 400, "invalid_grant")

		// The refresh token rotated before the kill stays used: presenting
		// it is reuse (last, since reuse revokes user A's whole family).
		expectOAuthError(t, refresh("billing", newSecret, tokA.RefreshToken), 400, "invalid_grant")
		if got := guard(fresh.AccessToken); got != 401 {
			t.Errorf("after reuse of a refresh token rotated before the kill, its family's access token: %d, want 401", got)
		}
	})
}
