package integration

import (
	"encoding/json"
	"testing"
)

// TestAdminUserRoutes: an operator lists a user's grants, revokes one app's
// grant, then signs the user out everywhere through the admin API, on
// SQLite and PostgreSQL; each revocation is refused on the next request,
// and the CLI's user revoke does the same against a running Caddy.
func TestAdminUserRoutes(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g, adminURL := startGatewayWithAdmin(t, database, oauthClients)
		admin := adminAPI{base: adminURL}
		user := "admin-user"
		home := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read")
		other := connect(t, g, user, "other-app", "other-secret", "https://other.example.com/cb", "chargers:read")
		personal := g.personalToken(t, user)
		chargers := g.base + "/functions/v1/api/chargers"

		r := admin.call(t, "GET", "/tokengate/users/"+user+"/grants", "")
		var grants []grantJSON
		if r.status != 200 || json.Unmarshal([]byte(r.body), &grants) != nil || len(grants) != 2 {
			t.Fatalf("GET grants: %d %s, want the two apps", r.status, r.body)
		}
		if grants[0].ClientID != "home-app" || grants[0].ClientName != "Home Energy App" || grants[1].ClientID != "other-app" {
			t.Errorf("grants %+v", grants)
		}

		if r := admin.call(t, "DELETE", "/tokengate/users/"+user+"/grants/home-app", ""); r.status != 204 {
			t.Fatalf("DELETE grant: %d %s", r.status, r.body)
		}
		if s := home.guardStatus(t, g); s != 401 {
			t.Errorf("revoked app's access token: %d, want 401", s)
		}
		expectOAuthError(t, home.refreshToken(t, g), 400, "invalid_grant")
		if s := other.guardStatus(t, g); s != 200 {
			t.Errorf("the other app's access token: %d, want 200", s)
		}
		if r := admin.call(t, "GET", "/tokengate/users/"+user+"/grants", ""); r.status != 200 || json.Unmarshal([]byte(r.body), &grants) != nil || len(grants) != 1 {
			t.Errorf("grants after one revocation: %d %s", r.status, r.body)
		}

		// Sign out everywhere: the other app and the personal token too.
		if r := admin.call(t, "DELETE", "/tokengate/users/"+user, ""); r.status != 204 {
			t.Fatalf("DELETE user: %d %s", r.status, r.body)
		}
		if s := other.guardStatus(t, g); s != 401 {
			t.Errorf("access token after the user's revocation: %d, want 401", s)
		}
		expectOAuthError(t, other.refreshToken(t, g), 400, "invalid_grant")
		if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+personal); r.status != 401 {
			t.Errorf("personal token after the user's revocation: %d, want 401", r.status)
		}
		// Nothing left is no error; wrong methods are 405.
		if r := admin.call(t, "DELETE", "/tokengate/users/"+user, ""); r.status != 204 {
			t.Errorf("DELETE of a user with nothing left: %d", r.status)
		}
		if r := admin.call(t, "POST", "/tokengate/users/"+user+"/grants", ""); r.status != 405 || r.decode(t)["error"] == nil {
			t.Errorf("POST grants: %d %s, want 405 with an error", r.status, r.body)
		}
	})
}

// TestCLIUserRevoke runs `caddy tokengate user revoke` as a process of its
// own, for one client and for everything of the user.
func TestCLIUserRevoke(t *testing.T) {
	g, adminURL := startGatewayWithAdmin(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients)
	user := "cli-user"
	home := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read")
	other := connect(t, g, user, "other-app", "other-secret", "https://other.example.com/cb", "chargers:read")

	tokengateCLI(t, adminURL, "user", "revoke", "--user", user, "--client", "home-app").expect(t, 0, `home-app`)
	if s := home.guardStatus(t, g); s != 401 {
		t.Errorf("after user revoke --client: %d, want 401", s)
	}
	if s := other.guardStatus(t, g); s != 200 {
		t.Errorf("the other app after user revoke --client: %d, want 200", s)
	}
	tokengateCLI(t, adminURL, "user", "revoke", "--user", user).expect(t, 0, user)
	if s := other.guardStatus(t, g); s != 401 {
		t.Errorf("after user revoke: %d, want 401", s)
	}
}
