package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// interopClients registers the confidential client the oauth4webapi client
// (interop/client.mjs) uses. Its secret has characters that RFC 6749 2.3.1
// form-encodes in HTTP Basic credentials.
const interopClients = `
		client interop-app {
			name "Interop App"
			secret "interop s3cret:+/&=%~"
			redirect_uri https://interop.example.com/callback
			scopes sessions:read chargers:read
		}`

const (
	interopClientID = "interop-app"
	interopSecret   = "interop s3cret:+/&=%~"
	interopRedirect = "https://interop.example.com/callback"
	interopUser     = "user-interop"
	interopScope    = "sessions:read"
)

// interopSummary is the last line client.mjs prints.
type interopSummary struct {
	AuthMethod    string        `json:"auth_method"`
	Discovery     string        `json:"discovery"`
	AuthResponse  string        `json:"auth_response"`
	IssInResponse bool          `json:"iss_in_response"`
	Exchange      interopTokens `json:"exchange"`
	APIStatus     int           `json:"api_status"`
	Introspection struct {
		Active    bool    `json:"active"`
		ClientID  *string `json:"client_id"`
		Scope     *string `json:"scope"`
		TokenType *string `json:"token_type"`
	} `json:"introspection"`
	Refresh                  interopTokens `json:"refresh"`
	APIStatusAfterRefresh    int           `json:"api_status_after_refresh"`
	RevokeAccess             string        `json:"revoke_access"`
	APIStatusAfterRevoke     int           `json:"api_status_after_revoke"`
	IntrospectionAfterRevoke struct {
		Active bool `json:"active"`
	} `json:"introspection_after_revoke"`
	RevokeRefresh             string `json:"revoke_refresh"`
	RefreshAfterRevoke        string `json:"refresh_after_revoke"`
	APIStatusFirstAfterRevoke int    `json:"api_status_first_after_revoke"`
}

type interopTokens struct {
	Status             string  `json:"status"`
	TokenType          string  `json:"token_type"`
	ExpiresIn          int     `json:"expires_in"`
	Scope              *string `json:"scope"`
	AccessTokenPrefix  string  `json:"access_token_prefix"`
	RefreshTokenPrefix string  `json:"refresh_token_prefix"`
	NewAccessToken     bool    `json:"new_access_token"`
	NewRefreshToken    bool    `json:"new_refresh_token"`
}

// interopNoRedirect returns redirects instead of following them.
var interopNoRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// requireInteropNode returns the node binary, skipping the test when node or
// the client's npm packages are missing, or failing it when
// TOKENGATE_REQUIRE_NODE=1 (CI).
func requireInteropNode(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("TOKENGATE_REQUIRE_NODE") == "1" {
			t.Fatalf(format+" (TOKENGATE_REQUIRE_NODE=1)", args...)
		}
		t.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH: %v", err)
	}
	if _, err := os.Stat("interop/node_modules/oauth4webapi/package.json"); err != nil {
		missing("interop/node_modules is not installed (npm ci --prefix integration/interop): %v", err)
	}
	return node
}

// TestInteropOAuth4WebAPI runs the authorization code flow, refresh,
// introspection and revocation with oauth4webapi, an OAuth client written
// elsewhere that checks the responses strictly (RFC 6749, 7009, 7636, 7662,
// 8414, 9207), with client_secret_post and client_secret_basic.
func TestInteropOAuth4WebAPI(t *testing.T) {
	node := requireInteropNode(t)
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, interopClients)
		interopRecordConsent(t, g)
		for _, method := range []string{"client_secret_post", "client_secret_basic"} {
			t.Run(method, func(t *testing.T) {
				seen := g.other.count()
				s, output := runInteropClient(t, g, node, method)

				if s.Discovery != "ok" || s.AuthResponse != "ok" || !s.IssInResponse {
					t.Errorf("discovery %q, authorization response %q, iss in response %v", s.Discovery, s.AuthResponse, s.IssInResponse)
				}
				for name, tok := range map[string]interopTokens{"exchange": s.Exchange, "refresh": s.Refresh} {
					// expires_in is the access token's remaining lifetime
					// (access_token_ttl 1h), in whole seconds.
					if tok.Status != "ok" || !strings.EqualFold(tok.TokenType, "bearer") || tok.ExpiresIn != 3600 ||
						tok.Scope == nil || *tok.Scope != interopScope ||
						!strings.HasPrefix(tok.AccessTokenPrefix, "tga_") || !strings.HasPrefix(tok.RefreshTokenPrefix, "tgr_") {
						b, _ := json.Marshal(tok)
						t.Errorf("%s: %s", name, b)
					}
				}
				if !s.Refresh.NewAccessToken || !s.Refresh.NewRefreshToken {
					t.Errorf("refresh did not rotate: %+v", s.Refresh)
				}
				if s.APIStatus != 200 || s.APIStatusAfterRefresh != 200 {
					t.Errorf("API call with the access token: %d, with the refreshed one: %d", s.APIStatus, s.APIStatusAfterRefresh)
				}
				in := s.Introspection
				if !in.Active || in.ClientID == nil || *in.ClientID != interopClientID || in.Scope == nil || *in.Scope != interopScope {
					t.Errorf("introspection: %+v", in)
				}
				if s.RevokeAccess != "ok" || s.RevokeRefresh != "ok" {
					t.Errorf("revocation: access %q, refresh %q", s.RevokeAccess, s.RevokeRefresh)
				}
				if s.APIStatusAfterRevoke != 401 || s.IntrospectionAfterRevoke.Active {
					t.Errorf("revoked access token: API %d, introspection active %v", s.APIStatusAfterRevoke, s.IntrospectionAfterRevoke.Active)
				}
				if s.RefreshAfterRevoke != "invalid_grant" || s.APIStatusFirstAfterRevoke != 401 {
					t.Errorf("after revoking the refresh token: refresh %q, first access token %d", s.RefreshAfterRevoke, s.APIStatusFirstAfterRevoke)
				}

				// The API route forwards the Authorization header to its
				// upstream, which so learns both access tokens the client
				// used; both must now be refused by the guard.
				if n := g.other.count() - seen; n != 2 {
					t.Fatalf("the upstream got %d requests, want 2 (the revoked tokens must not reach it)", n)
				}
				g.other.mu.Lock()
				reqs := append([]*http.Request(nil), g.other.seen[seen:]...)
				g.other.mu.Unlock()
				for i, want := range []string{s.Exchange.AccessTokenPrefix, s.Refresh.AccessTokenPrefix} {
					tok, ok := strings.CutPrefix(reqs[i].Header.Get("Authorization"), "Bearer ")
					if !ok || !strings.HasPrefix(tok, want) {
						t.Fatalf("upstream request %d: Authorization does not carry the %s... token", i, want)
					}
					if strings.Contains(output, tok) {
						t.Errorf("client.mjs printed a whole access token")
					}
					for _, path := range []string{"/forward", "/functions/v1/api/sessions"} {
						if r := do(t, "GET", g.base+path, "", "Authorization", "Bearer "+tok); r.status != 401 {
							t.Errorf("revoked access token %s... at %s: %d %s", want, path, r.status, r.body)
						}
					}
				}
			})
		}
	})
}

