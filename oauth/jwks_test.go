package oauth

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestJWKSParseKeys(t *testing.T) {
	k := userKeys()
	rsa := rsaJWK("r", &k.rsa.PublicKey)
	ec := ecJWK(t, "e", &k.ec.PublicKey)
	ed := edJWK("d", k.ed.Public().(ed25519.PublicKey))
	set := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for key, v := range m {
			out[key] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}
	ecPoint, _ := k.ec.PublicKey.Bytes()
	offCurveY := append([]byte(nil), ecPoint[33:]...)
	offCurveY[31] ^= 1
	small := new(big.Int).Rsh(k.rsa.N, 1100)

	tests := []struct {
		name string
		key  map[string]any
		kept bool
	}{
		{"RSA use sig", rsa, true},
		{"RSA without use", set(rsa, "use", nil), true},
		{"RSA alg RS256", set(rsa, "alg", "RS256"), true},
		{"RSA with padded base64url", set(rsa, "e", "AQAB===="), true},
		{"RSA key_ops verify", set(rsa, "key_ops", []string{"verify"}), true},
		{"RFC 7517 4.2 RSA use enc", set(rsa, "use", "enc"), false},
		{"RFC 7517 4.3 RSA key_ops encrypt only", set(rsa, "key_ops", []string{"encrypt"}), false},
		{"RFC 8725 3.1 RSA alg RS512 cannot verify RS256", set(rsa, "alg", "RS512"), false},
		{"RFC 8725 3.1 RSA alg PS256 cannot verify RS256", set(rsa, "alg", "PS256"), false},
		{"RFC 8725 3.1 RSA alg RSA-OAEP", set(rsa, "alg", "RSA-OAEP"), false},
		{"RFC 7518 3.3 RSA modulus under 2048 bits", set(rsa, "n", b64u(small.Bytes())), false},
		{"RSA even exponent", set(rsa, "e", b64u(big.NewInt(65536).Bytes())), false},
		{"RSA exponent 1", set(rsa, "e", "AQ"), false},
		{"RSA exponent too large", set(rsa, "e", b64u([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1})), false},
		{"RSA modulus missing", set(rsa, "n", nil), false},
		{"RSA modulus not base64url", set(rsa, "n", "***"), false},
		{"EC P-256", ec, true},
		{"EC alg ES256", set(ec, "alg", "ES256"), true},
		{"RFC 8725 3.1 EC alg ES384", set(ec, "alg", "ES384"), false},
		{"EC curve P-384", set(ec, "crv", "P-384"), false},
		{"EC curve secp256k1", set(ec, "crv", "secp256k1"), false},
		{"RFC 8725 3.4 EC point not on the curve", set(ec, "y", b64u(offCurveY)), false},
		{"RFC 8725 3.4 EC point at the origin", set(ec, "x", b64u(make([]byte, 32)), "y", b64u(make([]byte, 32))), false},
		{"RFC 7518 6.2.1.2 EC short coordinate", set(ec, "x", b64u(ecPoint[2:33])), false},
		{"EC y missing", set(ec, "y", nil), false},
		{"OKP Ed25519", ed, true},
		{"OKP alg EdDSA", set(ed, "alg", "EdDSA"), true},
		{"RFC 8037 3.2 OKP X25519 is not a signature key", set(ed, "crv", "X25519"), false},
		{"OKP Ed448", set(ed, "crv", "Ed448"), false},
		{"OKP short key", set(ed, "x", b64u(make([]byte, 31))), false},
		{"RFC 8725 3.1 OKP alg ES256", set(ed, "alg", "ES256"), false},
		{"RFC 8725 3.2 symmetric oct key never becomes an HMAC secret", map[string]any{"kty": "oct", "k": b64u([]byte(userTestSecret)), "alg": "HS256"}, false},
		{"unknown kty", map[string]any{"kty": "PQC", "x": "AAAA"}, false},
		{"kty missing", set(rsa, "kty", nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A known-good key keeps the set non-empty either way.
			other := edJWK("other", k.ed.Public().(ed25519.PublicKey))
			data, err := json.Marshal(map[string]any{"keys": []any{tt.key, other}})
			if err != nil {
				t.Fatal(err)
			}
			keys, err := parseJWKS(data)
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if tt.kept {
				want = 2
			}
			if len(keys) != want {
				t.Fatalf("kept %d keys, want %d", len(keys), want)
			}
		})
	}
}

