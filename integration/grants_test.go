package integration

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const (
	otherRedirect = "https://other.example.com/cb"
	otherSecret   = "other-secret"
	grantsCookie  = "sb-access-token"
)

// connectedApp is one app a user connected with the dashboard flow, with
// the token pair it received.
type connectedApp struct {
	clientID, secret, redirect string
	access, refresh            string
}

// connect runs the dashboard flow (authorize, then exchange) for user and
// a confidential client.
func connect(t *testing.T, g *gateway, user, clientID, secret, redirect, scope string) *connectedApp {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	code := authorizeJSON(t, g, user, clientID, redirect, scope, verifier)
	r := tokenRequest(t, g, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}, basicAuth(clientID, secret)...)
	if r.status != 200 {
		t.Fatalf("exchange for %s: %d %s", clientID, r.status, r.body)
	}
	m := r.decode(t)
	return &connectedApp{clientID: clientID, secret: secret, redirect: redirect,
		access: m["access_token"].(string), refresh: m["refresh_token"].(string)}
}

// guardStatus is what the guard answers the app's access token.
func (a *connectedApp) guardStatus(t *testing.T, g *gateway) int {
	t.Helper()
	return do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+a.access).status
}

// refreshToken presents the app's refresh token, and keeps the new pair when
// it is rotated.
func (a *connectedApp) refreshToken(t *testing.T, g *gateway) response {
	t.Helper()
	r := tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.refresh}}, basicAuth(a.clientID, a.secret)...)
	if r.status == 200 {
		m := r.decode(t)
		a.access, a.refresh = m["access_token"].(string), m["refresh_token"].(string)
	}
	return r
}

// grantJSON is one entry of the grants endpoint's list.
type grantJSON struct {
	ClientID   string   `json:"client_id"`
	ClientName string   `json:"client_name"`
	Scopes     []string `json:"scopes"`
	GrantedAt  string   `json:"granted_at"`
}

// listGrants is GET on the grants endpoint with the given credentials
// (name, value header pairs), checked for the contract's headers.
func listGrants(t *testing.T, g *gateway, headers ...string) []grantJSON {
	t.Helper()
	r := do(t, "GET", g.base+"/oauth/grants", "", headers...)
	if r.status != 200 {
		t.Fatalf("GET /oauth/grants: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	checkNoStore(t, r)
	var gs []grantJSON
	if err := json.Unmarshal([]byte(r.body), &gs); err != nil || gs == nil {
		t.Fatalf("body %q is not a JSON array: %v", r.body, err)
	}
	return gs
}

func bearerUser(t *testing.T, user string) []string {
	return []string{"Authorization", "Bearer " + userJWT(t, user)}
}

// revokeGrant is DELETE on one grant, which always answers 204.
func revokeGrant(t *testing.T, g *gateway, user, clientID string) {
	t.Helper()
	r := do(t, "DELETE", g.base+"/oauth/grants/"+url.PathEscape(clientID), "", bearerUser(t, user)...)
	if r.status != 204 || r.body != "" {
		t.Fatalf("DELETE /oauth/grants/%s: %d %q, want 204 and no body", clientID, r.status, r.body)
	}
	checkNoStore(t, r)
}

// TestGrantsEndpoint: a user connects two apps with the dashboard flow,
// sees both (with the bearer JWT and with the cookie), revokes one, whose
// tokens are refused at once while the other's keep working; and all of it
// survives a restart (docs/operations.md).
func TestGrantsEndpoint(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := newGateway(t, database, oauthClients, "", func(c string) string {
			return strings.Replace(c, "audience authenticated\n", "audience authenticated\n\t\t\tcookie "+grantsCookie+"\n", 1)
		})
		g.start(t)
		user := "user-grants"
		before := time.Now().Truncate(time.Second)
		home := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read sessions:read")
		other := connect(t, g, user, "other-app", otherSecret, otherRedirect, "chargers:read energy:read")
		after := time.Now()

		gs := listGrants(t, g, bearerUser(t, user)...)
		if len(gs) != 2 ||
			gs[0].ClientID != "home-app" || gs[0].ClientName != "Home Energy App" || !slices.Equal(gs[0].Scopes, []string{"chargers:read", "sessions:read"}) ||
			gs[1].ClientID != "other-app" || gs[1].ClientName != "other-app" || !slices.Equal(gs[1].Scopes, []string{"chargers:read", "energy:read"}) {
			t.Fatalf("grants = %+v, want home-app and other-app with their scopes", gs)
		}
		for _, gr := range gs {
			at, err := time.Parse(time.RFC3339, gr.GrantedAt)
			if err != nil || at.Before(before) || at.After(after) || !strings.HasSuffix(gr.GrantedAt, "Z") {
				t.Errorf("%s granted_at %q, want RFC 3339 UTC between %v and %v", gr.ClientID, gr.GrantedAt, before, after)
			}
		}
		if byCookie := listGrants(t, g, "Cookie", grantsCookie+"="+userJWT(t, user)); len(byCookie) != 2 {
			t.Errorf("grants by cookie = %+v, want the same two", byCookie)
		}
		if theirs := listGrants(t, g, bearerUser(t, "user-grants-other")...); len(theirs) != 0 {
			t.Errorf("another user's grants = %+v, want []", theirs)
		}

		revokeGrant(t, g, user, "home-app")
		if s := home.guardStatus(t, g); s != 401 {
			t.Errorf("access token of the revoked app: %d, want 401 at once", s)
		}
		expectOAuthError(t, home.refreshToken(t, g), 400, "invalid_grant")
		if s := other.guardStatus(t, g); s != 200 {
			t.Errorf("access token of the app kept: %d, want 200", s)
		}
		if r := other.refreshToken(t, g); r.status != 200 {
			t.Fatalf("refresh token of the app kept: %d %s", r.status, r.body)
		}
		if gs := listGrants(t, g, bearerUser(t, user)...); len(gs) != 1 || gs[0].ClientID != "other-app" {
			t.Errorf("grants after the revocation = %+v, want other-app alone", gs)
		}
		// Nothing to revoke, or no such client: 204 all the same.
		revokeGrant(t, g, user, "home-app")
		revokeGrant(t, g, user, "no-such-client")

		stopCaddy(t)
		loadCaddyfile(t, g.caddyfile)
		waitReady(t, g.base+"/")
		if s := home.guardStatus(t, g); s != 401 {
			t.Errorf("revoked app's access token after a restart: %d, want 401", s)
		}
		expectOAuthError(t, home.refreshToken(t, g), 400, "invalid_grant")
		if s := other.guardStatus(t, g); s != 200 {
			t.Errorf("kept app's access token after a restart: %d, want 200", s)
		}
		if r := other.refreshToken(t, g); r.status != 200 {
			t.Errorf("kept app's refresh token after a restart: %d %s", r.status, r.body)
		}
		if kept := listGrants(t, g, bearerUser(t, user)...); len(kept) != 1 || kept[0].ClientID != "other-app" ||
			kept[0].GrantedAt != gs[1].GrantedAt || !slices.Equal(kept[0].Scopes, gs[1].Scopes) {
			t.Errorf("grants after a restart = %+v, want %+v", kept, gs[1:])
		}
	})
}

