package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// oidcInteropSummary is the last line interop/oidc.mjs prints.
type oidcInteropSummary struct {
	AuthMethod string `json:"auth_method"`
	Discovery  string `json:"discovery"`
	Exchange   struct {
		Status             string             `json:"status"`
		TokenType          string             `json:"token_type"`
		Scope              *string            `json:"scope"`
		AccessTokenPrefix  string             `json:"access_token_prefix"`
		RefreshTokenPrefix string             `json:"refresh_token_prefix"`
		IDToken            oidcIDTokenSummary `json:"id_token"`
		NonceMatches       bool               `json:"nonce_matches"`
	} `json:"exchange"`
	Userinfo struct {
		Sub   string  `json:"sub"`
		Email *string `json:"email"`
		Name  *string `json:"name"`
	} `json:"userinfo"`
	Refresh struct {
		Status          string              `json:"status"`
		NewAccessToken  bool                `json:"new_access_token"`
		NewRefreshToken bool                `json:"new_refresh_token"`
		IDToken         *oidcIDTokenSummary `json:"id_token"`
	} `json:"refresh"`
	UserinfoAfterRefresh struct {
		Sub string `json:"sub"`
	} `json:"userinfo_after_refresh"`
	Revoke              string `json:"revoke"`
	RefreshAfterRevoke  string `json:"refresh_after_revoke"`
	UserinfoAfterRevoke string `json:"userinfo_after_revoke"`
}

type oidcIDTokenSummary struct {
	Iss           string  `json:"iss"`
	Sub           string  `json:"sub"`
	Aud           string  `json:"aud"`
	AZP           *string `json:"azp"`
	AuthTime      *int64  `json:"auth_time"`
	Nonce         *string `json:"nonce"`
	HasAtHash     bool    `json:"has_at_hash"`
	Email         *string `json:"email"`
	EmailVerified *bool   `json:"email_verified"`
	Name          *string `json:"name"`
	Iat           int64   `json:"iat"`
	Exp           int64   `json:"exp"`
}

// TestInteropOpenIDClient runs the OpenID Connect code flow with
// openid-client, a strict relying party written elsewhere, used as its
// documentation shows with no workaround: discovery, code + PKCE + nonce,
// ID token validation, userinfo, refresh with a new ID token, and
// revocation, with client_secret_post and client_secret_basic, on SQLite
// and PostgreSQL.
func TestInteropOpenIDClient(t *testing.T) {
	node := requireInteropNode(t)
	if _, err := os.Stat("interop/node_modules/openid-client/package.json"); err != nil {
		if os.Getenv("TOKENGATE_REQUIRE_NODE") == "1" {
			t.Fatalf("openid-client is not installed (npm ci --prefix integration/interop): %v", err)
		}
		t.Skipf("openid-client is not installed (npm ci --prefix integration/interop): %v", err)
	}
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, oidcClients)
		for _, method := range []string{"client_secret_post", "client_secret_basic"} {
			t.Run(method, func(t *testing.T) {
				s := runOIDCInteropClient(t, g, node, method)
				if s.Discovery != "ok" || s.Exchange.Status != "ok" || !s.Exchange.NonceMatches {
					t.Errorf("discovery %q, exchange %q, nonce matches %v", s.Discovery, s.Exchange.Status, s.Exchange.NonceMatches)
				}
				if !strings.EqualFold(s.Exchange.TokenType, "bearer") || s.Exchange.Scope == nil || *s.Exchange.Scope != "openid profile email offline_access sessions:read" ||
					!strings.HasPrefix(s.Exchange.AccessTokenPrefix, "tga_") || !strings.HasPrefix(s.Exchange.RefreshTokenPrefix, "tgr_") {
					t.Errorf("token response %+v", s.Exchange)
				}
				id := s.Exchange.IDToken
				if id.Iss != g.base || id.Sub != oidcUser || id.Aud != oidcRPID || id.AZP == nil || *id.AZP != oidcRPID ||
					id.AuthTime == nil || id.Nonce == nil || !id.HasAtHash || id.Exp-id.Iat != 3600 {
					b, _ := json.Marshal(id)
					t.Errorf("ID token %s", b)
				}
				if id.Email == nil || *id.Email != oidcUser+"@example.com" || id.EmailVerified == nil || !*id.EmailVerified ||
					id.Name == nil || *id.Name != "Ada Lovelace" {
					b, _ := json.Marshal(id)
					t.Errorf("ID token claims %s", b)
				}
				if s.Userinfo.Sub != oidcUser || s.Userinfo.Email == nil || *s.Userinfo.Email != oidcUser+"@example.com" ||
					s.Userinfo.Name == nil || *s.Userinfo.Name != "Ada Lovelace" {
					t.Errorf("userinfo %+v", s.Userinfo)
				}
				r := s.Refresh
				if r.Status != "ok" || !r.NewAccessToken || !r.NewRefreshToken || r.IDToken == nil {
					t.Fatalf("refresh %+v", r)
				}
				// OpenID Connect Core 12.2.
				if r.IDToken.Sub != id.Sub || r.IDToken.Aud != id.Aud || *r.IDToken.AZP != *id.AZP ||
					*r.IDToken.AuthTime != *id.AuthTime || r.IDToken.Nonce != nil || !r.IDToken.HasAtHash {
					b, _ := json.Marshal(r.IDToken)
					t.Errorf("refreshed ID token %s", b)
				}
				if s.UserinfoAfterRefresh.Sub != oidcUser {
					t.Errorf("userinfo after refresh %+v", s.UserinfoAfterRefresh)
				}
				if s.Revoke != "ok" || s.RefreshAfterRevoke != "invalid_grant" || s.UserinfoAfterRevoke != "401 invalid_token" {
					t.Errorf("revocation %q, then refresh %q, userinfo %q", s.Revoke, s.RefreshAfterRevoke, s.UserinfoAfterRevoke)
				}
			})
		}
	})
}

