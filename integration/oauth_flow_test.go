package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// oauthClients registers the test clients inside the tokengate block: a
// confidential client whose registered URI has a query, a public client, a
// confidential client with pkce optional, and a second confidential client.
const oauthClients = `
		client home-app {
			name "Home Energy App"
			secret home-app-secret
			redirect_uri https://home.example.com/callback?src=tg https://home.example.com/cb2
			scopes chargers:read sessions:read
		}
		client mobile {
			redirect_uri com.example.mobile:/oauth http://127.0.0.1/callback
		}
		client legacy {
			secret legacy-secret
			redirect_uri https://legacy.example.com/cb
			pkce optional
		}
		client other-app {
			secret other-secret
			redirect_uri https://other.example.com/cb
		}`

const (
	homeRedirect   = "https://home.example.com/callback?src=tg"
	homeSecret     = "home-app-secret"
	mobileRedirect = "http://127.0.0.1:53123/callback"
)

// authorizeJSON runs the dashboard authorize step (POST JSON) for
// user and returns the code, checking state, iss and the kept query.
func authorizeJSON(t *testing.T, g *gateway, user, clientID, redirectURI, scope, verifier string) string {
	t.Helper()
	body := map[string]string{
		"client_id": clientID, "redirect_uri": redirectURI, "response_type": "code",
		"scope": scope, "state": "st-" + user,
	}
	if verifier != "" {
		body["code_challenge"] = oauth2.S256ChallengeFromVerifier(verifier)
		body["code_challenge_method"] = "S256"
	}
	r := do(t, "POST", g.base+"/oauth/authorize", jsonBody(t, body),
		"Authorization", "Bearer "+userJWT(t, user), "Content-Type", "application/json")
	if r.status != 200 {
		t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	u, err := url.Parse(r.decode(t)["redirect_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("state") != "st-"+user || q.Get("iss") != g.base {
		t.Fatalf("redirect_url %s: wrong state or iss", u)
	}
	if !strings.HasPrefix(u.String(), redirectURI) {
		t.Fatalf("redirect_url %s does not extend %s", u, redirectURI)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %s", u)
	}
	return q.Get("code")
}

func homeConfig(g *gateway, style oauth2.AuthStyle) *oauth2.Config {
	return &oauth2.Config{
		ClientID: "home-app", ClientSecret: homeSecret, RedirectURL: homeRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: g.base + "/oauth/authorize", TokenURL: g.base + "/oauth/token", AuthStyle: style},
	}
}

// TestOAuthFlow drives the dashboard flow end to end with golang.org/x/oauth2:
// authorize, exchange (Basic and body credentials), use, refresh, reuse
// detection, revocation.
func TestOAuthFlow(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, oauthClients)
		ctx := context.Background()
		chargers := g.base + "/functions/v1/api/chargers"

		tokens := map[oauth2.AuthStyle]*oauth2.Token{}
		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
			conf := homeConfig(g, style)
			verifier := oauth2.GenerateVerifier()
			code := authorizeJSON(t, g, "user-flow", "home-app", homeRedirect, "chargers:read sessions:read", verifier)
			tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange (style %d): %v", style, err)
			}
			if !strings.HasPrefix(tok.AccessToken, "tga_") || !strings.HasPrefix(tok.RefreshToken, "tgr_") ||
				tok.TokenType != "Bearer" || tok.Extra("scope") != "chargers:read sessions:read" {
				t.Fatalf("token response: %+v scope %v", tok, tok.Extra("scope"))
			}
			if d := time.Until(tok.Expiry); d < 59*time.Minute || d > 61*time.Minute {
				t.Errorf("expires in %v", d)
			}
			r := do(t, "GET", chargers, "", "Authorization", "Bearer "+tok.AccessToken)
			if r.status != 200 {
				t.Fatalf("access token at the guard: %d %s", r.status, r.body)
			}
			h := g.chargers.last(t).Header
			if h.Get("X-Authenticated-Token-Type") != "oauth" || h.Get("X-Authenticated-Client-Id") != "home-app" ||
				h.Get("X-Authenticated-Userid") != "user-flow" {
				t.Errorf("backend saw %v", h)
			}
			tokens[style] = tok
		}

		// Refresh, then the old refresh token is reuse: the family goes.
		first := tokens[oauth2.AuthStyleInHeader]
		conf := homeConfig(g, oauth2.AuthStyleInHeader)
		fresh, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: first.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if fresh.RefreshToken == first.RefreshToken || fresh.AccessToken == first.AccessToken {
			t.Fatal("refresh did not rotate")
		}
		if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+fresh.AccessToken); r.status != 200 {
			t.Fatalf("refreshed access token: %d", r.status)
		}
		if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+first.AccessToken); r.status != 200 {
			t.Fatalf("earlier access token after a rotation: %d", r.status)
		}
		r := tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, basicAuth("home-app", homeSecret)...)
		expectOAuthError(t, r, 400, "invalid_grant")
		for _, tok := range []string{fresh.AccessToken, first.AccessToken} {
			if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+tok); r.status != 401 {
				t.Errorf("access token of a reused family: %d", r.status)
			}
		}

		// Revocation of the other family's access token takes effect at once.
		second := tokens[oauth2.AuthStyleInParams]
		r = do(t, "POST", g.base+"/oauth/revoke", url.Values{"token": {second.AccessToken}, "client_id": {"home-app"}, "client_secret": {homeSecret}}.Encode(),
			"Content-Type", "application/x-www-form-urlencoded")
		if r.status != 200 || r.body != "{}" {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		checkNoStore(t, r)
		if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+second.AccessToken); r.status != 401 {
			t.Errorf("revoked access token: %d", r.status)
		}
		// Revoking the refresh token ends the family.
		r = do(t, "POST", g.base+"/oauth/revoke", url.Values{"token": {second.RefreshToken}, "token_type_hint": {"refresh_token"}}.Encode(),
			append(basicAuth("home-app", homeSecret), "Content-Type", "application/x-www-form-urlencoded")...)
		if r.status != 200 {
			t.Fatalf("revoke refresh: %d %s", r.status, r.body)
		}
		r = tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}}, basicAuth("home-app", homeSecret)...)
		expectOAuthError(t, r, 400, "invalid_grant")
	})
}