func TestJWKSParseSet(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"not JSON", "<html>"},
		{"empty set", `{"keys":[]}`},
		{"no keys member", `{}`},
		{"keys not an array", `{"keys":{}}`},
		{"only unusable keys", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if keys, err := parseJWKS([]byte(tt.body)); err == nil {
				t.Fatalf("parsed %d keys", len(keys))
			}
		})
	}
}

func TestJWKSSelectKey(t *testing.T) {
	keys := []publicKey{
		{kid: "r1", alg: "RS256", key: "R1"},
		{kid: "r2", alg: "RS256", key: "R2"},
		{kid: "e1", alg: "ES256", key: "E1"},
		{kid: "dup", alg: "ES256", key: "DUP-EC"},
		{kid: "dup", alg: "EdDSA", key: "DUP-ED"},
		{kid: "twin", alg: "EdDSA", key: "T1"},
		{kid: "twin", alg: "EdDSA", key: "T2"},
	}
	tests := []struct {
		name     string
		kid, alg string
		want     any
		err      error
	}{
		{"kid and alg match", "r1", "RS256", "R1", nil},
		{"RFC 8725 3.1 key type does not match alg", "r1", "ES256", nil, errKeyAlg},
		{"RFC 8725 3.1 EC key named for EdDSA", "e1", "EdDSA", nil, errKeyAlg},
		{"unknown kid", "r9", "RS256", nil, errUnknownKey},
		{"RFC 7517 4.5 same kid, key chosen by alg", "dup", "EdDSA", "DUP-ED", nil},
		{"no kid, two EC keys fit", "", "ES256", nil, errAmbiguousKey},
		{"RFC 8725 3.1 no kid, several keys fit", "", "RS256", nil, errAmbiguousKey},
		{"no kid, no key fits", "", "PS256", nil, errUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selectKey(keys, tt.kid, tt.alg)
			if !errors.Is(err, tt.err) || (tt.err == nil && got != tt.want) {
				t.Fatalf("selectKey = %v, %v; want %v, %v", got, err, tt.want, tt.err)
			}
		})
	}
	t.Run("no kid, single key fits", func(t *testing.T) {
		got, err := selectKey(keys[:3], "", "ES256")
		if err != nil || got != "E1" {
			t.Fatalf("selectKey = %v, %v", got, err)
		}
	})
	t.Run("repeated kid and alg: signature must match one of them", func(t *testing.T) {
		got, err := selectKey(keys, "twin", "EdDSA")
		set, ok := got.(jwt.VerificationKeySet)
		if err != nil || !ok || len(set.Keys) != 2 {
			t.Fatalf("selectKey = %v, %v", got, err)
		}
	})
}

// jwksFixture is a JWKS server with one key of each supported type, plus keys
// published for other algorithms.
func jwksFixture(t *testing.T) *jwksTestServer {
	k := userKeys()
	return newJWKSTestServer(t,
		rsaJWK("r1", &k.rsa.PublicKey),
		withAlg(rsaJWK("r3", &k.rsa3.PublicKey), "RS256"),
		withAlg(rsaJWK("ps", &k.rsa2.PublicKey), "PS256"),
		withAlg(rsaJWK("r512", &k.rsa2.PublicKey), "RS512"),
		ecJWK(t, "e1", &k.ec.PublicKey),
		withAlg(edJWK("d1", k.ed.Public().(ed25519.PublicKey)), "EdDSA"),
	)
}

