package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
)

// oidcClients turns OpenID Connect on and registers a confidential relying
// party whose scopes default to every scope, the OpenID Connect ones
// included.
const oidcClients = `
		openid
		client oidc-rp {
			name "OIDC Relying Party"
			secret oidc-rp-secret
			redirect_uri https://rp.example.com/callback
		}`

const (
	oidcRPID       = "oidc-rp"
	oidcRPSecret   = "oidc-rp-secret"
	oidcRPRedirect = "https://rp.example.com/callback"
	oidcUser       = "user-oidc"
)

// oidcUserJWT is the IdP's JWT for user, with the claims an IdP such as
// Supabase Auth carries: email at the top level, the name in
// user_metadata.
func oidcUserJWT(t testing.TB, user string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":            user,
		"aud":            "authenticated",
		"role":           "authenticated",
		"email":          user + "@example.com",
		"email_verified": true,
		"user_metadata":  map[string]any{"name": "Ada Lovelace", "picture": "https://example.com/ada.png"},
		"iat":            time.Now().Unix(),
		"exp":            time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(userJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var consentHidden = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// browserAuthorize plays the user's browser on an authorization URL: sent
// with the user's JWT, it follows the consent page with Approve when one
// is shown, and returns the callback URL tokengate redirects to.
func browserAuthorize(t *testing.T, authURL, userJWT string) *url.URL {
	t.Helper()
	r, err := send(interopNoRedirect, "GET", authURL, "", "Authorization", "Bearer "+userJWT)
	if err != nil {
		t.Fatal(err)
	}
	if r.status == http.StatusOK {
		form := url.Values{}
		for _, m := range consentHidden.FindAllStringSubmatch(r.body, -1) {
			form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
		}
		form.Set("decision", "approve")
		action := strings.SplitN(authURL, "?", 2)[0]
		if r, err = send(interopNoRedirect, "POST", action, form.Encode(),
			"Authorization", "Bearer "+userJWT, "Content-Type", "application/x-www-form-urlencoded"); err != nil {
			t.Fatal(err)
		}
	}
	loc := r.header.Get("Location")
	if r.status != http.StatusFound || !strings.HasPrefix(loc, oidcRPRedirect+"?") {
		t.Fatalf("authorize: %d Location %q: %.300s", r.status, loc, r.body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func randomText(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestOIDCGoOIDC runs the OpenID Connect code flow with
// github.com/coreos/go-oidc and golang.org/x/oauth2, relying-party
// libraries written elsewhere: discovery, code + PKCE + nonce, the ID
// token verified against the JWKS (signature, iss, aud, exp, at_hash),
// userinfo, a refresh with a new ID token, and revocation.
func TestOIDCGoOIDC(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, oidcClients)
		ctx := context.Background()
		provider, err := oidc.NewProvider(ctx, g.base)
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		var meta struct {
			Revocation string   `json:"revocation_endpoint"`
			Scopes     []string `json:"scopes_supported"`
		}
		if err := provider.Claims(&meta); err != nil {
			t.Fatal(err)
		}
		conf := &oauth2.Config{
			ClientID: oidcRPID, ClientSecret: oidcRPSecret, RedirectURL: oidcRPRedirect,
			Endpoint: provider.Endpoint(),
			Scopes:   []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess, "sessions:read"},
		}
		verifier := provider.Verifier(&oidc.Config{ClientID: oidcRPID})

		state, nonce, pkce := randomText(t), randomText(t), oauth2.GenerateVerifier()
		callback := browserAuthorize(t, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(pkce), oidc.Nonce(nonce)), oidcUserJWT(t, oidcUser))
		q := callback.Query()
		if q.Get("state") != state || q.Get("iss") != g.base || q.Get("code") == "" {
			t.Fatalf("callback %s", callback)
		}
		tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := verifier.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("ID token refused by go-oidc: %v", err)
		}
		if idt.Nonce != nonce || idt.Subject != oidcUser {
			t.Errorf("nonce %q sub %q", idt.Nonce, idt.Subject)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
		var claims struct {
			Email         string `json:"email"`
			EmailVerified bool   `json:"email_verified"`
			Name          string `json:"name"`
			Picture       string `json:"picture"`
			AZP           string `json:"azp"`
			AuthTime      int64  `json:"auth_time"`
			Role          string `json:"role"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if claims.Email != oidcUser+"@example.com" || !claims.EmailVerified || claims.Name != "Ada Lovelace" ||
			claims.Picture != "https://example.com/ada.png" || claims.AZP != oidcRPID || claims.AuthTime == 0 || claims.Role != "" {
			t.Errorf("ID token claims %+v", claims)
		}

		// The access token works at the API and at userinfo; the ID token
		// at neither.
		if r := do(t, "GET", g.base+"/functions/v1/api/sessions", "", "Authorization", "Bearer "+tok.AccessToken); r.status != 200 {
			t.Errorf("API with the access token: %d %s", r.status, r.body)
		}
		for _, path := range []string{"/functions/v1/api/sessions", "/oauth/userinfo"} {
			if r := do(t, "GET", g.base+path, "", "Authorization", "Bearer "+raw); r.status != 401 {
				t.Errorf("ID token as bearer at %s: %d %s", path, r.status, r.body)
			}
		}
		info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		var infoClaims map[string]any
		if err := info.Claims(&infoClaims); err != nil {
			t.Fatal(err)
		}
		if info.Subject != oidcUser || info.Email != oidcUser+"@example.com" || !info.EmailVerified || infoClaims["name"] != "Ada Lovelace" {
			t.Errorf("userinfo %+v %v", info, infoClaims)
		}

		// Refresh: a new pair and a new ID token for the same user and
		// authentication (OpenID Connect Core 12.2).
		expired := *tok
		expired.Expiry = time.Now().Add(-time.Minute)
		fresh, err := conf.TokenSource(ctx, &expired).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		rawFresh, _ := fresh.Extra("id_token").(string)
		idFresh, err := verifier.Verify(ctx, rawFresh)
		if err != nil {
			t.Fatalf("refreshed ID token refused: %v", err)
		}
		var freshClaims struct {
			AuthTime int64  `json:"auth_time"`
			AZP      string `json:"azp"`
		}
		if err := idFresh.Claims(&freshClaims); err != nil {
			t.Fatal(err)
		}
		if idFresh.Subject != idt.Subject || freshClaims.AuthTime != claims.AuthTime || freshClaims.AZP != oidcRPID ||
			idFresh.Nonce != "" || fresh.AccessToken == tok.AccessToken {
			t.Errorf("refreshed ID token: sub %q %+v nonce %q", idFresh.Subject, freshClaims, idFresh.Nonce)
		}
		if err := idFresh.VerifyAccessToken(fresh.AccessToken); err != nil {
			t.Errorf("refreshed at_hash: %v", err)
		}

		// Revocation (RFC 7009) of the refresh token ends the grant:
		// userinfo refuses its access token.
		form := url.Values{"token": {fresh.RefreshToken}, "client_id": {oidcRPID}, "client_secret": {oidcRPSecret}}
		if r := do(t, "POST", meta.Revocation, form.Encode(), "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(fresh)); err == nil {
			t.Error("userinfo after revoking the grant answered")
		}
		if r := do(t, "GET", g.base+"/oauth/userinfo", "", "Authorization", "Bearer "+fresh.AccessToken); r.status != 401 {
			t.Errorf("userinfo after revocation: %d", r.status)
		}
	})
}

// jwksKIDs fetches a key set and returns its body and kids.
func jwksKIDs(t *testing.T, base string) (string, []string) {
	t.Helper()
	r := do(t, "GET", base+"/.well-known/jwks.json", "")
	if r.status != 200 {
		t.Fatalf("JWKS at %s: %d %s", base, r.status, r.body)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(r.body), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	if len(kids) != 2 {
		t.Fatalf("JWKS at %s has %d keys, want the current and the next: %s", base, len(kids), r.body)
	}
	return r.body, kids
}

// oidcProcessConfig is the gateway's Caddyfile for a caddy process of its
// own, with its admin endpoint on adminPort.
func oidcProcessConfig(g *gateway) func(port, adminPort int) string {
	return func(port, adminPort int) string {
		return strings.Replace(g.config(port), "admin off", fmt.Sprintf("admin 127.0.0.1:%d", adminPort), 1)
	}
}

// TestOIDCKeysAgreeAcrossInstances: two instances started at the same
// moment on one PostgreSQL database make their signing keys in a race,
// and publish the same key set; an ID token one of them signs verifies
// with the other's.
func TestOIDCKeysAgreeAcrossInstances(t *testing.T) {
	g := newGateway(t, "postgres "+pgtest.Start(t), oidcClients, "")
	bin := caddyBinary(t)
	var (
		wg    sync.WaitGroup
		procs [2]*caddyProcess
		errs  [2]error
	)
	for i := range procs {
		wg.Go(func() { procs[i], errs[i] = tryCaddyProcess(t, bin, oidcProcessConfig(g)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	a, kidsA := jwksKIDs(t, procs[0].base)
	b, _ := jwksKIDs(t, procs[1].base)
	if a != b {
		t.Fatalf("the instances publish different keys:\n%s\n%s", a, b)
	}
	t.Logf("both instances publish %v", kidsA)

	// An ID token from one instance, verified with the other's keys.
	g.base = procs[0].base
	idToken := oidcIDToken(t, g)
	keys := oidc.NewRemoteKeySet(context.Background(), procs[1].base+"/.well-known/jwks.json")
	if _, err := keys.VerifySignature(context.Background(), idToken); err != nil {
		t.Errorf("an ID token of one instance does not verify with the other's JWKS: %v", err)
	}
}

// TestOIDCKeysSurviveRestart: the signing keys are kept in the store: an
// instance restarted on the same SQLite file publishes the same keys, and
// an ID token signed before the restart still verifies.
func TestOIDCKeysSurviveRestart(t *testing.T) {
	g := newGateway(t, "sqlite "+t.TempDir()+"/tg.db", oidcClients, "")
	first := startCaddyProcess(t, oidcProcessConfig(g))
	before, kids := jwksKIDs(t, first.base)
	g.base = first.base
	idToken := oidcIDToken(t, g)
	first.stop(t)

	second := startCaddyProcess(t, oidcProcessConfig(g))
	after, _ := jwksKIDs(t, second.base)
	if after != before {
		t.Fatalf("keys changed across the restart:\nbefore %s\nafter  %s", before, after)
	}
	keys := oidc.NewRemoteKeySet(context.Background(), second.base+"/.well-known/jwks.json")
	if _, err := keys.VerifySignature(context.Background(), idToken); err != nil {
		t.Errorf("an ID token signed before the restart (keys %v): %v", kids, err)
	}
}

// oidcIDToken runs the dashboard flow for openid on g and returns the ID
// token of the code exchange.
func oidcIDToken(t *testing.T, g *gateway) string {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	body := jsonBody(t, map[string]string{
		"client_id": oidcRPID, "redirect_uri": oidcRPRedirect, "response_type": "code",
		"scope": "openid email", "state": "st", "nonce": "n",
		"code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256",
	})
	r := do(t, "POST", g.base+"/oauth/authorize", body, "Authorization", "Bearer "+oidcUserJWT(t, oidcUser), "Content-Type", "application/json")
	var answer struct {
		RedirectURL string `json:"redirect_url"`
	}
	if err := json.Unmarshal([]byte(r.body), &answer); err != nil || r.status != 200 {
		t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	u, err := url.Parse(answer.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := tokenRequest(t, g, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
		"redirect_uri": {oidcRPRedirect}, "code_verifier": {verifier}}, basicAuth(oidcRPID, oidcRPSecret)...)
	idToken, _ := tr.decode(t)["id_token"].(string)
	if tr.status != 200 || idToken == "" {
		t.Fatalf("token: %d %s", tr.status, tr.body)
	}
	return idToken
}
