package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// claimsMap is c as a JSON object, for tests that add, drop or retype
// members.
func claimsMap(t testing.TB, c AccessTokenClaims, changes map[string]any) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal(mustJSON(t, c), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// publicKeyEncodings are the forms in which an attacker may hold our
// public key, each usable as an HMAC secret by a verifier that lets the
// token pick the algorithm (RFC 8725 2.1).
func publicKeyEncodings(t testing.TB, f *jwtFixture) map[string][]byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(f.key.public)
	if err != nil {
		t.Fatal(err)
	}
	jwkJSON, err := json.Marshal(jose.JSONWebKey{Key: f.key.public, KeyID: f.key.kid, Algorithm: f.key.alg, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{
		"PEM (SPKI)":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"DER (SPKI)":     der,
		"JWK JSON":       jwkJSON,
		"JWKS JSON":      f.ring.JWKS(),
		"PEM without LF": []byte(strings.TrimSuffix(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "\n")),
	}
	if k, ok := f.key.public.(*rsa.PublicKey); ok {
		out["PEM (PKCS #1)"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(k)})
		out["DER (PKCS #1)"] = x509.MarshalPKCS1PublicKey(k)
	}
	return out
}

func assertAccessTokenRefused(t *testing.T, f *jwtFixture, text string) {
	t.Helper()
	c, err := f.verify(text)
	if !errors.Is(err, ErrInvalidJWTAccessToken) {
		t.Errorf("VerifyAccessToken = %+v, %v; want an error wrapping ErrInvalidJWTAccessToken", c, err)
	}
}

// Every attack of RFC 8725 2 and every check of RFC 9068 4, on rings of
// both algorithms. Each refused token differs from an accepted one by the
// one thing under test (TestVerifyAccessTokenAccepts and the baseline
// below).
func TestVerifyAccessTokenRefuses(t *testing.T) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		t.Run(alg, func(t *testing.T) { testRefusals(t, newJWTFixture(t, alg)) })
	}
}

