package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// userT0 is the fixed "now" of the user JWT tests.
var userT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	userTestSecret   = "0123456789abcdef0123456789abcdef-test-secret"
	userTestIssuer   = "https://idp.example.com/auth/v1"
	userTestAudience = "authenticated"
)

// userClock is a clock the tests move by hand.
type userClock struct {
	mu sync.Mutex
	t  time.Time
}

func newUserClock() *userClock { return &userClock{t: userT0} }

func (c *userClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *userClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// userTestKeys are generated once: RSA key generation is slow.
type userTestKeys struct {
	rsa, rsa2, rsa3 *rsa.PrivateKey
	ec, ec2         *ecdsa.PrivateKey
	ed              ed25519.PrivateKey
}

var userKeys = sync.OnceValue(func() *userTestKeys {
	k := &userTestKeys{}
	var err error
	for _, p := range []**rsa.PrivateKey{&k.rsa, &k.rsa2, &k.rsa3} {
		if *p, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	for _, p := range []**ecdsa.PrivateKey{&k.ec, &k.ec2} {
		if *p, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	return k
})

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// withAlg adds an alg member to a JWK.
func withAlg(k map[string]any, alg string) map[string]any {
	k = maps.Clone(k)
	k["alg"] = alg
	return k
}

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "kid": kid,
		"n": b64u(pub.N.Bytes()),
		"e": b64u(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func ecJWK(tb testing.TB, kid string, pub *ecdsa.PublicKey) map[string]any {
	tb.Helper()
	pt, err := pub.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return map[string]any{
		"kty": "EC", "crv": "P-256", "kid": kid,
		"x": b64u(pt[1:33]), "y": b64u(pt[33:]),
	}
}

func edJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64u(pub)}
}

// jwksTestServer publishes a JWK set the test can change, and counts fetches.
type jwksTestServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	keys   []map[string]any
	status int           // 0 means 200
	body   []byte        // when set, served instead of the key set
	delay  time.Duration // before answering
	// held, when set, receives each request as it arrives, which then
	// waits until release is closed.
	held    chan struct{}
	release chan struct{}
}

func newJWKSTestServer(tb testing.TB, keys ...map[string]any) *jwksTestServer {
	s := &jwksTestServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		status, body, delay := s.status, s.body, s.delay
		held, release := s.held, s.release
		if body == nil {
			var err error
			if body, err = json.Marshal(map[string]any{"keys": s.keys}); err != nil {
				panic(err)
			}
		}
		s.mu.Unlock()
		if held != nil {
			held <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		time.Sleep(delay)
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksTestServer) setKeys(keys ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *jwksTestServer) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

func (s *jwksTestServer) setBody(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = b
}

func (s *jwksTestServer) setDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// hold makes the server keep every request until the returned release is
// called; each request is sent on held as it arrives.
func (s *jwksTestServer) hold() (held <-chan struct{}, release func()) {
	h, r := make(chan struct{}, 16), make(chan struct{})
	s.mu.Lock()
	s.held, s.release = h, r
	s.mu.Unlock()
	var once sync.Once
	return h, func() { once.Do(func() { close(r) }) }
}

func (s *jwksTestServer) fetches() int64 { return s.hits.Load() }

// userClaims returns valid claims for a token checked at userT0.
func userClaims(overrides map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "user-42",
		"iss": userTestIssuer,
		"aud": userTestAudience,
		"iat": userT0.Add(-time.Minute).Unix(),
		"exp": userT0.Add(24 * time.Hour).Unix(),
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func signUserJWT(tb testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// rawJWT assembles a token from JSON header and claims and a raw signature,
// for tokens a library would refuse to produce.
func rawJWT(header, claims string, sig []byte) string {
	return b64u([]byte(header)) + "." + b64u([]byte(claims)) + "." + b64u(sig)
}

// newTestUserVerifier returns a verifier checking issuer and audience at the
// clock's time; mutate adjusts the config.
func newTestUserVerifier(tb testing.TB, clock *userClock, mutate func(*UserVerifierConfig)) *UserVerifier {
	tb.Helper()
	cfg := UserVerifierConfig{
		Issuer:   userTestIssuer,
		Audience: userTestAudience,
		Now:      clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := NewUserVerifier(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func withSecret(c *UserVerifierConfig) { c.HS256Secret = []byte(userTestSecret) }

// assertRefused checks that err is a client-safe refusal of token.
func assertRefused(t *testing.T, token string, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("token accepted")
	}
	if !errors.Is(err, ErrInvalidUserJWT) {
		t.Fatalf("error %q does not wrap ErrInvalidUserJWT", err)
	}
	if errors.Is(err, ErrUserKeysUnavailable) {
		t.Fatalf("error %q claims keys are unavailable", err)
	}
	msg := err.Error()
	if token != "" && strings.Contains(msg, token) {
		t.Fatalf("error message contains the token: %q", msg)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Fatalf("error message contains part of the token: %q", msg)
		}
	}
}

func TestNewUserVerifierConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  UserVerifierConfig
		ok   bool
	}{
		{"neither secret nor JWKS URL", UserVerifierConfig{}, false},
		{"RFC 7518 3.2 empty secret (unset env var) would let anyone sign", UserVerifierConfig{HS256Secret: []byte{}}, false},
		{"RFC 7518 3.2 secret shorter than 256 bits", UserVerifierConfig{HS256Secret: []byte("short")}, false},
		{"secret of 32 bytes", UserVerifierConfig{HS256Secret: []byte(userTestSecret[:32])}, true},
		{"https JWKS URL", UserVerifierConfig{JWKSURL: "https://idp.example.com/jwks.json"}, true},
		{"http JWKS URL on loopback", UserVerifierConfig{JWKSURL: "http://127.0.0.1:9999/jwks.json"}, true},
		{"http JWKS URL on localhost", UserVerifierConfig{JWKSURL: "http://localhost:9999/jwks.json"}, true},
		{"RFC 8725 3.1 plain http JWKS URL lets the network substitute keys", UserVerifierConfig{JWKSURL: "http://idp.example.com/jwks.json"}, false},
		{"relative JWKS URL", UserVerifierConfig{JWKSURL: "/jwks.json"}, false},
		{"negative leeway", UserVerifierConfig{HS256Secret: []byte(userTestSecret), Leeway: -time.Second}, false},
		{"both secret and JWKS URL", UserVerifierConfig{HS256Secret: []byte(userTestSecret), JWKSURL: "https://idp.example.com/jwks.json"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewUserVerifier(tt.cfg)
			if tt.ok && (err != nil || v == nil) {
				t.Fatalf("NewUserVerifier: %v", err)
			}
			if !tt.ok && err == nil {
				t.Fatal("NewUserVerifier accepted a bad config")
			}
		})
	}
}

func TestUserVerifierHS256(t *testing.T) {
	secret := []byte(userTestSecret)
	hs := func(t *testing.T, overrides map[string]any) string {
		return signUserJWT(t, jwt.SigningMethodHS256, secret, "", userClaims(overrides))
	}
	tests := []struct {
		name   string
		token  func(t *testing.T) string
		mutate func(*UserVerifierConfig)
		user   string // "" means refused
	}{
		{name: "valid HS256", user: "user-42",
			token: func(t *testing.T) string { return hs(t, nil) }},
		{name: "valid HS256 with a kid header", user: "user-42",
			token: func(t *testing.T) string {
				return signUserJWT(t, jwt.SigningMethodHS256, secret, "some-kid", userClaims(nil))
			}},
		{name: "RFC 7515 5.2 wrong secret",
			token: func(t *testing.T) string {
				return signUserJWT(t, jwt.SigningMethodHS256, []byte("another-secret-of-enough-length-xx"), "", userClaims(nil))
			}},
		{name: "RFC 8725 3.1 alg none",
			token: func(t *testing.T) string {
				return signUserJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", userClaims(nil))
			}},
		{name: "RFC 8725 3.1 alg none keeping the HS256 signature",
			token: func(t *testing.T) string {
				good := strings.Split(hs(t, nil), ".")
				return b64u([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + good[1] + "." + good[2]
			}},
		{name: "RFC 8725 3.1 alg None in another letter case",
			token: func(t *testing.T) string {
				c, _ := json.Marshal(userClaims(nil))
				return rawJWT(`{"alg":"None","typ":"JWT"}`, string(c), nil)
			}},
		{name: "RFC 8725 3.1 alg HS512 not configured",
			token: func(t *testing.T) string {
				return signUserJWT(t, jwt.SigningMethodHS512, secret, "", userClaims(nil))
			}},
		{name: "RFC 8725 3.1 RS256 refused without a JWKS URL",
			token: func(t *testing.T) string {
				return signUserJWT(t, jwt.SigningMethodRS256, userKeys().rsa, "", userClaims(nil))
			}},
		{name: "RFC 7519 4.1.4 expired beyond leeway",
			token: func(t *testing.T) string { return hs(t, map[string]any{"exp": userT0.Add(-31 * time.Second).Unix()}) }},
		{name: "RFC 7519 4.1.4 expired within leeway ok", user: "user-42",
			token: func(t *testing.T) string { return hs(t, map[string]any{"exp": userT0.Add(-20 * time.Second).Unix()}) }},
		{name: "RFC 7519 4.1.4 exp missing",
			token: func(t *testing.T) string { return hs(t, map[string]any{"exp": nil}) }},
		{name: "RFC 7519 4.1.4 exp not a number",
			token: func(t *testing.T) string { return hs(t, map[string]any{"exp": "tomorrow"}) }},
		{name: "RFC 7519 4.1.5 nbf in the future beyond leeway",
			token: func(t *testing.T) string { return hs(t, map[string]any{"nbf": userT0.Add(5 * time.Minute).Unix()}) }},
		{name: "RFC 7519 4.1.5 nbf within leeway ok", user: "user-42",
			token: func(t *testing.T) string { return hs(t, map[string]any{"nbf": userT0.Add(20 * time.Second).Unix()}) }},
		{name: "RFC 7519 4.1.6 iat in the future beyond leeway",
			token: func(t *testing.T) string { return hs(t, map[string]any{"iat": userT0.Add(5 * time.Minute).Unix()}) }},
		{name: "RFC 7519 4.1.6 iat within leeway ok", user: "user-42",
			token: func(t *testing.T) string { return hs(t, map[string]any{"iat": userT0.Add(20 * time.Second).Unix()}) }},
		{name: "custom leeway of 1s refuses 20s skew",
			mutate: func(c *UserVerifierConfig) { withSecret(c); c.Leeway = time.Second },
			token:  func(t *testing.T) string { return hs(t, map[string]any{"nbf": userT0.Add(20 * time.Second).Unix()}) }},
		{name: "RFC 8725 3.8 wrong iss",
			token: func(t *testing.T) string { return hs(t, map[string]any{"iss": "https://evil.example.com/auth/v1"}) }},
		{name: "RFC 8725 3.8 iss missing",
			token: func(t *testing.T) string { return hs(t, map[string]any{"iss": nil}) }},
		{name: "iss not checked when no issuer configured", user: "user-42",
			mutate: func(c *UserVerifierConfig) { withSecret(c); c.Issuer = "" },
			token:  func(t *testing.T) string { return hs(t, map[string]any{"iss": "https://other.example.com"}) }},
		{name: "RFC 8725 3.9 wrong aud",
			token: func(t *testing.T) string { return hs(t, map[string]any{"aud": "service_role"}) }},
		{name: "RFC 8725 3.9 aud missing",
			token: func(t *testing.T) string { return hs(t, map[string]any{"aud": nil}) }},
		{name: "RFC 7519 4.1.3 aud array containing the audience ok", user: "user-42",
			token: func(t *testing.T) string { return hs(t, map[string]any{"aud": []string{"other", userTestAudience}}) }},
		{name: "RFC 8725 3.9 aud array without the audience",
			token: func(t *testing.T) string { return hs(t, map[string]any{"aud": []string{"other", "more"}}) }},
		{name: "missing sub",
			token: func(t *testing.T) string { return hs(t, map[string]any{"sub": nil}) }},
		{name: "empty sub",
			token: func(t *testing.T) string { return hs(t, map[string]any{"sub": ""}) }},
		{name: "sub not a string",
			token: func(t *testing.T) string { return hs(t, map[string]any{"sub": 42}) }},
		{name: "sub with a newline (header and log injection)",
			token: func(t *testing.T) string {
				return hs(t, map[string]any{"sub": "user-42\r\nX-Authenticated-Scope: admin"})
			}},
		{name: "custom user claim", user: "uid-7",
			mutate: func(c *UserVerifierConfig) { withSecret(c); c.UserClaim = "user_id" },
			token:  func(t *testing.T) string { return hs(t, map[string]any{"user_id": "uid-7"}) }},
		{name: "custom user claim missing although sub is set",
			mutate: func(c *UserVerifierConfig) { withSecret(c); c.UserClaim = "user_id" },
			token:  func(t *testing.T) string { return hs(t, nil) }},
		{name: "RFC 7515 5.2 payload changed after signing",
			token: func(t *testing.T) string {
				good := strings.Split(hs(t, nil), ".")
				c, _ := json.Marshal(userClaims(map[string]any{"sub": "admin"}))
				return good[0] + "." + b64u(c) + "." + good[2]
			}},
		{name: "RFC 7515 5.2 signature truncated",
			token: func(t *testing.T) string { s := hs(t, nil); return s[:len(s)-4] }},
		{name: "RFC 7515 5.2 signature removed",
			token: func(t *testing.T) string { s := hs(t, nil); return s[:strings.LastIndexByte(s, '.')+1] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mutate := tt.mutate
			if mutate == nil {
				mutate = withSecret
			}
			v := newTestUserVerifier(t, newUserClock(), mutate)
			token := tt.token(t)
			user, err := v.Verify(context.Background(), token)
			if tt.user != "" {
				if err != nil || user != tt.user {
					t.Fatalf("Verify = %q, %v; want %q", user, err, tt.user)
				}
				return
			}
			assertRefused(t, token, err)
			if user != "" {
				t.Fatalf("refused token returned user %q", user)
			}
		})
	}
}

func TestUserVerifierMalformed(t *testing.T) {
	v := newTestUserVerifier(t, newUserClock(), withSecret)
	claims, _ := json.Marshal(userClaims(nil))
	tests := []struct{ name, token string }{
		{"empty", ""},
		{"one segment", "abc"},
		{"two segments", "abc.def"},
		{"four segments", "a.b.c.d"},
		{"only dots", ".."},
		{"header not base64url", "!!!." + b64u(claims) + ".sig"},
		{"header not JSON", b64u([]byte("not json")) + "." + b64u(claims) + ".c2ln"},
		{"header without alg", rawJWT(`{"typ":"JWT"}`, string(claims), []byte("sig"))},
		{"payload not JSON", rawJWT(`{"alg":"HS256"}`, "not json", []byte("sig"))},
		{"payload a JSON array", rawJWT(`{"alg":"HS256"}`, `["sub"]`, []byte("sig"))},
		{"oversized token", rawJWT(`{"alg":"HS256"}`, `{"sub":"`+strings.Repeat("a", 20000)+`"}`, []byte("sig"))},
		{"Bearer prefix left on", "Bearer " + signUserJWT(t, jwt.SigningMethodHS256, []byte(userTestSecret), "", userClaims(nil))},
		{"whitespace around", " " + signUserJWT(t, jwt.SigningMethodHS256, []byte(userTestSecret), "", userClaims(nil)) + "\n"},
		{"RFC 7515 7.1 trailing newline", signUserJWT(t, jwt.SigningMethodHS256, []byte(userTestSecret), "", userClaims(nil)) + "\n"},
		{"RFC 7515 7.1 line break inside the signature", func() string {
			s := signUserJWT(t, jwt.SigningMethodHS256, []byte(userTestSecret), "", userClaims(nil))
			return s[:len(s)-5] + "\r\n" + s[len(s)-5:]
		}()},
		{"opaque tokengate token", "tga_" + strings.Repeat("A", 43)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := v.Verify(context.Background(), tt.token)
			assertRefused(t, tt.token, err)
			if user != "" {
				t.Fatalf("refused token returned user %q", user)
			}
		})
	}
}

// TestUserVerifierErrorsHideClaims checks that refusals carry no value taken
// from the token, since their messages may reach the client and the logs.
func TestUserVerifierErrorsHideClaims(t *testing.T) {
	v := newTestUserVerifier(t, newUserClock(), withSecret)
	secret := []byte(userTestSecret)
	for _, overrides := range []map[string]any{
		{"iss": "https://evil-issuer.example"},
		{"aud": "evil-audience"},
		{"exp": "evil-expiry"},
		{"sub": 12345678},
	} {
		token := signUserJWT(t, jwt.SigningMethodHS256, secret, "", userClaims(overrides))
		_, err := v.Verify(context.Background(), token)
		assertRefused(t, token, err)
		if strings.Contains(err.Error(), "evil") || strings.Contains(err.Error(), "12345678") {
			t.Fatalf("error message quotes a claim: %q", err)
		}
	}
}

func TestUserVerifierHS256WithPublicKeyAsSecret(t *testing.T) {
	k := userKeys()
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pkcs1 := x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)
	jwkJSON, _ := json.Marshal(rsaJWK("r1", &k.rsa.PublicKey))
	srv := newJWKSTestServer(t, rsaJWK("r1", &k.rsa.PublicKey))

	configs := []struct {
		name   string
		mutate func(*UserVerifierConfig)
	}{
		{"JWKS only", func(c *UserVerifierConfig) { c.JWKSURL = srv.URL }},
		{"JWKS and secret", func(c *UserVerifierConfig) { c.JWKSURL = srv.URL; withSecret(c) }},
	}
	secrets := []struct {
		name   string
		secret []byte
	}{
		{"PEM", pemBytes},
		{"PKIX DER", der},
		{"PKCS1 DER", pkcs1},
		{"JWK JSON", jwkJSON},
		{"modulus", k.rsa.N.Bytes()},
	}
	for _, cfg := range configs {
		for _, s := range secrets {
			name := "RFC 8725 3.2 HS256 with RSA public key as secret/" + cfg.name + "/" + s.name
			t.Run(name, func(t *testing.T) {
				v := newTestUserVerifier(t, newUserClock(), cfg.mutate)
				// Load the key set first, so the key is at hand if the
				// verifier were to use it for HMAC.
				good := signUserJWT(t, jwt.SigningMethodRS256, k.rsa, "r1", userClaims(nil))
				if _, err := v.Verify(context.Background(), good); err != nil {
					t.Fatalf("RS256 token refused: %v", err)
				}
				for _, kid := range []string{"r1", ""} {
					token := signUserJWT(t, jwt.SigningMethodHS256, s.secret, kid, userClaims(nil))
					_, err := v.Verify(context.Background(), token)
					assertRefused(t, token, err)
				}
			})
		}
	}
}

func TestUserVerifierJWKSOnlyRefusesHS256(t *testing.T) {
	srv := newJWKSTestServer(t, rsaJWK("r1", &userKeys().rsa.PublicKey))
	v := newTestUserVerifier(t, newUserClock(), func(c *UserVerifierConfig) { c.JWKSURL = srv.URL })
	token := signUserJWT(t, jwt.SigningMethodHS256, []byte(userTestSecret), "", userClaims(nil))
	_, err := v.Verify(context.Background(), token)
	assertRefused(t, token, err)
	if n := srv.fetches(); n != 0 {
		t.Fatalf("an HS256 token caused %d JWKS fetches", n)
	}
}

func TestUserVerifierConcurrentHS256(t *testing.T) {
	v := newTestUserVerifier(t, newUserClock(), withSecret)
	token := signUserJWT(t, jwt.SigningMethodHS256, []byte(userTestSecret), "", userClaims(nil))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				if _, err := v.Verify(context.Background(), token); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkVerifyHS256(b *testing.B) {
	clock := newUserClock()
	v, err := NewUserVerifier(UserVerifierConfig{
		HS256Secret: []byte(userTestSecret),
		Issuer:      userTestIssuer,
		Audience:    userTestAudience,
		Now:         clock.Now,
	})
	if err != nil {
		b.Fatal(err)
	}
	token := signUserJWT(b, jwt.SigningMethodHS256, []byte(userTestSecret), "", userClaims(nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}
