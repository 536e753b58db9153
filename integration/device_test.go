package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
)

// deviceClients are the device grant's clients, beside oauthClients
// (whose home-app may not use the grant): a public display that also
// runs the code flow, and a confidential charger box that has only the
// device grant, and so no redirect URI.
const deviceClients = oauthClients + `
		client charger-display {
			name "Charger Display"
			redirect_uri https://display.example.com/unused
			scopes chargers:read sessions:read
			grant_types authorization_code refresh_token urn:ietf:params:oauth:grant-type:device_code
		}
		client charger-box {
			secret box-secret
			grant_types urn:ietf:params:oauth:grant-type:device_code refresh_token
		}`

const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// deviceStart asks g's device authorization endpoint for codes as the
// public charger-display client, and checks the RFC 8628 3.2 answer.
func deviceStart(t *testing.T, base, scope string) deviceCodes {
	t.Helper()
	form := url.Values{"client_id": {"charger-display"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	r := do(t, "POST", base+"/oauth/device_authorization", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.status != 200 {
		t.Fatalf("device authorization: %d %s", r.status, r.body)
	}
	checkNoStore(t, r)
	m := r.decode(t)
	c := deviceCodes{
		deviceCode: fmt.Sprint(m["device_code"]),
		userCode:   fmt.Sprint(m["user_code"]),
		uri:        fmt.Sprint(m["verification_uri"]),
		complete:   fmt.Sprint(m["verification_uri_complete"]),
	}
	if !strings.HasPrefix(c.deviceCode, "tgd_") || !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(c.userCode) {
		t.Fatalf("codes in %s", r.body)
	}
	if c.uri != base+"/oauth/device" || c.complete != c.uri+"?user_code="+c.userCode {
		t.Fatalf("verification URIs in %s", r.body)
	}
	if m["expires_in"] != float64(600) || m["interval"] != float64(5) {
		t.Fatalf("expires_in and interval in %s", r.body)
	}
	return c
}

type deviceCodes struct {
	deviceCode, userCode, uri, complete string
}

// devicePoll polls base's token endpoint as charger-display.
func devicePoll(client *http.Client, base, deviceCode string) (response, error) {
	return send(client, "POST", base+"/oauth/token",
		url.Values{"grant_type": {deviceGrantType}, "device_code": {deviceCode}, "client_id": {"charger-display"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded")
}

func mustPoll(t *testing.T, base, deviceCode string) response {
	t.Helper()
	r, err := devicePoll(http.DefaultClient, base, deviceCode)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// deviceDecide approves or denies userCode on base's verification page
// as user, through HTTP: the page with ?user_code=, then its form.
func deviceDecide(t *testing.T, base, userCode, user, decision string) response {
	t.Helper()
	auth := []string{"Authorization", "Bearer " + userJWT(t, user)}
	r := do(t, "GET", base+"/oauth/device?user_code="+url.QueryEscape(userCode), "", auth...)
	if r.status != 200 {
		t.Fatalf("verification page: %d %s", r.status, r.body)
	}
	checkHTMLPageHeaders(t, r)
	form := consentForm(t, r.body)
	form.Set("decision", decision)
	r = do(t, "POST", base+"/oauth/device", form.Encode(), append(auth, "Content-Type", "application/x-www-form-urlencoded")...)
	if r.status != 200 {
		t.Fatalf("%s: %d %s", decision, r.status, r.body)
	}
	checkHTMLPageHeaders(t, r)
	return r
}

// TestDeviceFlowInBrowser runs the whole grant: the device asks for codes
// and polls; the user opens the verification page in a real headless
// Chromium, types the code in lower case without the dash, sees the
// consent page and approves; the next poll gets the tokens, which the
// guard accepts, and a later poll gets invalid_grant. Metadata announces
// the endpoint and the grant.
func TestDeviceFlowInBrowser(t *testing.T) {
	requireChromium(t)
	g := newGateway(t, "sqlite "+t.TempDir()+"/tg.db", deviceClients, "", func(c string) string {
		return strings.Replace(c, "audience authenticated", "audience authenticated\n\t\t\tcookie "+browserUserCookie, 1)
	})
	g.start(t)

	meta := do(t, "GET", g.base+"/.well-known/oauth-authorization-server", "").decode(t)
	if meta["device_authorization_endpoint"] != g.base+"/oauth/device_authorization" {
		t.Errorf("metadata device_authorization_endpoint = %v", meta["device_authorization_endpoint"])
	}
	if grants := fmt.Sprint(meta["grant_types_supported"]); !strings.Contains(grants, deviceGrantType) {
		t.Errorf("metadata grant_types_supported = %s, want the device grant", grants)
	}

	codes := deviceStart(t, g.base, "chargers:read")
	expectOAuthError(t, mustPoll(t, g.base, codes.deviceCode), 400, "authorization_pending")

	browser := startChromium(t)
	page := browser.page(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserFlowTimeout)
	defer cancel()
	page.call(ctx, t, "Network.setCookie", map[string]any{
		"name": browserUserCookie, "value": userJWT(t, "device-user"), "url": g.base + "/",
		"httpOnly": true, "sameSite": "Lax",
	}, nil)
	page.call(ctx, t, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": false,
	}, nil)
	artifacts := t.TempDir()
	screenshot := func(name string) {
		var shot struct {
			Data string `json:"data"`
		}
		page.call(ctx, t, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
		if png, err := base64.StdEncoding.DecodeString(shot.Data); err == nil {
			saveBrowserArtifact(t, artifacts, name, png)
		}
	}

	page.call(ctx, t, "Page.navigate", map[string]any{"url": codes.uri}, nil)
	page.waitFor(ctx, t, "the code form", `document.readyState === "complete" && !!document.querySelector("input[name=user_code]")`)
	screenshot("device-code-form.png")
	typed := strings.ToLower(strings.ReplaceAll(codes.userCode, "-", ""))
	page.eval(ctx, t, `document.querySelector("input[name=user_code]").focus()`, nil)
	page.call(ctx, t, "Input.insertText", map[string]any{"text": typed}, nil)
	var value string
	page.eval(ctx, t, `document.querySelector("input[name=user_code]").value`, &value)
	if value != typed {
		t.Fatalf("the field holds %q after typing %q", value, typed)
	}
	page.eval(ctx, t, `document.querySelector("button[type=submit]").click()`, nil)
	page.waitFor(ctx, t, "the consent page", `document.readyState === "complete" && !!document.querySelector("button[value=approve]")`)
	var text string
	page.eval(ctx, t, `document.body.innerText`, &text)
	for _, want := range []string{"Charger Display", "Charger status and active sessions", codes.userCode, "Approve", "Deny"} {
		if !strings.Contains(text, want) {
			t.Errorf("the consent page lacks %q:\n%s", want, text)
		}
	}
	var radius string
	page.eval(ctx, t, `getComputedStyle(document.querySelector("main")).borderRadius`, &radius)
	if radius != "16px" {
		t.Errorf("the consent page's style was not applied (border-radius %q): blocked by the CSP?", radius)
	}
	screenshot("device-consent-page.png")
	page.eval(ctx, t, `document.querySelector("button[value=approve]").click()`, nil)
	page.waitFor(ctx, t, "the outcome page", `document.readyState === "complete" && document.body.innerText.includes("Device connected")`)
	screenshot("device-approved.png")

	r := mustPoll(t, g.base, codes.deviceCode)
	if r.status != 200 {
		t.Fatalf("poll after approval: %d %s", r.status, r.body)
	}
	checkNoStore(t, r)
	tok := r.decode(t)
	access, _ := tok["access_token"].(string)
	if tok["token_type"] != "Bearer" || tok["scope"] != "chargers:read" || !strings.HasPrefix(access, "tga_") ||
		!strings.HasPrefix(fmt.Sprint(tok["refresh_token"]), "tgr_") {
		t.Errorf("token response %s", r.body)
	}
	if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+access); r.status != 200 {
		t.Errorf("the device's access token at the guard: %d %s", r.status, r.body)
	}
	if got := g.chargers.last(t).Header.Get("X-Authenticated-Userid"); got != "device-user" {
		t.Errorf("backend saw user %q, want device-user", got)
	}
	expectOAuthError(t, mustPoll(t, g.base, codes.deviceCode), 400, "invalid_grant")

	// The approval is a connected app the user can see.
	if grants := listGrants(t, g, bearerUser(t, "device-user")...); len(grants) != 1 || grants[0].ClientID != "charger-display" {
		t.Errorf("connected apps after approval: %+v", grants)
	}
}

// requireChromium skips without Chromium, unless TOKENGATE_REQUIRE_BROWSER=1.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("TOKENGATE_REQUIRE_BROWSER") == "1" {
			t.Fatalf("TOKENGATE_REQUIRE_BROWSER=1 but %s is missing: apt-get install -y chromium", chromiumPath)
		}
		t.Skipf("%s is missing (apt-get install -y chromium); set TOKENGATE_REQUIRE_BROWSER=1 to fail instead", chromiumPath)
	}
}

// TestDeviceRacingPolls: after approval, of racing polls exactly one gets
// the tokens; the others get invalid_grant.
func TestDeviceRacingPolls(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, deviceClients)
		codes := deviceStart(t, g.base, "")
		deviceDecide(t, g.base, codes.userCode, "user-device-race", "approve")

		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			wins   int
			others = map[string]int{}
		)
		start := make(chan struct{})
		for range racers {
			wg.Go(func() {
				<-start
				r, err := devicePoll(http.DefaultClient, g.base, codes.deviceCode)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Error(err)
				case r.status == 200:
					wins++
				default:
					others[fmt.Sprintf("%d %s", r.status, r.decode(t)["error"])]++
				}
			})
		}
		close(start)
		wg.Wait()
		if wins != 1 || others["400 invalid_grant"] != racers-1 {
			t.Errorf("%d of %d racing polls got tokens, the others %v; want 1 and the rest 400 invalid_grant", wins, racers, others)
		}
	})
}

