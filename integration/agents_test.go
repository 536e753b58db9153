package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// startAgentGateway starts the gateway with open dynamic registration on
// /oauth/register, the admin endpoint, and two routes whose guards name
// their resources: /mcp (sessions:read on GET and POST) and /reports
// (energy:read). It returns the gateway, the admin API and the two
// resource identifiers.
func startAgentGateway(t *testing.T, database string) (g *gateway, admin adminAPI, mcp, reports string) {
	t.Helper()
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	issuer := regexp.MustCompile(`issuer (http://127\.0\.0\.1:\d+)`)
	g = newGateway(t, database, "\n\t\tregistration open\n", "", func(c string) string {
		base := issuer.FindStringSubmatch(c)[1]
		c = strings.Replace(c, "admin off", "admin "+adminAddr, 1)
		return strings.Replace(c, "\ttokengate_endpoints\n", `	tokengate_endpoints {
		registration /oauth/register
	}
	route /mcp* {
		tokengate {
			resource `+base+`/mcp
			GET sessions:read
			POST sessions:read
		}
		reverse_proxy `+g.other.hostPort()+`
	}
	route /reports* {
		tokengate {
			resource `+base+`/reports
			* energy:read
		}
		reverse_proxy `+g.other.hostPort()+`
	}
`, 1)
	})
	g.start(t)
	return g, adminAPI{"http://" + adminAddr}, g.base + "/mcp", g.base + "/reports"
}

var resourceMetadataParam = regexp.MustCompile(`, resource_metadata="([^"]+)"$`)