func testRefusals(t *testing.T, f *jwtFixture) {
	ctx := context.Background()
	now := f.clk.now()
	good := f.claims()
	valid := f.ownSigned(t, f.header(), good)
	if _, err := f.verify(valid); err != nil {
		t.Fatalf("baseline token refused: %v", err)
	}
	validSig := valid[strings.LastIndexByte(valid, '.')+1:]

	t.Run("RFC 8725 2.1: alg none in any case", func(t *testing.T) {
		for _, none := range []string{"none", "None", "NONE", "nOnE", "none "} {
			h := f.withHeader(map[string]any{"alg": none})
			unsigned := forge(t, h, good, nil, nil)
			assertAccessTokenRefused(t, f, unsigned)
			assertAccessTokenRefused(t, f, unsigned+validSig)
		}
		h := f.withHeader(map[string]any{"alg": "none"})
		assertAccessTokenRefused(t, f, forge(t, h, good, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType))
		assertAccessTokenRefused(t, f, forge(t, f.withHeader(map[string]any{"alg": nil}), good, nil, nil))
	})

	t.Run("RFC 8725 2.1: HMAC keyed with the public key", func(t *testing.T) {
		for name, secret := range publicKeyEncodings(t, f) {
			for _, m := range []*jwt.SigningMethodHMAC{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
				h := f.withHeader(map[string]any{"alg": m.Alg()})
				text := forge(t, h, good, m, secret)
				if c, err := f.verify(text); !errors.Is(err, ErrInvalidJWTAccessToken) {
					t.Errorf("%s keyed with the public key as %s: %+v, %v", m.Alg(), name, c, err)
				}
			}
		}
	})

	t.Run("RFC 8725 3.1: alg other than the key's", func(t *testing.T) {
		if rk, ok := f.key.private.(*rsa.PrivateKey); ok {
			// A valid RSASSA-PSS signature by our own key is still
			// not RS256.
			h := f.withHeader(map[string]any{"alg": "PS256"})
			assertAccessTokenRefused(t, f, forge(t, h, good, jwt.SigningMethodPS256, rk))
			h = f.withHeader(map[string]any{"alg": "RS512"})
			assertAccessTokenRefused(t, f, forge(t, h, good, jwt.SigningMethodRS512, rk))
			ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			h = f.withHeader(map[string]any{"alg": AlgES256})
			assertAccessTokenRefused(t, f, forge(t, h, good, jwt.SigningMethodES256, ec))
		} else {
			rk, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			h := f.withHeader(map[string]any{"alg": AlgRS256})
			assertAccessTokenRefused(t, f, forge(t, h, good, jwt.SigningMethodRS256, rk))
		}
	})

	t.Run("exp and nbf beyond the leeway", func(t *testing.T) {
		for name, changes := range map[string]map[string]any{
			"exp 31s ago":   {"exp": now.Add(-31 * time.Second).Unix()},
			"exp long ago":  {"exp": now.Add(-24 * time.Hour).Unix()},
			"exp missing":   {"exp": nil},
			"exp a string":  {"exp": "tomorrow"},
			"nbf in 31s":    {"nbf": now.Add(31 * time.Second).Unix()},
			"nbf in a year": {"nbf": now.Add(365 * 24 * time.Hour).Unix()},
			"iat in 31s":    {"iat": now.Add(31 * time.Second).Unix()},
		} {
			if c, err := f.verify(f.ownSigned(t, f.header(), claimsMap(t, good, changes))); !errors.Is(err, ErrInvalidJWTAccessToken) {
				t.Errorf("%s: %+v, %v", name, c, err)
			}
		}
	})

	t.Run("RFC 9068 4: iss", func(t *testing.T) {
		for _, iss := range []any{"https://evil.example.com", testIssuer + "/", "HTTPS://AUTH.EXAMPLE.COM", "", nil, []string{testIssuer}} {
			if c, err := f.verify(f.ownSigned(t, f.header(), claimsMap(t, good, map[string]any{"iss": iss}))); !errors.Is(err, ErrInvalidJWTAccessToken) {
				t.Errorf("iss %v: %+v, %v", iss, c, err)
			}
		}
	})

	t.Run("RFC 9068 4: aud", func(t *testing.T) {
		for _, aud := range []any{"https://other.example.com", []string{"https://other.example.com"},
			[]string{"https://a.example.com", "https://b.example.com"}, []string{}, "", nil, testAudience + "/"} {
			if c, err := f.verify(f.ownSigned(t, f.header(), claimsMap(t, good, map[string]any{"aud": aud}))); !errors.Is(err, ErrInvalidJWTAccessToken) {
				t.Errorf("aud %v: %+v, %v", aud, c, err)
			}
		}
	})

	t.Run("RFC 9068 2.2: required claims", func(t *testing.T) {
		for _, name := range []string{"sub", "client_id", "jti", "iat"} {
			if c, err := f.verify(f.ownSigned(t, f.header(), claimsMap(t, good, map[string]any{name: nil}))); !errors.Is(err, ErrInvalidJWTAccessToken) {
				t.Errorf("without %s: %+v, %v", name, c, err)
			}
		}
	})

	t.Run("RFC 9068 4: typ", func(t *testing.T) {
		for _, typ := range []any{nil, "JWT", "jwt", "at+jwt2", "application/jwt", "at+jwt; charset=utf-8", 1, []string{"at+jwt"}} {
			assertAccessTokenRefused(t, f, f.ownSigned(t, f.withHeader(map[string]any{"typ": typ}), good))
		}
		// An ID token signed by the same ring (OIDC Core 2) is never an
		// access token, even with the claims of one.
		for _, claims := range []any{
			jwt.MapClaims{"iss": testIssuer, "sub": "user-42", "aud": testAudience, "exp": now.Add(time.Minute).Unix(),
				"iat": now.Unix(), "client_id": "app", "jti": "x", "azp": "app"},
			&good,
		} {
			id, err := SignIDToken(ctx, f.ring, claims)
			if err != nil {
				t.Fatal(err)
			}
			assertAccessTokenRefused(t, f, id)
		}
	})

	t.Run("RFC 7515 4.1.11: crit", func(t *testing.T) {
		for _, crit := range []any{[]string{"exp"}, []string{"b64"}, []string{}, "x", 0} {
			h := f.withHeader(map[string]any{"crit": crit, "b64": true, "exp": 1})
			assertAccessTokenRefused(t, f, f.ownSigned(t, h, good))
		}
	})

	t.Run("tampered token", func(t *testing.T) {
		parts := strings.Split(valid, ".")
		other := claimsMap(t, good, map[string]any{"sub": "admin"})
		tampered := parts[0] + "." + b64u(mustJSON(t, other)) + "." + parts[2]
		assertAccessTokenRefused(t, f, tampered)
		// The header names the next key instead: same payload, same
		// signature.
		next := storedKIDs(f.store)
		for _, kid := range next {
			if kid != f.key.kid {
				h := b64u(mustJSON(t, f.withHeader(map[string]any{"kid": kid})))
				assertAccessTokenRefused(t, f, h+"."+parts[1]+"."+parts[2])
			}
		}
		sig := []byte(parts[2])
		sig[len(sig)/2] ^= 1
		assertAccessTokenRefused(t, f, parts[0]+"."+parts[1]+"."+string(sig))
		assertAccessTokenRefused(t, f, parts[0]+"."+parts[1]+".")
		assertAccessTokenRefused(t, f, parts[0]+"."+parts[1])
	})

	t.Run("signed by another ring's key under our kid", func(t *testing.T) {
		other := newJWTFixture(t, f.key.alg)
		assertAccessTokenRefused(t, f, forge(t, f.header(), good, jwt.GetSigningMethod(other.key.alg), other.key.private))
		// And that ring's own tokens are foreign here.
		assertAccessTokenRefused(t, f, other.sign(t, good))
	})

	t.Run("malformed", func(t *testing.T) {
		for _, text := range []string{"", ".", "..", "a.b", "a.b.c.d", "a.b.c.d.e", valid + "\n", " " + valid,
			valid + ".", strings.Repeat("A", 20_000), "eyJ.eyJ.", valid[:len(valid)-1] + "=", "tga_" + valid} {
			assertAccessTokenRefused(t, f, text)
		}
	})
}