// TestDeviceDeniedAndSlowDown: polling faster than the interval is
// slow_down; after the user denies, every poll is access_denied (400).
// A client without the grant is unauthorized_client at both endpoints.
func TestDeviceDeniedAndSlowDown(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", deviceClients)
	codes := deviceStart(t, g.base, "chargers:read sessions:read")

	begun := time.Now()
	expectOAuthError(t, mustPoll(t, g.base, codes.deviceCode), 400, "authorization_pending")
	second := mustPoll(t, g.base, codes.deviceCode)
	// The interval is 5 s: two polls begun and answered within it are
	// certainly too fast. On a machine so slow that they took longer, the
	// second may be pending again, and slow_down is left to the unit tests.
	if took := time.Since(begun); took < 5*time.Second {
		expectOAuthError(t, second, 400, "slow_down")
	} else {
		t.Logf("two polls took %v, more than the interval; slow_down not checked", took)
	}

	page := deviceDecide(t, g.base, codes.userCode, "user-device-deny", "deny")
	if !strings.Contains(page.body, "Request denied") {
		t.Errorf("outcome page after deny: %.300s", page.body)
	}
	for range 2 {
		expectOAuthError(t, mustPoll(t, g.base, codes.deviceCode), 400, "access_denied")
	}

	home := append(basicAuth("home-app", homeSecret), "Content-Type", "application/x-www-form-urlencoded")
	r := do(t, "POST", g.base+"/oauth/device_authorization", "scope=chargers:read", home...)
	expectOAuthError(t, r, 400, "unauthorized_client")
	r = do(t, "POST", g.base+"/oauth/token", url.Values{"grant_type": {deviceGrantType}, "device_code": {codes.deviceCode}}.Encode(), home...)
	expectOAuthError(t, r, 400, "unauthorized_client")

	// A confidential device client authenticates as at the token endpoint.
	box := append(basicAuth("charger-box", "box-secret"), "Content-Type", "application/x-www-form-urlencoded")
	if r := do(t, "POST", g.base+"/oauth/device_authorization", "", box...); r.status != 200 {
		t.Errorf("confidential client: %d %s", r.status, r.body)
	}
	wrong := append(basicAuth("charger-box", "wrong"), "Content-Type", "application/x-www-form-urlencoded")
	expectOAuthError(t, do(t, "POST", g.base+"/oauth/device_authorization", "", wrong...), 401, "invalid_client")
}