// TestAgentDiscoveryAndRegistration is the whole story of a generic
// client, as the MCP authorization flow runs it: refused without a
// token, it follows resource_metadata to the protected resource
// metadata (RFC 9728), then the authorization server metadata (RFC
// 8414), registers itself over plain HTTP (RFC 7591), runs the code flow
// with PKCE for the resource (RFC 8707) with golang.org/x/oauth2 and
// calls the API; the token is good for that resource only. Its
// registration access token reads its registration (RFC 7592) and no
// other does; the admin API lists it and removes it, which ends its
// refresh token and its registration.
func TestAgentDiscoveryAndRegistration(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g, admin, mcp, reports := startAgentGateway(t, database)
		ctx := context.Background()

		// 1. An unauthenticated call: 401 pointing to the metadata.
		r := do(t, "POST", mcp, `{"jsonrpc":"2.0","method":"initialize","id":1}`, "Content-Type", "application/json")
		challenge := r.header.Get("WWW-Authenticate")
		m := resourceMetadataParam.FindStringSubmatch(challenge)
		if r.status != 401 || m == nil || !strings.HasPrefix(challenge, `Bearer realm="tokengate", resource_metadata=`) {
			t.Fatalf("unauthenticated call: %d WWW-Authenticate %q", r.status, challenge)
		}
		if m[1] != g.base+"/.well-known/oauth-protected-resource/mcp" {
			t.Fatalf("resource_metadata %q", m[1])
		}

		// 2. The protected resource metadata (RFC 9728 3).
		r = do(t, "GET", m[1], "")
		prm := r.decode(t)
		if r.status != 200 || prm["resource"] != mcp || fmt.Sprint(prm["authorization_servers"]) != "["+g.base+"]" ||
			fmt.Sprint(prm["scopes_supported"]) != "[sessions:read]" || fmt.Sprint(prm["bearer_methods_supported"]) != "[header]" {
			t.Fatalf("protected resource metadata: %d %s", r.status, r.body)
		}
		// RFC 9728 3.3: the resource is the one the URL was built from.
		issuer := prm["authorization_servers"].([]any)[0].(string)

		// 3. The authorization server metadata (RFC 8414 3).
		r = do(t, "GET", issuer+"/.well-known/oauth-authorization-server", "")
		asm := r.decode(t)
		regEndpoint, _ := asm["registration_endpoint"].(string)
		if r.status != 200 || asm["issuer"] != issuer || regEndpoint != g.base+"/oauth/register" {
			t.Fatalf("authorization server metadata: %d %s", r.status, r.body)
		}

		// 4. Registration (RFC 7591 3), a public client on loopback.
		r = do(t, "POST", regEndpoint, `{"client_name":"Agent","redirect_uris":["http://127.0.0.1/callback"],`+
			`"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"scope":"sessions:read"}`,
			"Content-Type", "application/json")
		checkNoStore(t, r)
		reg := r.decode(t)
		clientID, _ := reg["client_id"].(string)
		regToken, _ := reg["registration_access_token"].(string)
		regURI, _ := reg["registration_client_uri"].(string)
		if r.status != 201 || clientID == "" || regToken == "" || regURI != regEndpoint+"/"+clientID || reg["client_secret"] != nil {
			t.Fatalf("registration: %d %s", r.status, r.body)
		}

		// 5. Code flow with PKCE for the resource, golang.org/x/oauth2.
		conf := &oauth2.Config{
			ClientID:    clientID,
			RedirectURL: "http://127.0.0.1:41234/callback", // any port on loopback (RFC 8252 7.3)
			Scopes:      []string{"sessions:read"},
			Endpoint: oauth2.Endpoint{AuthURL: asm["authorization_endpoint"].(string), TokenURL: asm["token_endpoint"].(string),
				AuthStyle: oauth2.AuthStyleInParams},
		}
		verifier := oauth2.GenerateVerifier()
		authURL := conf.AuthCodeURL("agent-state", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", mcp))
		user := []string{"Authorization", "Bearer " + userJWT(t, "alice")}
		page, err := send(browserNoRedirect, "GET", authURL, "", user...)
		if err != nil || page.status != 200 || !strings.Contains(page.body, "Agent") {
			t.Fatalf("consent page: %v %d %.300s", err, page.status, page.body)
		}
		form := consentForm(t, page.body)
		if form.Get("resource") != mcp {
			t.Fatalf("the consent form does not carry the resource: %v", form)
		}
		form.Set("decision", "approve")
		approved, err := send(browserNoRedirect, "POST", conf.Endpoint.AuthURL, form.Encode(),
			append(user, "Content-Type", "application/x-www-form-urlencoded")...)
		if err != nil {
			t.Fatal(err)
		}
		q := browserRedirectQuery(t, approved, "http://127.0.0.1:41234/callback")
		if q.Get("state") != "agent-state" || q.Get("iss") != issuer {
			t.Fatalf("callback %v", q)
		}
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", mcp))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}

		// 6. The API, with the token; the upstream learns the client.
		seen := g.other.count()
		r = do(t, "POST", mcp, `{"jsonrpc":"2.0","method":"initialize","id":1}`, "Authorization", "Bearer "+tok.AccessToken)
		if r.status != 200 || g.other.count() != seen+1 || g.other.last(t).Header.Get("X-Authenticated-Client-Id") != clientID {
			t.Fatalf("API call with the token: %d %s", r.status, r.body)
		}
		// A token for /mcp is not one for /reports (RFC 8707): 401 there,
		// pointing to that resource's metadata; a guard naming no resource
		// takes it.
		r = do(t, "GET", reports, "", "Authorization", "Bearer "+tok.AccessToken)
		if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="tokengate", error="invalid_token", resource_metadata="`+g.base+`/.well-known/oauth-protected-resource/reports"` {
			t.Errorf("the /mcp token at /reports: %d %q", r.status, r.header.Get("WWW-Authenticate"))
		}
		if r := do(t, "GET", g.base+"/functions/v1/api/sessions", "", "Authorization", "Bearer "+tok.AccessToken); r.status != 200 {
			t.Errorf("the /mcp token at a guard of no resource: %d", r.status)
		}
		// The refresh keeps the audience.
		refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if r := do(t, "GET", mcp, "", "Authorization", "Bearer "+refreshed.AccessToken); r.status != 200 {
			t.Errorf("the refreshed token at /mcp: %d", r.status)
		}

		// 7. RFC 7592: only the registration access token reads it.
		for name, headers := range map[string][]string{
			"no token":         nil,
			"a wrong token":    {"Authorization", "Bearer tgx_" + strings.Repeat("A", 49)},
			"its access token": {"Authorization", "Bearer " + refreshed.AccessToken},
		} {
			r := do(t, "GET", regURI, "", headers...)
			if r.status != 401 || !strings.Contains(r.body, `"error":"invalid_token"`) {
				t.Errorf("GET its registration with %s: %d %s", name, r.status, r.body)
			}
		}
		r = do(t, "GET", g.base+"/oauth/register/c_000000000000000000000000", "", "Authorization", "Bearer tgx_"+strings.Repeat("A", 49))
		if r.status != 401 || !strings.Contains(r.body, `"error":"invalid_token"`) {
			t.Errorf("GET a registration that does not exist: %d %s", r.status, r.body)
		}
		r = do(t, "GET", regURI, "", "Authorization", "Bearer "+regToken)
		if r.status != 200 || r.decode(t)["client_name"] != "Agent" {
			t.Errorf("GET its registration: %d %s", r.status, r.body)
		}

		// 8. The admin API lists it as registered, and removes it.
		r = admin.call(t, "GET", "/tokengate/clients/"+url.PathEscape(clientID), "")
		if r.status != 200 || r.decode(t)["source"] != "registration" {
			t.Fatalf("admin API: %d %s", r.status, r.body)
		}
		if r := admin.call(t, "GET", "/tokengate/clients", ""); !strings.Contains(r.body, `"client_id":"`+clientID+`"`) {
			t.Errorf("the admin API's list lacks the client: %s", r.body)
		}
		if r := admin.call(t, "DELETE", "/tokengate/clients/"+url.PathEscape(clientID), ""); r.status != 204 {
			t.Fatalf("admin DELETE: %d %s", r.status, r.body)
		}
		// The client is gone: it cannot even authenticate.
		if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token(); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("refresh after removal: %v, want invalid_client", err)
		}
		if r := do(t, "GET", regURI, "", "Authorization", "Bearer "+regToken); r.status != 401 {
			t.Errorf("its registration after removal: %d %s", r.status, r.body)
		}
	})
}

// TestRegistrationLimitAndToken: ten registrations an hour from one
// address, then 429 with Retry-After; with registration token, a
// registration without the initial access token is 401, and the
// metadata names the endpoint.
func TestRegistrationLimitAndToken(t *testing.T) {
	g, _, _, _ := startAgentGateway(t, "sqlite "+t.TempDir()+"/tg.db")
	body := `{"redirect_uris":["https://agent.example.com/cb"]}`
	for i := range 10 {
		if r := do(t, "POST", g.base+"/oauth/register", body, "Content-Type", "application/json"); r.status != 201 {
			t.Fatalf("registration %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := do(t, "POST", g.base+"/oauth/register", body, "Content-Type", "application/json")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("registration 11: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}

	t.Setenv("TEST_REGISTRATION_TOKEN", "iat-0123456789abcdef")
	g2 := newGateway(t, "sqlite "+t.TempDir()+"/tg.db", "\n\t\tregistration token {env.TEST_REGISTRATION_TOKEN}\n", "", func(c string) string {
		return strings.Replace(c, "\ttokengate_endpoints\n", "\ttokengate_endpoints {\n\t\tregistration /oauth/register\n\t}\n", 1)
	})
	g2.start(t)
	if r := do(t, "POST", g2.base+"/oauth/register", body, "Content-Type", "application/json"); r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="tokengate"` {
		t.Errorf("without the initial access token: %d %q %s", r.status, r.header.Get("WWW-Authenticate"), r.body)
	}
	if r := do(t, "POST", g2.base+"/oauth/register", body, "Content-Type", "application/json", "Authorization", "Bearer wrong"); r.status != 401 {
		t.Errorf("with a wrong one: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", g2.base+"/oauth/register", body, "Content-Type", "application/json", "Authorization", "Bearer iat-0123456789abcdef"); r.status != 201 {
		t.Errorf("with the initial access token: %d %s", r.status, r.body)
	}
}

// agentSummary is the last line interop/agent.mjs prints.
type agentSummary struct {
	UnauthenticatedStatus int      `json:"unauthenticated_status"`
	ResourceMetadata      string   `json:"resource_metadata"`
	Resource              string   `json:"resource"`
	ScopesSupported       []string `json:"scopes_supported"`
	RegistrationEndpoint  string   `json:"registration_endpoint"`
	Registration          struct {
		ClientID                   string `json:"client_id"`
		TokenEndpointAuthMethod    string `json:"token_endpoint_auth_method"`
		HasRegistrationAccessToken bool   `json:"has_registration_access_token"`
		RegistrationClientURI      string `json:"registration_client_uri"`
	} `json:"registration"`
	Token struct {
		TokenType         string `json:"token_type"`
		Scope             string `json:"scope"`
		AccessTokenPrefix string `json:"access_token_prefix"`
	} `json:"token"`
	APIStatus             int `json:"api_status"`
	APIStatusAfterRefresh int `json:"api_status_after_refresh"`
	RegistrationRead      struct {
		Status     int    `json:"status"`
		ClientID   string `json:"client_id"`
		ClientName string `json:"client_name"`
	} `json:"registration_read"`
}

// TestInteropOpenIDClientAgent is the story of
// TestAgentDiscoveryAndRegistration told by openid-client, an
// independent OAuth client, with its own discovery and dynamic client
// registration (interop/agent.mjs).
func TestInteropOpenIDClientAgent(t *testing.T) {
	node := requireInteropNode(t)
	if _, err := os.Stat("interop/node_modules/openid-client/package.json"); err != nil {
		if os.Getenv("TOKENGATE_REQUIRE_NODE") == "1" {
			t.Fatalf("openid-client is not installed (npm ci --prefix integration/interop): %v", err)
		}
		t.Skipf("openid-client is not installed (npm ci --prefix integration/interop): %v", err)
	}
	g, admin, mcp, _ := startAgentGateway(t, "sqlite "+t.TempDir()+"/tg.db")
	const callback = "http://127.0.0.1:43123/callback"

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "agent.mjs")
	cmd.Dir = "interop"
	cmd.Env = append(os.Environ(), "INTEROP_API_URL="+mcp, "INTEROP_REDIRECT_URI="+callback)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	failed := func(format string, args ...any) {
		t.Helper()
		stdin.Close()
		err := cmd.Wait()
		t.Fatalf(format+"\nagent.mjs: %v\nstderr: %s", append(args, err, stderr.String())...)
	}
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		failed("reading the authorization URL: %v (got %q)", err, line)
	}
	var first struct {
		AuthorizationURL string `json:"authorization_url"`
	}
	if err := json.Unmarshal([]byte(line), &first); err != nil || !strings.HasPrefix(first.AuthorizationURL, g.base+"/oauth/authorize?") {
		failed("first line %q (%v)", line, err)
	}
	if q, _ := url.ParseQuery(strings.SplitN(first.AuthorizationURL, "?", 2)[1]); q.Get("resource") != mcp || q.Get("code_challenge_method") != "S256" {
		failed("authorization URL %s: want resource %s and PKCE S256", first.AuthorizationURL, mcp)
	}

	// The user approves on the consent page.
	user := []string{"Authorization", "Bearer " + userJWT(t, "agent-user")}
	page, err := send(browserNoRedirect, "GET", first.AuthorizationURL, "", user...)
	if err != nil || page.status != 200 {
		failed("consent page: %v %d %.300s", err, page.status, page.body)
	}
	form := consentForm(t, page.body)
	form.Set("decision", "approve")
	approved, err := send(browserNoRedirect, "POST", g.base+"/oauth/authorize", form.Encode(),
		append(user, "Content-Type", "application/x-www-form-urlencoded")...)
	if err != nil || approved.status != http.StatusFound || !strings.HasPrefix(approved.header.Get("Location"), callback+"?") {
		failed("approval: %v %d %q", err, approved.status, approved.header.Get("Location"))
	}
	if _, err := stdin.Write([]byte(approved.header.Get("Location") + "\n")); err != nil {
		failed("writing the callback URL: %v", err)
	}
	stdin.Close()
	var rest bytes.Buffer
	if _, err := rest.ReadFrom(out); err != nil {
		failed("reading the summary: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent.mjs: %v\nstderr: %s\nstdout: %s", err, stderr.String(), rest.String())
	}
	lines := strings.Split(strings.TrimSpace(rest.String()), "\n")
	t.Logf("agent.mjs summary: %s", lines[len(lines)-1])
	var s agentSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatal(err)
	}

	if s.UnauthenticatedStatus != 401 || s.ResourceMetadata != g.base+"/.well-known/oauth-protected-resource/mcp" || s.Resource != mcp ||
		fmt.Sprint(s.ScopesSupported) != "[sessions:read]" || s.RegistrationEndpoint != g.base+"/oauth/register" {
		t.Errorf("discovery: %+v", s)
	}
	reg := s.Registration
	if !strings.HasPrefix(reg.ClientID, "c_") || reg.TokenEndpointAuthMethod != "none" || !reg.HasRegistrationAccessToken ||
		reg.RegistrationClientURI != g.base+"/oauth/register/"+reg.ClientID {
		t.Errorf("registration: %+v", reg)
	}
	if !strings.EqualFold(s.Token.TokenType, "bearer") || s.Token.Scope != "sessions:read" || !strings.HasPrefix(s.Token.AccessTokenPrefix, "tga_") ||
		s.APIStatus != 200 || s.APIStatusAfterRefresh != 200 {
		t.Errorf("tokens and API calls: %+v, API %d then %d", s.Token, s.APIStatus, s.APIStatusAfterRefresh)
	}
	if s.RegistrationRead.Status != 200 || s.RegistrationRead.ClientID != reg.ClientID || s.RegistrationRead.ClientName != "openid-client agent" {
		t.Errorf("RFC 7592 read: %+v", s.RegistrationRead)
	}
	if r := admin.call(t, "GET", "/tokengate/clients/"+url.PathEscape(reg.ClientID), ""); r.status != 200 || r.decode(t)["source"] != "registration" {
		t.Errorf("admin API: %d %s", r.status, r.body)
	}
	if strings.Contains(rest.String()+stderr.String(), "tgx_") {
		t.Error("agent.mjs printed a registration access token")
	}
}

