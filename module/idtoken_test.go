package module

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// idTokenPayload decodes an ID token's claims without verifying it (the
// oauth package's tests verify them).
func idTokenPayload(t *testing.T, text string) map[string]any {
	t.Helper()
	parts := strings.Split(text, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", text)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTokenEndpointIDToken: through the endpoints, the ID token carries
// the nonce of the authorization request and the IdP claims its scopes
// release (OpenID Connect Core 5.4), and refresh_token is left out
// without offline_access (11).
func TestTokenEndpointIDToken(t *testing.T) {
	env := newOIDCEnv(t, nil)
	tr := env.issue(t, "openid profile offline_access", idpClaims, "nonce", "n-42")
	c := idTokenPayload(t, tr.IDToken)
	if c["nonce"] != "n-42" || c["sub"] != oidcUser || c["aud"] != oidcClientID || c["iss"] != oidcIssuer ||
		c["name"] != "Ada Lovelace" || c["given_name"] != "Ada" || c["email"] != nil || c["role"] != nil {
		t.Errorf("ID token claims %v", c)
	}
	refreshed := env.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}})
	if c := idTokenPayload(t, refreshed.IDToken); c["name"] != "Ada Lovelace" || c["nonce"] != nil {
		t.Errorf("refreshed ID token claims %v", c)
	}
	// env.token checks that the JSON has no refresh_token member then.
	if tr := env.issue(t, "openid email", idpClaims); tr.RefreshToken != "" || tr.IDToken == "" {
		t.Errorf("without offline_access: %+v", tr)
	}
}

// TestIDTokenAtGuard: an ID token is never accepted as a bearer token,
// at the guard or at userinfo.
func TestIDTokenAtGuard(t *testing.T) {
	env := newOIDCEnv(t, nil)
	tr := env.issue(t, "openid email chargers:read", idpClaims)
	g := &Guard{Methods: map[string][]string{"GET": {"chargers:read"}}, app: env.e.app, logger: zap.NewNop(), metrics: env.e.app.metrics}
	for _, c := range []struct {
		token string
		want  int
	}{{tr.AccessToken, http.StatusOK}, {tr.IDToken, http.StatusUnauthorized}} {
		r := httptest.NewRequest(http.MethodGet, "/chargers", nil)
		r.Header.Set("Authorization", "Bearer "+c.token)
		got := serve(t, g, r)
		if got.status != c.want || got.passed != (c.want == http.StatusOK) {
			t.Errorf("guard: %d (passed on: %v), want %d", got.status, got.passed, c.want)
		}
	}
	if rec := env.userinfo(t, http.MethodGet, "/oauth/userinfo", "Authorization", "Bearer "+tr.IDToken); rec.Code != http.StatusUnauthorized ||
		rec.Header().Get("WWW-Authenticate") != `Bearer realm="tokengate", error="invalid_token"` {
		t.Errorf("userinfo with an ID token: %d %v", rec.Code, rec.Header())
	}
}