func TestUserVerifierJWKS(t *testing.T) {
	k := userKeys()
	type tokenFunc func(t *testing.T) string
	sign := func(m jwt.SigningMethod, key any, kid string, overrides map[string]any) tokenFunc {
		return func(t *testing.T) string { return signUserJWT(t, m, key, kid, userClaims(overrides)) }
	}
	tests := []struct {
		name   string
		token  tokenFunc
		secret bool // configure an HS256 secret too
		ok     bool
	}{
		{name: "valid RS256", token: sign(jwt.SigningMethodRS256, k.rsa, "r1", nil), ok: true},
		{name: "valid RS256, JWK declares alg", token: sign(jwt.SigningMethodRS256, k.rsa3, "r3", nil), ok: true},
		{name: "valid ES256", token: sign(jwt.SigningMethodES256, k.ec, "e1", nil), ok: true},
		{name: "valid EdDSA", token: sign(jwt.SigningMethodEdDSA, k.ed, "d1", nil), ok: true},
		{name: "ES256 without kid, one EC key", token: sign(jwt.SigningMethodES256, k.ec, "", nil), ok: true},
		{name: "EdDSA without kid, one OKP key", token: sign(jwt.SigningMethodEdDSA, k.ed, "", nil), ok: true},
		{name: "RS256 with secret also configured", token: sign(jwt.SigningMethodRS256, k.rsa, "r1", nil), secret: true, ok: true},
		{name: "HS256 with JWKS also configured", token: sign(jwt.SigningMethodHS256, []byte(userTestSecret), "", nil), secret: true, ok: true},
		{name: "RFC 8725 3.1 RS256 without kid, two RSA keys fit",
			token: sign(jwt.SigningMethodRS256, k.rsa, "", nil)},
		{name: "RFC 8725 3.1 ES256 naming an RSA key",
			token: sign(jwt.SigningMethodES256, k.ec, "r1", nil)},
		{name: "RFC 8725 3.1 EdDSA naming an EC key",
			token: sign(jwt.SigningMethodEdDSA, k.ed, "e1", nil)},
		{name: "RFC 8725 3.1 RS256 naming an OKP key",
			token: sign(jwt.SigningMethodRS256, k.rsa, "d1", nil)},
		{name: "RFC 8725 3.1 RS256 with a key published for PS256",
			token: sign(jwt.SigningMethodRS256, k.rsa2, "ps", nil)},
		{name: "RFC 8725 3.1 RS256 with a key published for RS512",
			token: sign(jwt.SigningMethodRS256, k.rsa2, "r512", nil)},
		{name: "RFC 8725 3.1 PS256 not configured",
			token: sign(jwt.SigningMethodPS256, k.rsa2, "ps", nil)},
		{name: "RFC 8725 3.1 RS512 not configured",
			token: sign(jwt.SigningMethodRS512, k.rsa2, "r512", nil)},
		{name: "RFC 8725 3.1 alg none naming a JWKS key",
			token: sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "r1", nil)},
		{name: "RFC 8725 3.1 HS256 without a secret",
			token: sign(jwt.SigningMethodHS256, []byte(userTestSecret), "", nil)},
		{name: "RFC 7515 5.2 RS256 signed by another key",
			token: sign(jwt.SigningMethodRS256, k.rsa2, "r1", nil)},
		{name: "RFC 7515 5.2 ES256 signed by another key",
			token: sign(jwt.SigningMethodES256, k.ec2, "e1", nil)},
		{name: "unknown kid",
			token: sign(jwt.SigningMethodRS256, k.rsa2, "nope", nil)},
		{name: "RFC 7515 4.1.4 kid not a string",
			token: func(t *testing.T) string {
				tok := jwt.NewWithClaims(jwt.SigningMethodRS256, userClaims(nil))
				tok.Header["kid"] = 1
				s, err := tok.SignedString(k.rsa)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}},
		{name: "RFC 7519 4.1.4 expired ES256",
			token: sign(jwt.SigningMethodES256, k.ec, "e1", map[string]any{"exp": userT0.Add(-time.Hour).Unix()})},
		{name: "RFC 8725 3.9 EdDSA for another audience",
			token: sign(jwt.SigningMethodEdDSA, k.ed, "d1", map[string]any{"aud": "service_role"})},
		{name: "RFC 7519 4.1.4 RS256 without exp",
			token: sign(jwt.SigningMethodRS256, k.rsa, "r1", map[string]any{"exp": nil})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := jwksFixture(t)
			v := newTestUserVerifier(t, newUserClock(), func(c *UserVerifierConfig) {
				c.JWKSURL = srv.URL
				if tt.secret {
					withSecret(c)
				}
			})
			token := tt.token(t)
			user, err := v.Verify(context.Background(), token)
			if tt.ok {
				if err != nil || user != "user-42" {
					t.Fatalf("Verify = %q, %v", user, err)
				}
				return
			}
			assertRefused(t, token, err)
		})
	}
}