// RFC 8725 3.10: a hostile kid is refused without reaching the store; a
// well-formed unknown one reaches it at most once a second.
func TestVerifyAccessTokenHostileKID(t *testing.T) {
	f := newJWTFixture(t, AlgES256)
	good := f.claims()
	for _, kid := range []any{
		"../../../../etc/passwd",
		"..%2f..%2f..%2fetc%2fpasswd" + strings.Repeat("A", 16),
		"' OR '1'='1",
		"x'; DROP TABLE oauth_signing_keys; --      ",
		strings.Repeat("A", 100_000),
		strings.Repeat("A", 42) + "\x00",
		"",
		nil,
		42,
		[]string{f.key.kid},
		map[string]any{"kid": f.key.kid},
	} {
		// A second on, so that only the kid's form can keep the ring
		// from reloading.
		setClock(f.clk, f.clk.now().Add(keyReloadInterval))
		before := f.store.calls.Load()
		assertAccessTokenRefused(t, f, f.ownSigned(t, f.withHeader(map[string]any{"kid": kid}), good))
		if n := f.store.calls.Load() - before; n != 0 {
			kidText, _ := json.Marshal(kid)
			t.Errorf("kid %.40s reached the store %d times", kidText, n)
		}
	}

	// Unknown but well-formed: one reload, then none for a second.
	setClock(f.clk, f.clk.now().Add(time.Second))
	before := f.store.calls.Load()
	for i := range 50 {
		kid := strings.Repeat(string(rune('a'+i%26)), 43)
		assertAccessTokenRefused(t, f, f.ownSigned(t, f.withHeader(map[string]any{"kid": kid}), good))
	}
	if n := f.store.calls.Load() - before; n != 1 {
		t.Errorf("50 unknown kids within a second made %d store calls, want 1", n)
	}
}

// RFC 8725 3.10 and 9068 4: keys named by the token (jku, x5u, jwk, x5c)
// are ignored; nothing is ever fetched.
func TestVerifyAccessTokenFetchesNothing(t *testing.T) {
	var requests atomic.Int64
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	attackerKID, err := Thumbprint(attacker.Public())
	if err != nil {
		t.Fatal(err)
	}
	attackerJWK := jose.JSONWebKey{Key: attacker.Public(), KeyID: attackerKID, Algorithm: AlgES256, Use: "sig"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{attackerJWK}})
	}))
	t.Cleanup(srv.Close)

	f := newJWTFixture(t, AlgES256)
	good := f.claims()
	pointers := map[string]any{
		"jku": srv.URL + "/jwks.json",
		"x5u": srv.URL + "/cert.pem",
		"jwk": attackerJWK,
		"x5c": []string{"MIIBszCCAVmgAwIBAgIUQ2Vyd"},
	}

	// Our own signature with the pointers added: they are ignored.
	if _, err := f.verify(f.ownSigned(t, f.withHeader(pointers), good)); err != nil {
		t.Errorf("our token with jku/x5u/jwk/x5c headers refused: %v", err)
	}
	// The attacker's signature, its key reachable through each pointer.
	for name, value := range pointers {
		for _, kid := range []any{attackerKID, f.key.kid, nil} {
			h := f.withHeader(map[string]any{name: value, "kid": kid})
			assertAccessTokenRefused(t, f, forge(t, h, good, jwt.SigningMethodES256, attacker))
		}
	}
	h := f.withHeader(pointers)
	h["kid"] = attackerKID
	assertAccessTokenRefused(t, f, forge(t, h, good, jwt.SigningMethodES256, attacker))

	if n := requests.Load(); n != 0 {
		t.Errorf("verification made %d requests to the URLs in token headers, want none", n)
	}
	// The listener does answer: a request would have been counted.
	resp, err := http.Get(srv.URL + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if requests.Load() != 1 {
		t.Fatal("the recording listener did not count a request")
	}
}