// TestOAuthPublicAndPKCEOptionalClients covers a public client (PKCE, no
// secret, a loopback redirect URI on another port) and a confidential
// client registered with pkce optional that sends no challenge.
func TestOAuthPublicAndPKCEOptionalClients(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, oauthClients)
		ctx := context.Background()

		verifier := oauth2.GenerateVerifier()
		code := authorizeJSON(t, g, "user-public", "mobile", mobileRedirect, "energy:read", verifier)
		mobile := &oauth2.Config{ClientID: "mobile", RedirectURL: mobileRedirect,
			Endpoint: oauth2.Endpoint{TokenURL: g.base + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
		tok, err := mobile.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("public client exchange: %v", err)
		}
		if r := do(t, "GET", g.base+"/functions/v1/api/energy", "", "Authorization", "Bearer "+tok.AccessToken); r.status != 200 {
			t.Fatalf("public client's token: %d %s", r.status, r.body)
		}
		if _, err := mobile.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err != nil {
			t.Fatalf("public client refresh: %v", err)
		}

		code = authorizeJSON(t, g, "user-legacy", "legacy", "https://legacy.example.com/cb", "sessions:read", "")
		legacy := &oauth2.Config{ClientID: "legacy", ClientSecret: "legacy-secret", RedirectURL: "https://legacy.example.com/cb",
			Endpoint: oauth2.Endpoint{TokenURL: g.base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
		tok, err = legacy.Exchange(ctx, code)
		if err != nil {
			t.Fatalf("pkce optional exchange: %v", err)
		}
		if r := do(t, "GET", g.base+"/functions/v1/api/sessions", "", "Authorization", "Bearer "+tok.AccessToken); r.status != 200 {
			t.Fatalf("pkce optional client's token: %d", r.status)
		}
	})
}

// tokenRequest posts a form to the token endpoint.
func tokenRequest(t *testing.T, g *gateway, form url.Values, headers ...string) response {
	t.Helper()
	return do(t, "POST", g.base+"/oauth/token", form.Encode(), append(headers, "Content-Type", "application/x-www-form-urlencoded")...)
}

func basicAuth(id, secret string) []string {
	raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
	return []string{"Authorization", "Basic " + base64Std(raw)}
}

// expectOAuthError checks an RFC 6749 5.2 error answer of the token,
// revocation or introspection endpoint, no-store included.
func expectOAuthError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s)", r.status, status, r.body)
	}
	if got := r.decode(t)["error"]; got != code {
		t.Fatalf("error %v, want %s (%s)", got, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	checkNoStore(t, r)
}

// exchangeCode exchanges a code for home-app and returns the token pair.
func exchangeCode(t *testing.T, g *gateway, code, verifier string) (access, refresh string) {
	t.Helper()
	r := tokenRequest(t, g, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {homeRedirect}, "code_verifier": {verifier}}, basicAuth("home-app", homeSecret)...)
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	m := r.decode(t)
	return m["access_token"].(string), m["refresh_token"].(string)
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
