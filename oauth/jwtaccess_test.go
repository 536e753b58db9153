package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://auth.example.com"
	testAudience = "https://api.example.com"
)

// jwtFixture is a key ring with its store and clock, loaded at a fixed
// time a few minutes into a slot.
type jwtFixture struct {
	store *fakeSigningKeyStore
	clk   *testClock
	ring  *KeyRing
	key   *SigningKey // the current key
}

func newJWTFixture(t testing.TB, alg string) *jwtFixture {
	t.Helper()
	f := &jwtFixture{store: newFakeSigningKeyStore(), clk: newTestClock()}
	setClock(f.clk, slotStart(testSlot).Add(5*time.Minute))
	f.ring = newTestRing(t, f.store, alg, f.clk)
	f.key = current(t, f.ring)
	return f
}

// claims returns valid access token claims at the fixture's time.
func (f *jwtFixture) claims() AccessTokenClaims {
	now := f.clk.now()
	return AccessTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Subject:   "user-42",
			Audience:  jwt.ClaimStrings{testAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        "jti-1",
		},
		ClientID: "app",
		Scope:    "openid read",
		AuthTime: jwt.NewNumericDate(now.Add(-time.Minute)),
	}
}

// sign signs c as the ring would.
func (f *jwtFixture) sign(t testing.TB, c AccessTokenClaims) string {
	t.Helper()
	s, err := SignAccessToken(context.Background(), f.ring, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *jwtFixture) verify(text string) (*AccessTokenClaims, error) {
	return VerifyAccessToken(context.Background(), f.ring, text, testIssuer, testAudience, f.clk.now())
}

// header is the JOSE header of a token the ring signs.
func (f *jwtFixture) header() map[string]any {
	return map[string]any{"alg": f.key.alg, "typ": "at+jwt", "kid": f.key.kid}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forge builds a compact JWS from header and claims exactly as given,
// signing with method and key (no signature when method is nil).
func forge(t testing.TB, header map[string]any, claims any, method jwt.SigningMethod, key any) string {
	t.Helper()
	input := b64u(mustJSON(t, header)) + "." + b64u(mustJSON(t, claims))
	if method == nil {
		return input + "."
	}
	sig, err := method.Sign(input, key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64u(sig)
}

// withHeader returns the fixture's header with changes applied; a nil
// value removes the member.
func (f *jwtFixture) withHeader(changes map[string]any) map[string]any {
	h := f.header()
	for k, v := range changes {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return h
}

// ownSigned forges a token signed by the ring's current key with the
// header and claims given.
func (f *jwtFixture) ownSigned(t testing.TB, header map[string]any, claims any) string {
	t.Helper()
	return forge(t, header, claims, jwt.GetSigningMethod(f.key.alg), f.key.private)
}

func TestAccessTokenRoundTrip(t *testing.T) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		t.Run(alg, func(t *testing.T) {
			f := newJWTFixture(t, alg)
			c := f.claims()
			c.Confirmation = &Confirmation{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
			text := f.sign(t, c)

			parts := strings.Split(text, ".")
			if len(parts) != 3 {
				t.Fatalf("token has %d parts", len(parts))
			}
			var header map[string]any
			raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
			if err := json.Unmarshal(raw, &header); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"alg": alg, "typ": "at+jwt", "kid": f.key.KID()}
			if !maps.Equal(header, want) {
				t.Errorf("header = %v, want %v", header, want)
			}
			var payload map[string]any
			raw, _ = base64.RawURLEncoding.DecodeString(parts[1])
			if err := json.Unmarshal(raw, &payload); err != nil {
				t.Fatal(err)
			}
			// RFC 9068 2.2 and 2.2.3, RFC 9449 6.1.
			names := slices.Sorted(maps.Keys(payload))
			if want := []string{"aud", "auth_time", "client_id", "cnf", "exp", "iat", "iss", "jti", "scope", "sub"}; !slices.Equal(names, want) {
				t.Errorf("payload members = %v, want %v", names, want)
			}
			if cnf, _ := payload["cnf"].(map[string]any); cnf["jkt"] != c.Confirmation.JKT {
				t.Errorf("cnf = %v, want jkt %s", payload["cnf"], c.Confirmation.JKT)
			}

			got, err := f.verify(text)
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != c.Subject || got.ClientID != c.ClientID || got.Scope != c.Scope || got.ID != c.ID ||
				!got.AuthTime.Equal(c.AuthTime.Time) || got.Confirmation == nil || got.Confirmation.JKT != c.Confirmation.JKT {
				t.Errorf("verified claims = %+v, want %+v", got, c)
			}
		})
	}
}

// A token outliving the slot of its key verifies in the next slot, while
// another key signs, until it expires.
func TestAccessTokenOutlivesItsSlot(t *testing.T) {
	f := newJWTFixture(t, AlgES256)
	setClock(f.clk, slotStart(testSlot+1).Add(-time.Second))
	c := f.claims()
	c.ExpiresAt = jwt.NewNumericDate(f.clk.now().Add(testMaxTTL))
	text := f.sign(t, c)

	setClock(f.clk, c.ExpiresAt.Add(-time.Second))
	if k := current(t, f.ring); k.KID() == f.key.KID() {
		t.Fatal("the next slot still signs with the old key")
	}
	if _, err := f.verify(text); err != nil {
		t.Errorf("token of the previous slot's key, before its exp: %v", err)
	}
	setClock(f.clk, c.ExpiresAt.Add(jwtLeeway+time.Second))
	if _, err := f.verify(text); !errors.Is(err, ErrInvalidJWTAccessToken) {
		t.Errorf("expired token = %v, want refused", err)
	}
}

// A token must not outlive the publication of the key that signs it.
func TestSignRefusesTokenOutlivingItsKey(t *testing.T) {
	f := newJWTFixture(t, AlgES256)
	c := f.claims()
	c.ExpiresAt = jwt.NewNumericDate(f.key.RetireAt().Add(time.Second))
	if s, err := SignAccessToken(context.Background(), f.ring, c); err == nil {
		t.Errorf("SignAccessToken with exp after the key retires = %s, want an error", s)
	}
	c.ExpiresAt = nil
	if s, err := SignAccessToken(context.Background(), f.ring, c); err == nil {
		t.Errorf("SignAccessToken without exp = %s, want an error", s)
	}
	if s, err := SignIDToken(context.Background(), f.ring, jwt.MapClaims{"sub": "x"}); err == nil {
		t.Errorf("SignIDToken without exp = %s, want an error", s)
	}
}

// Tokens that must be accepted: the edges of what RFC 9068 and the
// leeway allow.
func TestVerifyAccessTokenAccepts(t *testing.T) {
	f := newJWTFixture(t, AlgES256)
	now := f.clk.now()
	tests := []struct {
		name   string
		header map[string]any
		mutate func(c *AccessTokenClaims)
	}{
		{"exp 29s ago (within the leeway)", nil, func(c *AccessTokenClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-29 * time.Second)) }},
		{"nbf in 29s (within the leeway)", nil, func(c *AccessTokenClaims) { c.NotBefore = jwt.NewNumericDate(now.Add(29 * time.Second)) }},
		{"iat in 29s (within the leeway)", nil, func(c *AccessTokenClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(29 * time.Second)) }},
		{"aud array containing ours", nil, func(c *AccessTokenClaims) { c.Audience = jwt.ClaimStrings{"https://other.example.com", testAudience} }},
		{"RFC 9068 4: typ application/at+jwt", map[string]any{"typ": "application/at+jwt"}, nil},
		{"RFC 7515 4.1.9: typ in another case", map[string]any{"typ": "AT+JWT"}, nil},
		{"typ media type in another case", map[string]any{"typ": "Application/At+Jwt"}, nil},
		{"unknown header member, not in crit", map[string]any{"x-trace": "1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.claims()
			if tt.mutate != nil {
				tt.mutate(&c)
			}
			if _, err := f.verify(f.ownSigned(t, f.withHeader(tt.header), c)); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
	// A single-string aud (RFC 7519 4.1.3) equal to ours.
	c := f.claims()
	m := map[string]any{}
	if err := json.Unmarshal(mustJSON(t, c), &m); err != nil {
		t.Fatal(err)
	}
	m["aud"] = testAudience
	if _, err := f.verify(f.ownSigned(t, f.header(), m)); err != nil {
		t.Errorf("aud as a string equal to ours: refused: %v", err)
	}
}
