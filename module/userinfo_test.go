package module

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// idpClaims are the claims the test IdP puts in the user's JWT.
var idpClaims = jwt.MapClaims{
	"email": "ada@example.com", "email_verified": true,
	"name": "Ada Lovelace", "given_name": "Ada", "role": "authenticated",
}

func (env *oidcEnv) userinfo(t *testing.T, method, target string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return env.serve(t, r)
}

// TestUserinfo: OpenID Connect Core 5.3 through the guard's validation:
// the claims of the grant that the token's scopes release, and the
// guard's answers for every refusal.
func TestUserinfo(t *testing.T) {
	env := newOIDCEnv(t, func(a *App) { a.PersonalTokenScopes = []string{"openid", "chargers:read"} })
	emailOnly := env.issue(t, "openid email offline_access", idpClaims)
	both := env.issue(t, "openid profile email", idpClaims)
	noOpenID := env.issue(t, "chargers:read", idpClaims)

	for _, c := range []struct {
		name, method, token string
		want                map[string]any
	}{
		{"5.4 email scope", http.MethodGet, emailOnly.AccessToken,
			map[string]any{"sub": oidcUser, "email": "ada@example.com", "email_verified": true}},
		{"5.4 profile and email scopes, POST", http.MethodPost, both.AccessToken,
			map[string]any{"sub": oidcUser, "email": "ada@example.com", "email_verified": true, "name": "Ada Lovelace", "given_name": "Ada"}},
	} {
		rec := env.userinfo(t, c.method, "/oauth/userinfo", "Authorization", "Bearer "+c.token)
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.name, rec.Code, rec.Body)
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s: headers %v", c.name, rec.Header())
		}
	}

	// A personal token with openid: the user, and no grant to take claims from.
	personal, _, err := env.e.app.personal.Issue(context.Background(), oidcUser)
	if err != nil {
		t.Fatal(err)
	}
	if rec := env.userinfo(t, http.MethodGet, "/oauth/userinfo", "Authorization", "Bearer "+personal); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"sub":"`+oidcUser+`"}` {
		t.Errorf("personal token: %d %s", rec.Code, rec.Body)
	}

	// The guard's answers (SPEC 3 of the contract: docs/reference.md).
	for _, c := range []struct {
		name      string
		target    string
		headers   []string
		status    int
		challenge string
	}{
		{"no Authorization header", "/oauth/userinfo", nil, 401, `Bearer realm="tokengate"`},
		{"RFC 6750 3.1 unknown token", "/oauth/userinfo", []string{"Authorization", "Bearer tga_unknown"}, 401, `Bearer realm="tokengate", error="invalid_token"`},
		{"token in the URL", "/oauth/userinfo?access_token=" + emailOnly.AccessToken, nil, 401, `Bearer realm="tokengate", error="invalid_request"`},
		{"refresh token as bearer", "/oauth/userinfo", []string{"Authorization", "Bearer " + emailOnly.RefreshToken}, 401, `Bearer realm="tokengate", error="invalid_token"`},
		{"RFC 6750 3.1 token without openid", "/oauth/userinfo", []string{"Authorization", "Bearer " + noOpenID.AccessToken}, 403,
			`Bearer realm="tokengate", error="insufficient_scope", scope="openid"`},
	} {
		rec := env.userinfo(t, http.MethodGet, c.target, c.headers...)
		if rec.Code != c.status || rec.Header().Get("WWW-Authenticate") != c.challenge {
			t.Errorf("%s: %d %q %s", c.name, rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
		}
	}
	if rec := env.userinfo(t, http.MethodGet, "/oauth/userinfo", "Authorization", "Bearer "+noOpenID.AccessToken); rec.Body.String() != `{"error":"Insufficient scope","required_scope":"openid"}` {
		t.Errorf("403 body %s", rec.Body)
	}
	if rec := env.userinfo(t, http.MethodPut, "/oauth/userinfo", "Authorization", "Bearer "+both.AccessToken); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, POST" {
		t.Errorf("PUT: %d %v", rec.Code, rec.Header())
	}

	// Revoked (RFC 7009): refused at once, as at the guard.
	client, err := env.e.app.registry.Authenticate(context.Background(), oidcClientID, oidcSecret, true)
	if err != nil {
		t.Fatal(err)
	}
	if oerr := env.e.app.auth.Revoke(context.Background(), client, both.AccessToken, ""); oerr != nil {
		t.Fatal(oerr)
	}
	if rec := env.userinfo(t, http.MethodGet, "/oauth/userinfo", "Authorization", "Bearer "+both.AccessToken); rec.Code != 401 {
		t.Errorf("revoked token: %d %s", rec.Code, rec.Body)
	}
}

// TestUserinfoOff: without openid, the userinfo and discovery paths are
// not tokengate's.
func TestUserinfoOff(t *testing.T) {
	env := newOIDCEnv(t, func(a *App) { a.OpenID = nil })
	for _, path := range []string{"/oauth/userinfo", "/.well-known/openid-configuration", "/.well-known/jwks.json"} {
		if rec := env.userinfo(t, http.MethodGet, path); rec.Code != http.StatusNotFound || rec.Body.String() != "next\n" {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	var m map[string]any
	rec := env.userinfo(t, http.MethodGet, "/.well-known/oauth-authorization-server")
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["jwks_uri"]; ok {
		t.Errorf("jwks_uri without signing keys: %v", m)
	}
	if _, ok := m["userinfo_endpoint"]; ok {
		t.Errorf("userinfo_endpoint without openid: %v", m)
	}
}