// TestGrantsEndpointRefusals: the grants endpoint's answers to a request
// without a valid user, and to a method it does not take
// (docs/reference.md).
func TestGrantsEndpointRefusals(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients)
	grants := g.base + "/oauth/grants"
	for _, tc := range []struct {
		name, method, url string
		headers           []string
		status            int
		challenge, allow  string
	}{
		{"no JWT", "GET", grants, nil, 401, `Bearer realm="tokengate"`, ""},
		{"no JWT on DELETE", "DELETE", grants + "/home-app", nil, 401, `Bearer realm="tokengate"`, ""},
		{"JWT of another issuer", "GET", grants, []string{"Authorization", "Bearer " + foreignJWT(t, "u")}, 401, `Bearer realm="tokengate", error="invalid_token"`, ""},
		{"expired JWT", "DELETE", grants + "/home-app", []string{"Authorization", "Bearer " + expiredUserJWT(t, "u")}, 401, `Bearer realm="tokengate", error="invalid_token"`, ""},
		{"POST on the list", "POST", grants, bearerUser(t, "u"), 405, "", "GET"},
		{"DELETE on the list", "DELETE", grants, bearerUser(t, "u"), 405, "", "GET"},
		{"GET on one grant", "GET", grants + "/home-app", bearerUser(t, "u"), 405, "", "DELETE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, tc.url, "", tc.headers...)
			if r.status != tc.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, tc.status)
			}
			checkNoStore(t, r)
			if got := r.header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if tc.status == 401 && r.decode(t)["error"] != "unauthorized" {
				t.Errorf("body %s, want error unauthorized", r.body)
			}
		})
	}
}

// TestGrantsAudit: revoking an app writes one "grant revoked" line naming
// the user, the client and the address, and no token of the app or the
// user's JWT reaches any log.
func TestGrantsAudit(t *testing.T) {
	dir := t.TempDir()
	auditFile, allFile := filepath.Join(dir, "audit.log"), filepath.Join(dir, "all.log")
	g := startGatewayWith(t, "sqlite "+dir+"/tg.db", oauthClients, `
	log audit {
		include tokengate.audit
		output file `+auditFile+`
		format json
	}
	log everything {
		output file `+allFile+`
		format json
		level DEBUG
	}`)
	user := "user-grants-audit"
	home := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read")
	jwt := userJWT(t, user)
	// The second finds nothing left: no second line.
	for range 2 {
		if r := do(t, "DELETE", g.base+"/oauth/grants/home-app", "", "Authorization", "Bearer "+jwt); r.status != 204 {
			t.Fatalf("DELETE /oauth/grants/home-app: %d %s", r.status, r.body)
		}
	}
	stopCaddy(t) // flushes and closes the log files

	var revoked []map[string]any
	for _, l := range logLines(t, auditFile) {
		if l["msg"] == "grant revoked" {
			revoked = append(revoked, l)
		}
	}
	if len(revoked) != 1 || revoked[0]["user_id"] != user || revoked[0]["client_id"] != "home-app" || revoked[0]["remote_ip"] != "127.0.0.1" {
		t.Errorf("grant revoked lines: %v, want one naming the user, the client and the address", revoked)
	}
	for _, path := range []string{auditFile, allFile} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{home.access, home.refresh, jwt[strings.LastIndex(jwt, "."):]} {
			if strings.Contains(string(raw), s[4:]) {
				t.Errorf("%s contains a token or the user's JWT", filepath.Base(path))
			}
		}
	}
}