func TestJWKSUnknownKidRefetchFindsRotatedKey(t *testing.T) {
	k := userKeys()
	srv := newJWKSTestServer(t, rsaJWK("r1", &k.rsa.PublicKey))
	v := newTestUserVerifier(t, newUserClock(), func(c *UserVerifierConfig) { c.JWKSURL = srv.URL })
	ctx := context.Background()

	if srv.fetches() != 0 {
		t.Fatal("JWKS fetched before first use")
	}
	if _, err := v.Verify(ctx, signUserJWT(t, jwt.SigningMethodRS256, k.rsa, "r1", userClaims(nil))); err != nil {
		t.Fatal(err)
	}
	srv.setKeys(rsaJWK("r1", &k.rsa.PublicKey), rsaJWK("r2", &k.rsa2.PublicKey))
	if _, err := v.Verify(ctx, signUserJWT(t, jwt.SigningMethodRS256, k.rsa2, "r2", userClaims(nil))); err != nil {
		t.Fatalf("rotated key refused: %v", err)
	}
	if _, err := v.Verify(ctx, signUserJWT(t, jwt.SigningMethodRS256, k.rsa, "r1", userClaims(nil))); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches(); n != 2 {
		t.Fatalf("%d fetches, want 2 (first use, one refetch)", n)
	}
}

func TestJWKSUnknownKidRefetchRateLimited(t *testing.T) {
	k := userKeys()
	srv := newJWKSTestServer(t, rsaJWK("r1", &k.rsa.PublicKey))
	clock := newUserClock()
	v := newTestUserVerifier(t, clock, func(c *UserVerifierConfig) { c.JWKSURL = srv.URL })
	ctx := context.Background()
	forged := signUserJWT(t, jwt.SigningMethodRS256, k.rsa2, "forged", userClaims(nil))
	rotated := signUserJWT(t, jwt.SigningMethodRS256, k.rsa2, "r2", userClaims(nil))
	wantFetches := func(n int64) {
		t.Helper()
		if got := srv.fetches(); got != n {
			t.Fatalf("%d fetches, want %d", got, n)
		}
	}

	if _, err := v.Verify(ctx, signUserJWT(t, jwt.SigningMethodRS256, k.rsa, "r1", userClaims(nil))); err != nil {
		t.Fatal(err)
	}
	wantFetches(1)

	// An attacker cycling kids costs the identity provider one request a
	// minute, however many tokens it sends.
	_, err := v.Verify(ctx, forged)
	assertRefused(t, forged, err)
	wantFetches(2)
	clock.Advance(30 * time.Second)
	for range 5 {
		_, err = v.Verify(ctx, forged)
		assertRefused(t, forged, err)
	}
	wantFetches(2)

	// The limit holds for a genuinely new key too, until the minute is up.
	srv.setKeys(rsaJWK("r1", &k.rsa.PublicKey), rsaJWK("r2", &k.rsa2.PublicKey))
	clock.Advance(29 * time.Second)
	_, err = v.Verify(ctx, rotated)
	assertRefused(t, rotated, err)
	wantFetches(2)

	clock.Advance(2 * time.Second)
	if _, err := v.Verify(ctx, rotated); err != nil {
		t.Fatalf("refetch after a minute: %v", err)
	}
	wantFetches(3)
	_, err = v.Verify(ctx, forged)
	assertRefused(t, forged, err)
	wantFetches(3)
}