// tokenText matches a whole tokengate token (tg, kind, _, 49 characters)
// or a whole JWS, as a printed ID token would be.
var tokenText = regexp.MustCompile(`tg[arpc]_[A-Za-z0-9_-]{49}|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// runOIDCInteropClient runs oidc.mjs, answers its authorization URL as
// the user's browser would (the consent page the first time) and returns
// its summary. No whole token may appear in what it prints.
func runOIDCInteropClient(t *testing.T, g *gateway, node, method string) oidcInteropSummary {
	t.Helper()
	// Generous: it bounds a hung client, not how fast Node.js runs.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "oidc.mjs")
	cmd.Dir = "interop"
	cmd.Env = append(os.Environ(),
		"INTEROP_ISSUER="+g.base,
		"INTEROP_CLIENT_ID="+oidcRPID,
		"INTEROP_CLIENT_SECRET="+oidcRPSecret,
		"INTEROP_AUTH_METHOD="+method,
		"INTEROP_REDIRECT_URI="+oidcRPRedirect,
		"INTEROP_SCOPE=openid profile email offline_access sessions:read",
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
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	var first struct {
		AuthorizationURL string `json:"authorization_url"`
	}
	if err != nil || json.Unmarshal([]byte(line), &first) != nil || !strings.HasPrefix(first.AuthorizationURL, g.base+"/oauth/authorize?") {
		stdin.Close()
		werr := cmd.Wait()
		t.Fatalf("first line %q (%v): oidc.mjs %v\nstderr: %s", line, err, werr, stderr.String())
	}
	callback := browserAuthorize(t, first.AuthorizationURL, oidcUserJWT(t, oidcUser))
	if _, err := stdin.Write([]byte(callback.String() + "\n")); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	var rest bytes.Buffer
	if _, err := rest.ReadFrom(out); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("oidc.mjs (%s): %v\nstderr: %s\nstdout: %s", method, err, stderr.String(), rest.String())
	}
	lines := strings.Split(strings.TrimSpace(rest.String()), "\n")
	last := lines[len(lines)-1]
	t.Logf("oidc.mjs summary: %s", last)
	var s oidcInteropSummary
	if err := json.Unmarshal([]byte(last), &s); err != nil {
		t.Fatalf("summary %q: %v", last, err)
	}
	if s.AuthMethod != method {
		t.Fatalf("oidc.mjs used %q, want %q", s.AuthMethod, method)
	}
	if printed := rest.String() + stderr.String(); tokenText.MatchString(printed) {
		t.Errorf("oidc.mjs printed a whole token: %s", tokenText.FindString(printed))
	}
	return s
}
