package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

func TestAtHash(t *testing.T) {
	// OIDC Core 1.0 A.3: the access token of the example and the at_hash
	// of its ID token (RS256).
	if got, want := AtHash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ"; got != want {
		t.Errorf("AtHash(OIDC Core A.3 token) = %s, want %s", got, want)
	}
	// OIDC Core 3.1.3.6 computed another way: the left 128 bits of the
	// SHA-256, padded base64url with the padding cut.
	for range 20 {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			t.Fatal(err)
		}
		token := "tga_" + base64.RawURLEncoding.EncodeToString(raw)
		h := sha256.New()
		h.Write([]byte(token))
		want := strings.TrimRight(base64.URLEncoding.EncodeToString(h.Sum(nil)[:16]), "=")
		if got := AtHash(token); got != want || len(got) != 22 {
			t.Errorf("AtHash(%s) = %s, want %s (22 characters)", token, got, want)
		}
	}
}

// An ID token verifies for a relying party holding only the JWKS, the way
// OIDC Core 3.1.3.7 has it checked.
func TestSignIDToken(t *testing.T) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		t.Run(alg, func(t *testing.T) {
			f := newJWTFixture(t, alg)
			now := f.clk.now()
			access := "tga_example"
			text, err := SignIDToken(context.Background(), f.ring, map[string]any{
				"iss": testIssuer, "sub": "user-42", "aud": "app", "azp": "app",
				"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "auth_time": now.Add(-time.Minute).Unix(),
				"nonce": "n-0S6_WzA2Mj", "at_hash": AtHash(access),
			})
			if err != nil {
				t.Fatal(err)
			}

			var set jose.JSONWebKeySet
			if err := json.Unmarshal(f.ring.JWKS(), &set); err != nil {
				t.Fatal(err)
			}
			claims := jwt.MapClaims{}
			tok, err := jwt.NewParser(
				jwt.WithValidMethods([]string{alg}),
				jwt.WithIssuer(testIssuer),
				jwt.WithAudience("app"),
				jwt.WithExpirationRequired(),
				jwt.WithTimeFunc(f.clk.now),
			).ParseWithClaims(text, claims, func(tok *jwt.Token) (any, error) {
				kid, _ := tok.Header["kid"].(string)
				keys := set.Key(kid)
				if len(keys) != 1 {
					t.Fatalf("JWKS has %d keys with the token's kid %q", len(keys), kid)
				}
				return keys[0].Key, nil
			})
			if err != nil {
				t.Fatalf("relying party refused the ID token: %v", err)
			}
			if tok.Header["typ"] != "JWT" || tok.Header["kid"] != f.key.KID() || tok.Header["alg"] != alg {
				t.Errorf("header = %v, want typ JWT, kid %s, alg %s", tok.Header, f.key.KID(), alg)
			}
			if claims["at_hash"] != AtHash(access) || claims["nonce"] != "n-0S6_WzA2Mj" {
				t.Errorf("claims = %v", claims)
			}
		})
	}
}