func TestJWKSConcurrentUnknownKidNoStampede(t *testing.T) {
	k := userKeys()
	srv := newJWKSTestServer(t, rsaJWK("r1", &k.rsa.PublicKey))
	v := newTestUserVerifier(t, newUserClock(), func(c *UserVerifierConfig) { c.JWKSURL = srv.URL })
	ctx := context.Background()

	// First use, many callers at once: one fetch.
	srv.setDelay(50 * time.Millisecond)
	good := signUserJWT(t, jwt.SigningMethodRS256, k.rsa, "r1", userClaims(nil))
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, err := v.Verify(ctx, good); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := srv.fetches(); n != 1 {
		t.Fatalf("%d fetches for concurrent first use, want 1", n)
	}

	// Unknown kid, many callers at once: one refetch.
	forged := signUserJWT(t, jwt.SigningMethodRS256, k.rsa2, "forged", userClaims(nil))
	for range 32 {
		wg.Go(func() {
			_, err := v.Verify(ctx, forged)
			if !errors.Is(err, ErrInvalidUserJWT) {
				t.Errorf("forged kid: %v", err)
			}
		})
	}
	wg.Wait()
	if n := srv.fetches(); n != 2 {
		t.Fatalf("%d fetches after concurrent unknown kids, want 2", n)
	}
}

func TestJWKSServerDownKeepsCachedKeys(t *testing.T) {
	k := userKeys()
	srv := newJWKSTestServer(t, rsaJWK("r1", &k.rsa.PublicKey))
	clock := newUserClock()
	v := newTestUserVerifier(t, clock, func(c *UserVerifierConfig) { c.JWKSURL = srv.URL })
	ctx := context.Background()
	good := signUserJWT(t, jwt.SigningMethodRS256, k.rsa, "r1", userClaims(nil))
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}

	// Past the cache's maximum age, so the verifier tries to refetch.
	srv.setStatus(http.StatusServiceUnavailable)
	clock.Advance(jwksMaxAge + time.Minute)
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatalf("cached key unusable while the IdP answers 503: %v", err)
	}
	if n := srv.fetches(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}

	// A kid we do not know may be a rotation we cannot see: not the
	// token's fault.
	rotated := signUserJWT(t, jwt.SigningMethodRS256, k.rsa2, "r2", userClaims(nil))
	if _, err := v.Verify(ctx, rotated); !errors.Is(err, ErrUserKeysUnavailable) || errors.Is(err, ErrInvalidUserJWT) {
		t.Fatalf("unknown kid while the IdP is down: %v", err)
	}

	srv.Close()
	clock.Advance(2 * time.Minute)
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatalf("cached key unusable while the IdP is unreachable: %v", err)
	}
}