// TestDeviceExpired: once device_code_ttl has passed, the poll is
// expired_token and the code no longer opens the consent page.
func TestDeviceExpired(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", deviceClients+"\n\t\tdevice_code_ttl 1s")
	form := url.Values{"client_id": {"charger-display"}}
	r := do(t, "POST", g.base+"/oauth/device_authorization", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.status != 200 || r.decode(t)["expires_in"] != float64(1) {
		t.Fatalf("device authorization with device_code_ttl 1s: %d %s", r.status, r.body)
	}
	m := r.decode(t)
	deviceCode, userCode := m["device_code"].(string), m["user_code"].(string)
	var last response
	eventually(t, readyTimeout, "the device code expires", func() bool {
		last = mustPoll(t, g.base, deviceCode)
		code := last.decode(t)["error"]
		if code != "expired_token" && code != "authorization_pending" && code != "slow_down" {
			t.Fatalf("poll before expiry: %d %s", last.status, last.body)
		}
		return code == "expired_token"
	})
	expectOAuthError(t, last, 400, "expired_token")
	page := do(t, "GET", g.base+"/oauth/device?user_code="+userCode, "", "Authorization", "Bearer "+userJWT(t, "user-device-expired"))
	if page.status != 400 || !strings.Contains(page.body, "not valid or has expired") {
		t.Errorf("verification page for an expired code: %d %.300s", page.status, page.body)
	}
}

// TestDevicePendingSurvivesRestart: a device authorization made before a
// restart is still pending after it, and can be approved and polled.
func TestDevicePendingSurvivesRestart(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", deviceClients)
	codes := deviceStart(t, g.base, "chargers:read")

	stopCaddy(t)
	loadCaddyfile(t, g.caddyfile)
	waitReady(t, g.base+"/")

	expectOAuthError(t, mustPoll(t, g.base, codes.deviceCode), 400, "authorization_pending")
	deviceDecide(t, g.base, codes.userCode, "user-device-restart", "approve")
	if r := mustPoll(t, g.base, codes.deviceCode); r.status != 200 {
		t.Errorf("poll after restart and approval: %d %s", r.status, r.body)
	}
}

// TestDeviceAcrossInstances: two instances on one PostgreSQL database,
// this process's Caddy (a) and a caddy process of its own (b). The device
// asks a for codes, the user approves on b's verification page, and the
// device's next poll at a gets the tokens.
func TestDeviceAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	g, adminURL := startGatewayWithAdmin(t, "postgres "+dsn, deviceClients)
	b := startCaddyProcess(t, func(port, adminPort int) string {
		return strings.Replace(g.config(port), "admin "+strings.TrimPrefix(adminURL, "http://"), fmt.Sprintf("admin 127.0.0.1:%d", adminPort), 1)
	})

	codes := deviceStart(t, g.base, "chargers:read")
	expectOAuthError(t, mustPoll(t, g.base, codes.deviceCode), 400, "authorization_pending")
	deviceDecide(t, b.base, codes.userCode, "user-device-nodes", "approve")
	r := mustPoll(t, g.base, codes.deviceCode)
	if r.status != 200 {
		t.Fatalf("poll at a after approval at b: %d %s", r.status, r.body)
	}
	access := r.decode(t)["access_token"].(string)
	if r := do(t, "GET", b.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+access); r.status != 200 {
		t.Errorf("the token at b's guard: %d", r.status)
	}
	// Issued once, whichever instance is asked next.
	if r, err := devicePoll(http.DefaultClient, b.base, codes.deviceCode); err != nil || r.status != 400 || !strings.Contains(r.body, "invalid_grant") {
		t.Errorf("a second poll, at b: %v %d %s; want invalid_grant", err, r.status, r.body)
	}
}