// TestResourceMetadataAcrossReload: the protected resource metadata is
// the running config's. After a reload that renames a guard's resource,
// the old document is gone, the new one is served, and the guard's
// challenge points to it.
func TestResourceMetadataAcrossReload(t *testing.T) {
	g, _, mcp, _ := startAgentGateway(t, "sqlite "+t.TempDir()+"/tg.db")
	oldDoc := g.base + "/.well-known/oauth-protected-resource/mcp"
	if r := do(t, "GET", oldDoc, ""); r.status != 200 || !strings.Contains(r.body, `"resource":"`+mcp+`"`) {
		t.Fatalf("before the reload: %d %s", r.status, r.body)
	}
	assistant := g.base + "/assistant"
	loadCaddyfile(t, strings.Replace(g.caddyfile, "resource "+mcp+"\n", "resource "+assistant+"\n", 1))

	if r := do(t, "GET", oldDoc, ""); strings.Contains(r.body, `"resource"`) {
		t.Errorf("the old resource's metadata after the reload: %d %s", r.status, r.body)
	}
	r := do(t, "GET", g.base+"/.well-known/oauth-protected-resource/assistant", "")
	if r.status != 200 || !strings.Contains(r.body, `"resource":"`+assistant+`"`) || !strings.Contains(r.body, `"scopes_supported":["sessions:read"]`) {
		t.Errorf("the new resource's metadata: %d %s", r.status, r.body)
	}
	r = do(t, "GET", mcp, "")
	if want := `Bearer realm="tokengate", resource_metadata="` + g.base + `/.well-known/oauth-protected-resource/assistant"`; r.status != 401 || r.header.Get("WWW-Authenticate") != want {
		t.Errorf("the guard after the reload: %d %q, want %q", r.status, r.header.Get("WWW-Authenticate"), want)
	}
}
