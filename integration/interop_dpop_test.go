package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// interopDPoPClient is the public client interop/dpop.mjs uses.
const interopDPoPClient = `
		client dpop-interop {
			name "DPoP Interop"
			redirect_uri http://127.0.0.1/callback
			scopes sessions:read
		}`

// wholeToken matches more of an access or refresh token than the prefix
// the scripts may print.
var wholeToken = regexp.MustCompile(`tg[ar]_[A-Za-z0-9_-]{12,}`)

// interopDPoPSummary is the last line dpop.mjs prints.
type interopDPoPSummary struct {
	Alg        string        `json:"alg"`
	Algs       []string      `json:"dpop_signing_alg_values_supported"`
	Exchange   interopTokens `json:"exchange"`
	API        interopCall   `json:"api"`
	APIOther   interopCall   `json:"api_other_key"`
	APIBearer  interopCall   `json:"api_as_bearer"`
	Introspect struct {
		Active      bool    `json:"active"`
		TokenType   *string `json:"token_type"`
		CnfJKTIsKey bool    `json:"cnf_jkt_is_key"`
	} `json:"introspection"`
	RefreshWithoutProof interopRefusal `json:"refresh_without_proof"`
	RefreshOtherKey     interopRefusal `json:"refresh_other_key"`
	Refresh             struct {
		interopTokens
		NewAccessToken bool `json:"new_access_token"`
	} `json:"refresh"`
	APIAfterRefresh interopCall `json:"api_after_refresh"`
}

// interopCall is a protected resource request's outcome as dpop.mjs saw it.
type interopCall struct {
	Status          int    `json:"status"`
	WWWAuthenticate string `json:"www_authenticate"`
	Challenges      []struct {
		Scheme string  `json:"scheme"`
		Error  *string `json:"error"`
		Algs   *string `json:"algs"`
	} `json:"challenges"`
}

// interopRefusal is a refused token request: the error code oauth4webapi read.
type interopRefusal struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// TestInteropOAuth4WebAPIDPoP runs a public client with DPoP through
// oauth4webapi (interop/dpop.mjs), for ES256 and RS256 keys: the code
// exchange binds the tokens, the guard takes the access token with a
// proof of the key only, introspection names the key, and the refresh
// token is bound to it (RFC 9449 5, 6.2, 7).
func TestInteropOAuth4WebAPIDPoP(t *testing.T) {
	node := requireInteropNode(t)
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, interopDPoPClient)
		// The user has consented: the authorization URL answers with the code.
		authorizeJSON(t, g, interopUser, "dpop-interop", "http://127.0.0.1/callback", "sessions:read", oauth2.GenerateVerifier())
		// Not EdDSA: oauth4webapi signs with an Ed25519 key under the
		// alg "Ed25519" (RFC 9864), not "EdDSA", the name the accepted
		// list uses (docs/dpop.md).
		for _, alg := range []string{"ES256", "RS256"} {
			t.Run(alg, func(t *testing.T) {
				seen := g.sessions.count()
				line, output := runInteropScript(t, g, node, "dpop.mjs",
					"INTEROP_ISSUER="+g.base,
					"INTEROP_CLIENT_ID=dpop-interop",
					"INTEROP_REDIRECT_URI=http://127.0.0.1/callback",
					"INTEROP_SCOPE=sessions:read",
					"INTEROP_API_URL="+g.base+"/functions/v1/api/sessions",
					"INTEROP_ALG="+alg,
				)
				var s interopDPoPSummary
				if err := json.Unmarshal([]byte(line), &s); err != nil {
					t.Fatalf("summary %q: %v", line, err)
				}
				if s.Alg != alg || strings.Join(s.Algs, " ") != "ES256 RS256 EdDSA" {
					t.Errorf("alg %q, metadata algs %v", s.Alg, s.Algs)
				}
				for name, tok := range map[string]interopTokens{"exchange": s.Exchange, "refresh": s.Refresh.interopTokens} {
					// oauth4webapi gives token_type in lower case.
					if tok.TokenType != "dpop" || tok.ExpiresIn != 3600 || !strings.HasPrefix(tok.AccessTokenPrefix, "tga_") ||
						!strings.HasPrefix(tok.RefreshTokenPrefix, "tgr_") {
						t.Errorf("%s: %+v", name, tok)
					}
				}
				if s.API.Status != 200 || s.APIAfterRefresh.Status != 200 || !s.Refresh.NewAccessToken {
					t.Errorf("API with a proof: %d, after the refresh: %d (new token %v)", s.API.Status, s.APIAfterRefresh.Status, s.Refresh.NewAccessToken)
				}
				// oauth4webapi parsed the challenge of a proof of another key.
				if c := s.APIOther; c.Status != 401 || len(c.Challenges) != 1 || c.Challenges[0].Scheme != "dpop" ||
					c.Challenges[0].Error == nil || *c.Challenges[0].Error != "invalid_dpop_proof" ||
					c.Challenges[0].Algs == nil || *c.Challenges[0].Algs != "ES256 RS256 EdDSA" {
					b, _ := json.Marshal(c)
					t.Errorf("proof of another key: %s", b)
				}
				if c := s.APIBearer; c.Status != 401 || c.WWWAuthenticate != dpopTokenChallenge {
					t.Errorf("bound token as Bearer: %d %q", c.Status, c.WWWAuthenticate)
				}
				if in := s.Introspect; !in.Active || in.TokenType == nil || *in.TokenType != "DPoP" || !in.CnfJKTIsKey {
					t.Errorf("introspection: %+v", in)
				}
				if s.RefreshWithoutProof.Error != "invalid_grant" || s.RefreshOtherKey.Error != "invalid_grant" {
					t.Errorf("refresh without a proof: %+v, with another key: %+v", s.RefreshWithoutProof, s.RefreshOtherKey)
				}
				if n := g.sessions.count() - seen; n != 2 {
					t.Errorf("the upstream got %d requests, want the 2 with good proofs", n)
				}
				if wholeToken.MatchString(output) {
					t.Errorf("dpop.mjs printed more of a token than its prefix")
				}
			})
		}
	})
}

// runInteropScript runs an interop script with the given environment as
// client.mjs is run: it answers the authorization URL of the script's
// first line with the callback URL the consenting user is sent to, and
// returns the script's last line and everything it printed.
func runInteropScript(t *testing.T, g *gateway, node, script string, env ...string) (last, output string) {
	t.Helper()
	// Generous: it bounds a hung client, not how fast Node.js runs.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = "interop"
	cmd.Env = append(os.Environ(), env...)
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
		t.Fatalf(format+"\n%s: %v\nstderr: %s", append(args, script, err, stderr.String())...)
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
	r, err := send(interopNoRedirect, "GET", first.AuthorizationURL, "", "Authorization", "Bearer "+userJWT(t, interopUser))
	if err != nil {
		failed("%v", err)
	}
	callback := r.header.Get("Location")
	if r.status != http.StatusFound || !strings.Contains(callback, "code=") {
		failed("authorize: got %d Location %q, want 302 with a code: %.300s", r.status, callback, r.body)
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
		t.Fatalf("%s: %v\nstderr: %s\nstdout: %s", script, err, stderr.String(), rest.String())
	}
	lines := strings.Split(strings.TrimSpace(rest.String()), "\n")
	last = lines[len(lines)-1]
	t.Logf("%s summary: %s", script, last)
	return last, rest.String() + stderr.String()
}