// TestDeviceLogSecrecy: with the access log on, every logger at DEBUG and
// the audit log in a file of its own, a device flow (the verification page
// opened with ?user_code= with and without a session, approval, polls)
// leaves no device code, user code, token or user JWT in any line; the
// verification page's access log lines carry user_code=REDACTED, and the
// login redirect's return_to is redacted too. The audit log records the
// approval and the issue under the device_code grant.
func TestDeviceLogSecrecy(t *testing.T) {
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
	g := newGateway(t, "sqlite "+dir+"/tg.db", deviceClients, logs, func(c string) string {
		c = strings.Replace(c, "audience authenticated", "audience authenticated\n\t\t\tlogin_url https://app.example.com/login", 1)
		return strings.Replace(c, "\ttokengate_endpoints\n",
			"\tlog {\n\t\toutput file "+accessFile+"\n\t\tformat json\n\t}\n\ttokengate_endpoints\n", 1)
	})
	g.start(t)

	codes := deviceStart(t, g.base, "chargers:read")
	user := "device-log-user"
	jwt := userJWT(t, user)
	if r, err := send(browserNoRedirect, "GET", codes.complete, ""); err != nil || r.status != http.StatusFound ||
		!strings.Contains(r.header.Get("Location"), url.QueryEscape(codes.userCode)) {
		t.Fatalf("verification page without a session: %v %d %q, want a login redirect keeping the code", err, r.status, r.header.Get("Location"))
	}
	r := do(t, "GET", codes.complete, "", "Authorization", "Bearer "+jwt)
	if r.status != 200 {
		t.Fatalf("verification page: %d", r.status)
	}
	form := consentForm(t, r.body)
	form.Set("decision", "approve")
	if r := do(t, "POST", g.base+"/oauth/device", form.Encode(), "Authorization", "Bearer "+jwt, "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
		t.Fatalf("approve: %d", r.status)
	}
	tok := mustPoll(t, g.base, codes.deviceCode).decode(t)
	stopCaddy(t) // flushes and closes the log files

	var got []string
	for _, l := range logLines(t, auditFile) {
		got = append(got, fmt.Sprint(l["msg"]))
		if l["grant"] != "device_code" || l["user_id"] != user || l["client_id"] != "charger-display" {
			t.Errorf("audit line %v: want grant device_code, the user and the client", l)
		}
	}
	if want := []string{"authorization granted", "token issued"}; !slices.Equal(got, want) {
		t.Errorf("audit events %q, want %q", got, want)
	}
	var pageLines []string
	for _, l := range logLines(t, accessFile) {
		req, _ := l["request"].(map[string]any)
		if uri, _ := req["uri"].(string); strings.HasPrefix(uri, "/oauth/device?") {
			pageLines = append(pageLines, uri)
			if loc := fmt.Sprint(l["resp_headers"].(map[string]any)["Location"]); l["status"] == float64(302) && !strings.Contains(loc, "return_to=REDACTED") {
				t.Errorf("login redirect logged with Location %s", loc)
			}
		}
	}
	if want := []string{"/oauth/device?user_code=REDACTED", "/oauth/device?user_code=REDACTED"}; !slices.Equal(pageLines, want) {
		t.Errorf("access log lines of the verification page: %q, want %q", pageLines, want)
	}
	secrets := []string{codes.deviceCode, codes.userCode, strings.ReplaceAll(codes.userCode, "-", ""), url.QueryEscape(codes.userCode),
		jwt, fmt.Sprint(tok["access_token"]), fmt.Sprint(tok["refresh_token"]), form.Get("csrf_token")}
	for _, path := range []string{allFile, accessFile, auditFile} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(raw), s) || len(s) > 12 && strings.Contains(string(raw), s[4:]) {
				t.Errorf("%s contains a secret of the flow (%.6s...)", filepath.Base(path), s)
			}
		}
	}
}