// interopRecordConsent has the user consent to interopScope for the client
// (the dashboard flow records consent), so that the browser
// flow's GET answers with a redirect carrying the code.
func interopRecordConsent(t *testing.T, g *gateway) {
	t.Helper()
	sum := sha256.Sum256([]byte(strings.Repeat("consent-verifier-", 4)))
	body, err := json.Marshal(map[string]string{
		"client_id": interopClientID, "redirect_uri": interopRedirect, "response_type": "code",
		"scope": interopScope, "state": "consent", "code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]),
		"code_challenge_method": "S256",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, "POST", g.base+"/oauth/authorize", string(body),
		"Authorization", "Bearer "+userJWT(t, interopUser), "Content-Type", "application/json")
	if r.status != 200 {
		t.Fatalf("recording consent: %d %s", r.status, r.body)
	}
}

// runInteropClient runs client.mjs, answers its authorization URL with the
// callback URL tokengate redirects the consenting user to, and returns its
// summary and everything it printed (to check that no whole token is in it).
func runInteropClient(t *testing.T, g *gateway, node, method string) (s interopSummary, output string) {
	t.Helper()
	// Generous: it bounds a hung client, not how fast Node.js starts and
	// runs the flow on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = "interop"
	cmd.Env = append(os.Environ(),
		"INTEROP_ISSUER="+g.base,
		"INTEROP_CLIENT_ID="+interopClientID,
		"INTEROP_CLIENT_SECRET="+interopSecret,
		"INTEROP_AUTH_METHOD="+method,
		"INTEROP_REDIRECT_URI="+interopRedirect,
		"INTEROP_SCOPE="+interopScope,
		"INTEROP_API_URL="+g.base+"/forward",
	)
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
		t.Fatalf(format+"\nclient.mjs: %v\nstderr: %s", append(args, err, stderr.String())...)
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
		failed("first line %q: want {\"authorization_url\":\"%s/oauth/authorize?...\"} (%v)", line, g.base, err)
	}
	q, err := url.ParseQuery(strings.SplitN(first.AuthorizationURL, "?", 2)[1])
	if err != nil || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("state") == "" {
		failed("authorization URL %s: want PKCE S256 and a state (%v)", first.AuthorizationURL, err)
	}

	// The user has consented to these scopes: straight back with the code.
	r, err := send(interopNoRedirect, "GET", first.AuthorizationURL, "", "Authorization", "Bearer "+userJWT(t, interopUser))
	if err != nil {
		failed("%v", err)
	}
	callback := r.header.Get("Location")
	if r.status != http.StatusFound || !strings.HasPrefix(callback, interopRedirect+"?") {
		failed("authorize: got %d Location %q, want 302 to %s: %.300s", r.status, callback, interopRedirect, r.body)
	}
	if _, err := stdin.Write([]byte(callback + "\n")); err != nil {
		failed("writing the callback URL: %v", err)
	}
	stdin.Close()

	var rest bytes.Buffer
	if _, err := rest.ReadFrom(out); err != nil {
		failed("reading the summary: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client.mjs (%s): %v\nstderr: %s\nstdout: %s", method, err, stderr.String(), rest.String())
	}
	lines := strings.Split(strings.TrimSpace(rest.String()), "\n")
	last := lines[len(lines)-1]
	t.Logf("client.mjs summary: %s", last)
	if err := json.Unmarshal([]byte(last), &s); err != nil {
		t.Fatalf("summary %q: %v", last, err)
	}
	if s.AuthMethod != method {
		t.Fatalf("client.mjs used %q, want %q", s.AuthMethod, method)
	}
	return s, rest.String() + stderr.String()
}
