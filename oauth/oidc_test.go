package oauth

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifyUserClaims: VerifyUser returns the verified JWT's claims beside
// the user id, so an authorization can keep those it may.
func TestVerifyUserClaims(t *testing.T) {
	v := newTestUserVerifier(t, newUserClock(), withSecret)
	tok := signUserJWT(t, jwt.SigningMethodHS256, []byte(userTestSecret), "", userClaims(map[string]any{
		"email": "ada@example.com", "user_metadata": map[string]any{"name": "Ada"},
	}))
	u, err := v.VerifyUser(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "user-42" || u.Claims["email"] != "ada@example.com" || u.Claims["sub"] != "user-42" {
		t.Errorf("got %+v", u)
	}
	if meta, _ := u.Claims["user_metadata"].(map[string]any); meta["name"] != "Ada" {
		t.Errorf("user_metadata %v", u.Claims["user_metadata"])
	}
	if id, err := v.Verify(context.Background(), tok); err != nil || id != "user-42" {
		t.Errorf("Verify: %q %v", id, err)
	}
}

// TestPickClaims: an authorization keeps the IdP claims its scope releases
// (OpenID Connect Core 5.4) and the claims option allows, each with the
// type of 5.1.
func TestPickClaims(t *testing.T) {
	idp := map[string]any{
		"sub": "user-42", "role": "authenticated", "aud": "authenticated",
		"email": "ada@example.com", "email_verified": true,
		"name": "Ada Lovelace", "picture": "https://example.com/ada.png",
		"updated_at": float64(1700000000),
		"locale":     42.0, // not a string (5.1): dropped
		"nickname":   "",   // empty: dropped
		// Supabase Auth keeps profile data apart; a claim missing at
		// the top level is taken from there.
		"user_metadata": map[string]any{"given_name": "Ada", "name": "ignored: the top level wins"},
	}
	all := StandardClaimNames()
	for _, c := range []struct {
		name    string
		allowed []string
		scope   string
		want    map[string]any
	}{
		{"5.4 email scope", all, "openid email", map[string]any{"email": "ada@example.com", "email_verified": true}},
		{"5.4 profile scope", all, "openid profile", map[string]any{
			"name": "Ada Lovelace", "picture": "https://example.com/ada.png", "updated_at": float64(1700000000), "given_name": "Ada"}},
		{"both scopes, claims option narrowed", []string{"email", "name"}, "openid profile email offline_access",
			map[string]any{"email": "ada@example.com", "name": "Ada Lovelace"}},
		{"openid alone releases no claim", all, "openid", nil},
		{"no openid: nothing kept", all, "profile email", nil},
		{"never sub, role or aud", []string{"sub", "role", "aud"}, "openid profile email", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := PickClaims(idp, c.allowed, c.scope)
			if c.want == nil {
				if raw != nil {
					t.Fatalf("got %s, want nothing", raw)
				}
				return
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			if !maps.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	if PickClaims(nil, all, "openid email") != nil {
		t.Error("claims from no JWT")
	}
}

// TestReleasedClaims: of the stored claims, an ID token or userinfo answer
// gets those the token's scopes release (a refresh may narrow them).
func TestReleasedClaims(t *testing.T) {
	stored := []byte(`{"email":"ada@example.com","email_verified":true,"name":"Ada","sub":"forged"}`)
	for _, c := range []struct {
		scopes []string
		want   []string
	}{
		{[]string{"openid", "email"}, []string{"email", "email_verified"}},
		{[]string{"openid", "profile"}, []string{"name"}},
		{[]string{"openid", "profile", "email"}, []string{"email", "email_verified", "name"}},
		{[]string{"openid"}, nil},
	} {
		got := slices.Sorted(maps.Keys(ReleasedClaims(stored, c.scopes)))
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: got %v, want %v", c.scopes, got, c.want)
		}
	}
	if ReleasedClaims([]byte(`[1,2]`), []string{"openid", "email"}) != nil || ReleasedClaims(nil, []string{"email"}) != nil {
		t.Error("claims from nothing")
	}
}

func TestClaimScope(t *testing.T) {
	for claim, want := range map[string]string{
		"email": ScopeEmail, "email_verified": ScopeEmail, "name": ScopeProfile, "updated_at": ScopeProfile,
		"phone_number": "", "address": "", "sub": "", "role": "",
	} {
		if got := ClaimScope(claim); got != want {
			t.Errorf("%s: %q, want %q", claim, got, want)
		}
	}
}
