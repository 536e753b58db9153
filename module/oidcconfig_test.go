package module

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// provisionJSON provisions and validates an app from its JSON, as Caddy
// would, without starting it.
func provisionJSON(t *testing.T, raw string) (*App, error) {
	t.Helper()
	a := new(App)
	if err := json.Unmarshal([]byte(raw), a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	t.Cleanup(func() { _ = a.Cleanup() })
	if err := a.Provision(ctx); err != nil {
		return a, err
	}
	return a, a.Validate()
}

// TestOpenIDScopes: with openid on, the four OpenID Connect scopes exist
// without scope lines, a scope line may redescribe one, a client's default
// scopes include them and personal_token_scopes' default does not.
func TestOpenIDScopes(t *testing.T) {
	a, err := provisionJSON(t, `{
		"issuer": "https://api.example.com",
		"openid": {},
		"scopes": [{"name": "chargers:read"}, {"name": "email", "description": "Your work address"}],
		"clients": [{"id": "app", "secret": "s3cret", "redirect_uris": ["https://app.example.com/cb"]}]
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"chargers:read", "email", "openid", "profile", "offline_access"}
	if got := a.scopeNames(); !slices.Equal(got, want) {
		t.Errorf("scopes %v, want %v", got, want)
	}
	for _, s := range a.allScopes() {
		if s.Name == "email" && s.Description != "Your work address" {
			t.Errorf("email is described %q, want the scope line's description", s.Description)
		}
		if isOpenIDScope(s.Name) && s.Description == "" {
			t.Errorf("scope %s has no description", s.Name)
		}
	}
	if !slices.Equal(a.PersonalTokenScopes, []string{"chargers:read"}) {
		t.Errorf("personal_token_scopes default %v, want [chargers:read]", a.PersonalTokenScopes)
	}
	c, err := a.clients.FindClient(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range want {
		if !c.MayRequest(s) {
			t.Errorf("the client's default scopes lack %s", s)
		}
	}
	// A guard may require them.
	if err := a.ValidateScopes("tokengate directive", map[string][]string{"GET": {"openid"}}); err != nil {
		t.Error(err)
	}
}

// TestOpenIDOff: without openid, openid is a scope like any other, which
// needs a scope line.
func TestOpenIDOff(t *testing.T) {
	_, err := provisionJSON(t, `{
		"issuer": "https://api.example.com",
		"scopes": [{"name": "chargers:read"}],
		"clients": [{"id": "app", "secret": "s3cret", "redirect_uris": ["https://app.example.com/cb"], "scopes": ["openid"]}]
	}`)
	if err == nil || !strings.Contains(err.Error(), `undeclared scope "openid"`) {
		t.Fatalf("got %v, want the undeclared scope openid", err)
	}
}

// TestSigningDefaults: the openid option's defaults, and the key ring's
// settings with and without openid and JWT access tokens.
func TestSigningDefaults(t *testing.T) {
	a, err := provisionJSON(t, `{"issuer": "https://api.example.com", "openid": {}}`)
	if err != nil {
		t.Fatal(err)
	}
	o := a.OpenID
	if o.SigningAlg != "RS256" || time.Duration(o.IDTokenTTL) != time.Hour || time.Duration(o.KeyRotation) != 720*time.Hour {
		t.Errorf("defaults %+v", o)
	}
	if len(o.Claims) != 16 || o.Claims[0] != "name" || !slices.Contains(o.Claims, "email_verified") {
		t.Errorf("default claims %v", o.Claims)
	}
	if a.AccessTokenFormat != "opaque" || a.AccessTokenAudience != "" || !a.needsSigningKeys() {
		t.Errorf("format %q audience %q needs keys %v", a.AccessTokenFormat, a.AccessTokenAudience, a.needsSigningKeys())
	}
	if alg, rot, ttl := a.signingSettings(); alg != "RS256" || rot != 720*time.Hour || ttl != time.Hour {
		t.Errorf("signing settings %s %v %v", alg, rot, ttl)
	}

	// JWT access tokens alone: the same key defaults, the audience is the
	// issuer, and the longest token is the access token.
	a, err = provisionJSON(t, `{"issuer": "https://api.example.com", "access_token_format": "jwt", "access_token_ttl": 7200000000000}`)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessTokenAudience != "https://api.example.com" || !a.needsSigningKeys() {
		t.Errorf("audience %q, needs keys %v", a.AccessTokenAudience, a.needsSigningKeys())
	}
	if alg, rot, ttl := a.signingSettings(); alg != "RS256" || rot != 720*time.Hour || ttl != 2*time.Hour {
		t.Errorf("signing settings %s %v %v", alg, rot, ttl)
	}

	a, err = provisionJSON(t, `{"issuer": "https://api.example.com"}`)
	if err != nil {
		t.Fatal(err)
	}
	if a.needsSigningKeys() {
		t.Error("no openid and opaque tokens, yet the app wants signing keys")
	}
}

// TestAccessTokenAudiencePlaceholder: the audience is expanded when the
// app is provisioned, and checked then.
func TestAccessTokenAudiencePlaceholder(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{"https://api.example.com/v1", ""},
		{"urn:example:energy-api", ""},
		{"api.example.com", "is not an absolute URI"},
		{"https://api.example.com/#x", "must not have a fragment"},
	} {
		t.Setenv("TOKENGATE_MODULE_TEST_AUDIENCE", c.value)
		a, err := provisionJSON(t, `{"issuer": "https://api.example.com", "access_token_format": "jwt",
			"access_token_audience": "{env.TOKENGATE_MODULE_TEST_AUDIENCE}"}`)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.value, err)
		case c.want == "" && a.AccessTokenAudience != c.value:
			t.Errorf("%q: audience is %q after provisioning", c.value, a.AccessTokenAudience)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: error %v, want one containing %q", c.value, err, c.want)
		}
	}
}