// TestDeviceStoredClient: a client added through the admin API with the
// device grant in its grant_types runs the grant as a Caddyfile client
// does, and the metadata lists the grant once such a client exists.
func TestDeviceStoredClient(t *testing.T) {
	g, adminURL := startGatewayWithAdmin(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients)
	grants := func() string {
		return fmt.Sprint(do(t, "GET", g.base+"/.well-known/oauth-authorization-server", "").decode(t)["grant_types_supported"])
	}
	if got := grants(); strings.Contains(got, deviceGrantType) {
		t.Errorf("metadata lists the device grant with no client that may use it: %s", got)
	}
	adminAPI{adminURL}.addClient(t, `{"client_id":"stored-tv","name":"Stored TV","public":true,"scopes":["chargers:read"],
		"grant_types":["`+deviceGrantType+`","refresh_token"]}`)
	if got := grants(); !strings.Contains(got, deviceGrantType) {
		t.Errorf("metadata after adding a device client: %s, want the device grant", got)
	}
	r := do(t, "POST", g.base+"/oauth/device_authorization", "client_id=stored-tv", "Content-Type", "application/x-www-form-urlencoded")
	if r.status != 200 {
		t.Fatalf("device authorization for a stored client: %d %s", r.status, r.body)
	}
	m := r.decode(t)
	deviceDecide(t, g.base, m["user_code"].(string), "user-device-stored", "approve")
	poll := url.Values{"grant_type": {deviceGrantType}, "device_code": {m["device_code"].(string)}, "client_id": {"stored-tv"}}
	if r := do(t, "POST", g.base+"/oauth/token", poll.Encode(), "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
		t.Errorf("poll for a stored client: %d %s", r.status, r.body)
	}
}