func TestJWKSServerDownNoKeys(t *testing.T) {
	k := userKeys()
	srv := newJWKSTestServer(t, rsaJWK("r1", &k.rsa.PublicKey))
	srv.setStatus(http.StatusBadGateway)
	clock := newUserClock()
	v := newTestUserVerifier(t, clock, func(c *UserVerifierConfig) { c.JWKSURL = srv.URL })
	ctx := context.Background()
	good := signUserJWT(t, jwt.SigningMethodRS256, k.rsa, "r1", userClaims(nil))

	for range 3 {
		_, err := v.Verify(ctx, good)
		if !errors.Is(err, ErrUserKeysUnavailable) || errors.Is(err, ErrInvalidUserJWT) {
			t.Fatalf("Verify with the IdP down: %v", err)
		}
		if strings.Contains(err.Error(), good) {
			t.Fatal("error message contains the token")
		}
	}
	if n := srv.fetches(); n != 1 {
		t.Fatalf("%d fetches within the retry interval, want 1", n)
	}

	srv.setStatus(0)
	clock.Advance(jwksRetryInterval)
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if n := srv.fetches(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestJWKSServerUnreachable(t *testing.T) {
	srv := newJWKSTestServer(t)
	url := srv.URL
	srv.Close()
	v := newTestUserVerifier(t, newUserClock(), func(c *UserVerifierConfig) { c.JWKSURL = url })
	token := signUserJWT(t, jwt.SigningMethodES256, userKeys().ec, "e1", userClaims(nil))
	if _, err := v.Verify(context.Background(), token); !errors.Is(err, ErrUserKeysUnavailable) {
		t.Fatalf("Verify = %v, want ErrUserKeysUnavailable", err)
	}
}

func TestJWKSBadResponses(t *testing.T) {
	k := userKeys()
	validSet, _ := json.Marshal(map[string]any{"keys": []any{rsaJWK("r1", &k.rsa.PublicKey)}})
	// Trailing white space keeps the document valid JSON however much of
	// it is read, so only the size check refuses it.
	huge := append(append([]byte(nil), validSet...), strings.Repeat(" ", maxJWKSSize)...)
	tests := []struct {
		name   string
		status int
		body   []byte
	}{
		{"valid key set under HTTP 404", http.StatusNotFound, validSet},
		{"valid key set under HTTP 203", http.StatusNonAuthoritativeInfo, validSet},
		{"valid key set over 1 MiB", 0, huge},
		{"HTML error page", 0, []byte("<html>oops</html>")},
		{"no usable key", 0, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSTestServer(t)
			srv.setStatus(tt.status)
			srv.setBody(tt.body)
			v := newTestUserVerifier(t, newUserClock(), func(c *UserVerifierConfig) { c.JWKSURL = srv.URL })
			token := signUserJWT(t, jwt.SigningMethodRS256, k.rsa, "r1", userClaims(nil))
			if _, err := v.Verify(context.Background(), token); !errors.Is(err, ErrUserKeysUnavailable) {
				t.Fatalf("Verify = %v, want ErrUserKeysUnavailable", err)
			}
		})
	}
}

func TestJWKSStaleSetDropsWithdrawnKey(t *testing.T) {
	k := userKeys()
	srv := newJWKSTestServer(t, rsaJWK("r1", &k.rsa.PublicKey), rsaJWK("r2", &k.rsa2.PublicKey))
	clock := newUserClock()
	v := newTestUserVerifier(t, clock, func(c *UserVerifierConfig) { c.JWKSURL = srv.URL })
	ctx := context.Background()
	old := signUserJWT(t, jwt.SigningMethodRS256, k.rsa, "r1", userClaims(nil))
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}

	srv.setKeys(rsaJWK("r2", &k.rsa2.PublicKey))
	clock.Advance(jwksMaxAge - time.Second)
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("within max age: %v", err)
	}
	clock.Advance(2 * time.Second)
	_, err := v.Verify(ctx, old)
	assertRefused(t, old, err)
	if _, err := v.Verify(ctx, signUserJWT(t, jwt.SigningMethodRS256, k.rsa2, "r2", userClaims(nil))); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestJWKSWaitingCallerHonoursContext(t *testing.T) {
	k := userKeys()
	srv := newJWKSTestServer(t, rsaJWK("r1", &k.rsa.PublicKey))
	held, release := srv.hold()
	defer release()
	v := newTestUserVerifier(t, newUserClock(), func(c *UserVerifierConfig) { c.JWKSURL = srv.URL })
	good := signUserJWT(t, jwt.SigningMethodRS256, k.rsa, "r1", userClaims(nil))

	// The first caller gives up while its fetch runs; the fetch must still
	// complete, or one impatient client would hold back everyone else.
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx1, good)
		first <- err
	}()
	<-held // the fetch has reached the server, which keeps it
	cancel1()

	// A second caller waiting for that fetch stops at its own deadline:
	// the fetch cannot end before release, so returning at all is that.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	_, err := v.Verify(ctx2, good)
	if !errors.Is(err, ErrUserKeysUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting caller: %v", err)
	}

	release()
	if err := <-first; err != nil {
		t.Fatalf("fetching caller: %v", err)
	}
	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}
