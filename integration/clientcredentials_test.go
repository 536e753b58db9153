package integration

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// machineClients are the clients of the client_credentials tests: a
// machine client of the config, a public client and a confidential one
// of the code flow (neither may use client_credentials).
const machineClients = `
		client meter-sync {
			name "Meter sync"
			secret meter-sync-secret
			scopes energy:read chargers:read
			grant_types client_credentials
		}
		client mobile {
			redirect_uri com.example.mobile:/oauth
		}
		client home-app {
			secret home-app-secret
			redirect_uri https://home.example.com/callback
		}`

const meterSyncSecret = "meter-sync-secret"

func machineConfig(g *gateway, id, secret string, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID: id, ClientSecret: secret, TokenURL: g.base + "/oauth/token", Scopes: scopes,
		AuthStyle: oauth2.AuthStyleInHeader,
	}
}

// wantRetrieveError checks that err is the token endpoint's RFC 6749 5.2
// answer with code.
func wantRetrieveError(t *testing.T, what string, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code || re.Response.StatusCode != http.StatusBadRequest {
		t.Errorf("%s: %v, want 400 %s", what, err, code)
	}
}

// TestClientCredentials: a machine gets a token for itself with a stock
// OAuth client (RFC 6749 4.4) and calls the API through the guard, which
// tells the backend it is the client, with no user; clients that may not
// use the grant are refused; revocation and the client's removal stop the
// token at once.
func TestClientCredentials(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g, adminURL := startGatewayWithAdmin(t, database, machineClients)
		ctx := context.Background()
		// The counters are the process's, and outlive a config.
		const issuedMetric = `caddy_tokengate_tokens_issued_total{grant="client_credentials"}`
		issuedBefore := scrapeMetrics(t, adminURL)[issuedMetric]

		// RFC 8414 2: a client of the config may use it.
		r := do(t, "GET", g.base+"/.well-known/oauth-authorization-server", "")
		if grants, _ := r.decode(t)["grant_types_supported"].([]any); !slices.Contains(grants, any("client_credentials")) {
			t.Errorf("grant_types_supported %v lacks client_credentials", grants)
		}

		// RFC 6749 4.4.3: no refresh token; the client's scopes in the
		// order the config declares them.
		tok, err := machineConfig(g, "meter-sync", meterSyncSecret).Token(ctx)
		if err != nil {
			t.Fatalf("client_credentials token: %v", err)
		}
		if tok.RefreshToken != "" || tok.TokenType != "Bearer" || !strings.HasPrefix(tok.AccessToken, "tga_") {
			t.Errorf("token %s %q, refresh %v; want a Bearer tga_ token and no refresh token", tok.TokenType, tok.AccessToken[:4], tok.RefreshToken != "")
		}
		if s := tok.Extra("scope"); s != "chargers:read energy:read" {
			t.Errorf("scope %v, want chargers:read energy:read", s)
		}
		raw := tokenRequest(t, g, url.Values{"grant_type": {"client_credentials"}, "scope": {"energy:read"}}, basicAuth("meter-sync", meterSyncSecret)...)
		m := raw.decode(t)
		if _, has := m["refresh_token"]; raw.status != 200 || has || m["scope"] != "energy:read" || m["expires_in"] != float64(3600) {
			t.Errorf("raw token response %d %s; want energy:read for 3600 s and no refresh_token member", raw.status, raw.body)
		}
		checkNoStore(t, raw)

		// The guard: the backend hears of the client, not of a user,
		// whatever the caller claimed.
		api := machineConfig(g, "meter-sync", meterSyncSecret).Client(ctx)
		req, _ := http.NewRequest("GET", g.base+"/any/readings", nil)
		req.Header.Set("X-Authenticated-Userid", "admin")
		req.Header.Set("X-Authenticated-Token-Type", "oauth")
		resp, err := api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("guarded call with the client token: %d", resp.StatusCode)
		}
		seen := g.other.last(t)
		for name, want := range map[string]string{
			"X-Authenticated-Userid":     "",
			"X-Authenticated-Client-Id":  "meter-sync",
			"X-Authenticated-Token-Type": "client",
			"X-Authenticated-Scope":      "chargers:read energy:read",
			"X-Placeholder-User":         "",
			"X-Placeholder-Type":         "client",
		} {
			if got := seen.Header.Get(name); got != want {
				t.Errorf("backend got %s %q, want %q", name, got, want)
			}
		}
		// upstream_jwt: sub is the client.
		if r := do(t, "GET", g.base+"/functions/v1/api/energy/daily", "", "Authorization", "Bearer "+tok.AccessToken); r.status != 200 {
			t.Fatalf("energy with the client token: %d %s", r.status, r.body)
		}
		claims := jwt.MapClaims{}
		upstream := strings.TrimPrefix(g.energy.last(t).Header.Get("Authorization"), "Bearer ")
		if _, err := jwt.ParseWithClaims(upstream, claims, func(*jwt.Token) (any, error) { return []byte(userJWTSecret), nil }); err != nil {
			t.Fatalf("upstream JWT: %v", err)
		}
		if claims["sub"] != "meter-sync" || claims["client_id"] != "meter-sync" {
			t.Errorf("upstream JWT sub %v, client_id %v; want meter-sync", claims["sub"], claims["client_id"])
		}
		// A scope the token lacks.
		if r := do(t, "GET", g.base+"/functions/v1/api/sessions", "", "Authorization", "Bearer "+tok.AccessToken); r.status != 403 {
			t.Errorf("sessions with a token without sessions:read: %d, want 403", r.status)
		}

		// RFC 7662 2.2: sub is the client.
		r = do(t, "POST", g.base+"/oauth/introspect", url.Values{"token": {tok.AccessToken}}.Encode(),
			append(basicAuth("meter-sync", meterSyncSecret), "Content-Type", "application/x-www-form-urlencoded")...)
		if m := r.decode(t); m["active"] != true || m["sub"] != "meter-sync" || m["client_id"] != "meter-sync" {
			t.Errorf("introspection %s; want active, sub and client_id meter-sync", r.body)
		}

		// RFC 6749 5.2 unauthorized_client: a public client, a client
		// without the grant; invalid_scope for a scope it may not have.
		r = tokenRequest(t, g, url.Values{"grant_type": {"client_credentials"}, "client_id": {"mobile"}})
		expectOAuthError(t, r, 400, "unauthorized_client")
		_, err = machineConfig(g, "home-app", "home-app-secret").Token(ctx)
		wantRetrieveError(t, "home-app", err, "unauthorized_client")
		_, err = machineConfig(g, "meter-sync", meterSyncSecret, "sessions:read").Token(ctx)
		wantRetrieveError(t, "a scope meter-sync may not ask for", err, "invalid_scope")

		// RFC 7009 2.1: revoked, it stops at once.
		r = do(t, "POST", g.base+"/oauth/revoke", url.Values{"token": {tok.AccessToken}}.Encode(),
			append(basicAuth("meter-sync", meterSyncSecret), "Content-Type", "application/x-www-form-urlencoded")...)
		if r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", g.base+"/any/readings", "", "Authorization", "Bearer "+tok.AccessToken); r.status != 401 {
			t.Errorf("revoked client token: %d, want 401", r.status)
		}

		// A stored client: added with the grant, used, removed; its
		// token stops at once.
		admin := adminAPI{adminURL}
		secret := admin.addClient(t, `{"client_id":"robot","name":"Robot","scopes":["chargers:read"],"grant_types":["client_credentials"]}`)
		robot, err := machineConfig(g, "robot", secret).Token(ctx)
		if err != nil {
			t.Fatalf("stored client's token: %v", err)
		}
		if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+robot.AccessToken); r.status != 200 {
			t.Fatalf("stored client's token at the guard: %d %s", r.status, r.body)
		}
		if got := g.chargers.last(t).Header.Get("X-Authenticated-Client-Id"); got != "robot" {
			t.Errorf("X-Authenticated-Client-Id %q, want robot", got)
		}
		if r := admin.call(t, "DELETE", "/tokengate/clients/robot", ""); r.status != 204 {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+robot.AccessToken); r.status != 401 {
			t.Errorf("token of a removed client: %d, want 401", r.status)
		}
		_, err = machineConfig(g, "robot", secret).Token(ctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
			t.Errorf("token for a removed client: %v, want invalid_client", err)
		}

		// One issue event a token response: meter-sync's three (one for
		// the API client) and robot's.
		if n := scrapeMetrics(t, adminURL)[issuedMetric] - issuedBefore; n != 4 {
			t.Errorf("%s grew by %v, want 4", issuedMetric, n)
		}
	})
}
