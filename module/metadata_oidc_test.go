package module

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// TestOpenIDConfiguration: every member OpenID Connect Discovery 1.0 3
// requires, with tokengate's values, and the RFC 8414 document's
// additions.
func TestOpenIDConfiguration(t *testing.T) {
	env := newOIDCEnv(t, func(a *App) { a.OpenID.SigningAlg = "ES256" })
	rec := env.userinfo(t, http.MethodGet, "/.well-known/openid-configuration")
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	strs := func(name string) []string {
		t.Helper()
		raw, _ := m[name].([]any)
		out := make([]string, 0, len(raw))
		for _, v := range raw {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	base := oidcIssuer
	for name, want := range map[string]string{
		"issuer":                 base,
		"authorization_endpoint": base + "/oauth/authorize",
		"token_endpoint":         base + "/oauth/token",
		"userinfo_endpoint":      base + "/oauth/userinfo",
		"jwks_uri":               base + "/.well-known/jwks.json",
		"revocation_endpoint":    base + "/oauth/revoke",
		"introspection_endpoint": base + "/oauth/introspect",
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %s", name, m[name], want)
		}
	}
	for name, want := range map[string][]string{
		"scopes_supported":                      {"chargers:read", "openid", "profile", "email", "offline_access"},
		"response_types_supported":              {"code"},
		"subject_types_supported":               {"public"},
		"id_token_signing_alg_values_supported": {"ES256"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":      {"S256"},
		"grant_types_supported":                 {"authorization_code", "refresh_token"},
		"response_modes_supported":              {"query"},
	} {
		if got := strs(name); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	claims := strs("claims_supported")
	for _, c := range []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "email", "email_verified", "name", "picture"} {
		if !slices.Contains(claims, c) {
			t.Errorf("claims_supported %v lacks %s", claims, c)
		}
	}
	for name, want := range map[string]bool{
		"authorization_response_iss_parameter_supported": true,
		// Absent, Discovery 1.0 3 would mean true.
		"request_uri_parameter_supported": false,
		"request_parameter_supported":     false,
		"claims_parameter_supported":      false,
	} {
		if v, ok := m[name].(bool); !ok || v != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}

	// RFC 8414 document: jwks_uri and userinfo_endpoint too.
	rec = env.userinfo(t, http.MethodGet, "/.well-known/oauth-authorization-server")
	var oauthMeta map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &oauthMeta); err != nil {
		t.Fatal(err)
	}
	if oauthMeta["jwks_uri"] != base+"/.well-known/jwks.json" || oauthMeta["userinfo_endpoint"] != base+"/oauth/userinfo" {
		t.Errorf("RFC 8414 metadata: %v", oauthMeta)
	}
	if _, ok := oauthMeta["subject_types_supported"]; ok {
		t.Error("RFC 8414 metadata carries OpenID Connect members")
	}
	if rec := env.userinfo(t, http.MethodPost, "/.well-known/openid-configuration"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}
