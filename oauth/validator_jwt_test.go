package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// jwtEnv is a validator over a fake token store, with JWT access tokens
// signed by a ring of its own.
type jwtEnv struct {
	store *fakeTokenStore
	keys  *fakeSigningKeyStore
	clk   *testClock
	v     *Validator
	j     *JWTAccessTokens
}

func newJWTEnv(t testing.TB) *jwtEnv {
	t.Helper()
	e := &jwtEnv{store: newFakeTokenStore(), keys: newFakeSigningKeyStore(), clk: newTestClock()}
	e.v = newValidatorForTest(t, e.store, CacheConfig{}, e.clk)
	e.j = newJWTAccessForTest(t, e.keys, e.clk, AlgES256, testIssuer, testAudience)
	return e
}

func newJWTAccessForTest(t testing.TB, keys SigningKeyStore, clk *testClock, alg, issuer, audience string) *JWTAccessTokens {
	t.Helper()
	ring, err := NewKeyRing(keys, alg, 24*time.Hour, 2*time.Hour, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	j, err := NewJWTAccessTokens(ring, issuer, audience)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// issue stores an access token for p under a fresh jti and returns the
// JWT signed around it, and the jti.
func (e *jwtEnv) issue(t testing.TB, p Principal) (string, string) {
	t.Helper()
	id, h := mustNewToken(t, KindJWTID)
	p.Kind = KindAccess
	if p.ExpiresAt.IsZero() {
		p.ExpiresAt = e.clk.now().Add(time.Hour)
	}
	e.store.put(KindAccess, h, p)
	return e.sign(t, id, p), id
}

// sign returns the JWT around id for p, which expires in an hour unless
// p says otherwise.
func (e *jwtEnv) sign(t testing.TB, id string, p Principal) string {
	t.Helper()
	if p.ExpiresAt.IsZero() {
		p.ExpiresAt = e.clk.now().Add(time.Hour)
	}
	text, err := e.j.sign(context.Background(), issuedAccessToken{
		id: id, userID: p.UserID, clientID: p.ClientID, scopes: p.Scopes, audience: p.Audience,
		issuedAt: e.clk.now(), expiresAt: p.ExpiresAt, authTime: e.clk.now().Add(-time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func (e *jwtEnv) validate(text string) (Principal, error) {
	return e.v.ValidateWith(context.Background(), text, e.j)
}

func (e *jwtEnv) mustValidate(t testing.TB, text string) Principal {
	t.Helper()
	p, err := e.validate(text)
	if err != nil {
		t.Fatalf("ValidateWith: %v", err)
	}
	return p
}

func (e *jwtEnv) expectInvalid(t testing.TB, what, text string) {
	t.Helper()
	if p, err := e.validate(text); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("%s: ValidateWith = %+v, %v; want ErrInvalidToken", what, p, err)
	}
}

var alice = Principal{UserID: "alice", ClientID: "app", Scopes: []string{"chargers:read", "energy:read"}}

func TestJWTAccessTokenClaims(t *testing.T) {
	// RFC 9068 2.2: iss, sub, aud, client_id, scope, jti, exp, iat,
	// auth_time; header typ at+jwt and the signing key's kid.
	e := newJWTEnv(t)
	text, id := e.issue(t, alice)
	header, claims := decodeJWTForTest(t, text)
	if header["typ"] != "at+jwt" || header["alg"] != AlgES256 || header["kid"] == "" {
		t.Errorf("header = %v, want typ at+jwt, alg ES256 and a kid", header)
	}
	now := e.clk.now()
	want := map[string]any{
		"iss": testIssuer, "sub": "alice", "client_id": "app", "scope": "chargers:read energy:read", "jti": id,
		"exp": float64(now.Add(time.Hour).Unix()), "iat": float64(now.Unix()), "auth_time": float64(now.Add(-time.Minute).Unix()),
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != testAudience {
		t.Errorf("aud = %v, want [%s]", claims["aud"], testAudience)
	}
	if k, err := ParseToken(id); err != nil || k != KindJWTID {
		t.Errorf("jti %q is not a tgj_ id: %v, %v", id, k, err)
	}
}

func decodeJWTForTest(t testing.TB, text string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(text, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", text)
	}
	for i, into := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func TestValidateJWTFirstUseThenCache(t *testing.T) {
	e := newJWTEnv(t)
	text, _ := e.issue(t, alice)
	p := e.mustValidate(t, text)
	if p.UserID != "alice" || p.ClientID != "app" || p.Kind != KindAccess || p.ScopeString() != "chargers:read energy:read" {
		t.Errorf("principal = %+v", p)
	}
	if p.Kind.String() != "oauth" {
		t.Errorf("X-Authenticated-Token-Type of a JWT access token = %q, want oauth", p.Kind)
	}
	expectLookups(t, e.store, 1)
	if k := Kind(e.store.lastKind.Load()); k != KindAccess {
		t.Errorf("store asked for kind %q, want the access token of the jti", k)
	}
	settle(e.v)
	for range 50 {
		if got := e.mustValidate(t, text); got.UserID != "alice" || got.ScopeString() != p.ScopeString() {
			t.Fatalf("cached principal = %+v", got)
		}
	}
	expectLookups(t, e.store, 1)
}

func TestValidateJWTWithoutSettingsRefused(t *testing.T) {
	// Validate reads opaque tokens only: without JWT settings a JWT is
	// refused, and the store is not asked.
	e := newJWTEnv(t)
	text, _ := e.issue(t, alice)
	expectInvalid(t, e.v, text)
	expectLookups(t, e.store, 0)
}

func TestValidateJWTOtherTextSameJTIVerifiedAgain(t *testing.T) {
	// A cache entry is trusted only for the text it was made from: the
	// same jti under another signature (ES256 signs alike claims
	// differently each time) is verified and looked up again; a tampered
	// payload under the old signature is refused without the store.
	e := newJWTEnv(t)
	text, id := e.issue(t, alice)
	e.mustValidate(t, text)
	settle(e.v)
	resigned := e.sign(t, id, alice)
	if resigned == text {
		t.Fatal("ES256 gave the same signature twice")
	}
	e.mustValidate(t, resigned)
	expectLookups(t, e.store, 2)

	parts := strings.Split(text, ".")
	_, claims := decodeJWTForTest(t, text)
	claims["scope"] = "chargers:read energy:read chargers:write"
	raw, _ := json.Marshal(claims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
	e.expectInvalid(t, "tampered payload, same jti", tampered)
	// The signature alone changed: one bit of its last byte.
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)-1] ^= 1
	e.expectInvalid(t, "tampered signature", parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(sig))
	expectLookups(t, e.store, 2)
}

func TestValidateJWTIDIsNotABearerToken(t *testing.T) {
	// The jti is a token text every backend reading the JWT can see; the
	// store knows its hash, yet it is never accepted on its own.
	e := newJWTEnv(t)
	text, id := e.issue(t, alice)
	e.expectInvalid(t, "tgj_ id as bearer", id)
	expectInvalid(t, e.v, id)
	expectLookups(t, e.store, 0)
	e.mustValidate(t, text)
}

func TestValidateJWTForeignTokensCostNoLookup(t *testing.T) {
	// RFC 9068 4, RFC 8725: an ID token of ours, a token of another key
	// or issuer, alg none and HMAC made with the public key are refused,
	// before the store is asked.
	e := newJWTEnv(t)
	text, id := e.issue(t, alice)
	now := e.clk.now()
	exp := jwt.NewNumericDate(now.Add(time.Hour))

	idToken, err := SignIDToken(context.Background(), e.j.ring, jwt.RegisteredClaims{
		Issuer: testIssuer, Subject: "alice", Audience: jwt.ClaimStrings{"app"},
		ExpiresAt: exp, IssuedAt: jwt.NewNumericDate(now), ID: id,
	})
	if err != nil {
		t.Fatal(err)
	}
	idTokenForAPI, err := SignIDToken(context.Background(), e.j.ring, jwt.RegisteredClaims{
		Issuer: testIssuer, Subject: "alice", Audience: jwt.ClaimStrings{testAudience},
		ExpiresAt: exp, IssuedAt: jwt.NewNumericDate(now), ID: id,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Another deployment's ring: its own keys, the same claims.
	other := newJWTAccessForTest(t, newFakeSigningKeyStore(), e.clk, AlgES256, testIssuer, testAudience)
	foreign, err := other.sign(context.Background(), issuedAccessToken{id: id, userID: "alice", clientID: "app",
		scopes: alice.Scopes, issuedAt: now, expiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// Another issuer sharing the keys.
	otherIssuer, _ := NewJWTAccessTokens(e.j.ring, "https://evil.example", testAudience)
	wrongIss, err := otherIssuer.sign(context.Background(), issuedAccessToken{id: id, userID: "alice", clientID: "app",
		issuedAt: now, expiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// A key of our kid's name but another private key.
	header, _ := decodeJWTForTest(t, text)
	kid := header["kid"].(string)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, claims := decodeJWTForTest(t, text)
	mc := jwt.MapClaims(claims)
	forgedKid := jwt.NewWithClaims(jwt.SigningMethodES256, mc)
	forgedKid.Header["typ"], forgedKid.Header["kid"] = "at+jwt", kid
	forgedKidText, _ := forgedKid.SignedString(stranger)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, mc)
	none.Header["typ"], none.Header["kid"] = "at+jwt", kid
	noneText, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	signer, _ := e.j.ring.Current(context.Background())
	pubDER, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	hmac := jwt.NewWithClaims(jwt.SigningMethodHS256, mc)
	hmac.Header["typ"], hmac.Header["kid"] = "at+jwt", kid
	hmacText, _ := hmac.SignedString(pubDER)

	for name, bad := range map[string]string{
		"ID token (typ JWT, aud the client)":    idToken,
		"ID token with the API's aud":           idTokenForAPI,
		"another deployment's key":              foreign,
		"another issuer":                        wrongIss,
		"our kid, another key":                  forgedKidText,
		"alg none":                              noneText,
		"HS256 keyed with the public key":       hmacText,
		"two segments":                          text[:strings.LastIndexByte(text, '.')],
		"empty signature":                       text[:strings.LastIndexByte(text, '.')+1],
		"four segments":                         text + ".e30",
		"not base64url":                         strings.Replace(text, ".", ".*", 1),
		"payload without jti":                   jwtWithPayload(text, `{"sub":"alice"}`),
		"payload that is not JSON":              jwtWithPayload(text, `not json`),
		"a jti that is not a token":             jwtWithPayload(text, `{"jti":"x"}`),
		"longer than any token tokengate signs": text + strings.Repeat("A", maxJWTAccessTokenLen),
	} {
		e.expectInvalid(t, name, bad)
	}
	expectLookups(t, e.store, 0)
	e.mustValidate(t, text)
}

// jwtWithPayload returns text with its payload replaced by payload.
func jwtWithPayload(text, payload string) string {
	parts := strings.Split(text, ".")
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + parts[2]
}

func TestValidateJWTRevokedViaForget(t *testing.T) {
	// A revocation forgets the hash of the jti, as for an opaque token:
	// the next request asks the store, which no longer knows it, and from
	// then on it is refused from the cache.
	e := newJWTEnv(t)
	text, id := e.issue(t, alice)
	e.mustValidate(t, text)
	settle(e.v)
	e.mustValidate(t, text)
	expectLookups(t, e.store, 1)

	e.store.revoke(HashToken(id))
	e.v.Forget(HashToken(id))
	e.expectInvalid(t, "revoked", text)
	expectLookups(t, e.store, 2)
	settle(e.v)
	// Any text of the jti is refused from the negative entry now.
	e.expectInvalid(t, "revoked, again", text)
	e.expectInvalid(t, "revoked, signed anew", e.sign(t, id, alice))
	expectLookups(t, e.store, 2)
}

func TestValidateJWTForgetAll(t *testing.T) {
	e := newJWTEnv(t)
	text, id := e.issue(t, alice)
	e.mustValidate(t, text)
	settle(e.v)
	e.store.revoke(HashToken(id))
	e.v.ForgetAll()
	e.expectInvalid(t, "revoked while the listener was away", text)
}

func TestValidateJWTUnknownJTINegativelyCached(t *testing.T) {
	// A JWT of ours whose token the store does not know (revoked
	// elsewhere, purged) costs one look-up per cache ttl.
	e := newJWTEnv(t)
	id, _ := mustNewToken(t, KindJWTID)
	text := e.sign(t, id, Principal{UserID: "alice", ClientID: "app", ExpiresAt: e.clk.now().Add(time.Hour)})
	e.expectInvalid(t, "unknown jti", text)
	settle(e.v)
	for range 20 {
		e.expectInvalid(t, "unknown jti, again", text)
	}
	expectLookups(t, e.store, 1)
}

func TestValidateJWTMustSpeakForItsStoredToken(t *testing.T) {
	// The store decides scopes and expiry; sub, client_id and aud of the
	// JWT must agree with the stored token, so that a JWT can never speak
	// for another row.
	e := newJWTEnv(t)
	for _, tc := range []struct {
		name      string
		stored    Principal
		signed    Principal
		wantValid bool
	}{
		{"same", alice, alice, true},
		{"another user", alice, Principal{UserID: "mallory", ClientID: "app"}, false},
		{"another client", alice, Principal{UserID: "alice", ClientID: "other"}, false},
		{"RFC 8707 resource as aud", withAudience(alice, "https://api.example.com/chargers"), withAudience(alice, "https://api.example.com/chargers"), true},
		{"resource token signed with the default aud", withAudience(alice, "https://api.example.com/chargers"), alice, false},
		{"default token signed with a resource aud", alice, withAudience(alice, "https://api.example.com/chargers"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, h := mustNewToken(t, KindJWTID)
			tc.stored.Kind, tc.stored.ExpiresAt = KindAccess, e.clk.now().Add(time.Hour)
			e.store.put(KindAccess, h, tc.stored)
			tc.signed.ExpiresAt = tc.stored.ExpiresAt
			text := e.sign(t, id, tc.signed)
			p, err := e.validate(text)
			if tc.wantValid {
				if err != nil || p.Audience != tc.stored.Audience {
					t.Fatalf("ValidateWith = %+v, %v; want the stored token", p, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("ValidateWith = %+v, %v; want ErrInvalidToken", p, err)
			}
		})
	}
}

func withAudience(p Principal, aud string) Principal {
	p.Audience = aud
	return p
}

func TestValidateJWTOtherSettingsVerifyAgain(t *testing.T) {
	// A reload that changes access_token_audience: a token cached under
	// the old settings is not trusted under the new ones.
	e := newJWTEnv(t)
	text, _ := e.issue(t, alice)
	e.mustValidate(t, text)
	settle(e.v)
	moved, _ := NewJWTAccessTokens(e.j.ring, testIssuer, "https://api.example.org")
	if p, err := e.v.ValidateWith(context.Background(), text, moved); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("under another audience: %+v, %v; want ErrInvalidToken", p, err)
	}
	e.mustValidate(t, text)
}

func TestValidateJWTExpiry(t *testing.T) {
	// RFC 9068 4: exp with at most 30 s of leeway, and the store's own
	// expiry as for opaque tokens.
	e := newJWTEnv(t)
	p := alice
	p.ExpiresAt = e.clk.now().Add(time.Minute)
	text, _ := e.issue(t, p)
	e.mustValidate(t, text)
	settle(e.v)
	e.clk.add(time.Minute)
	e.expectInvalid(t, "expired, cached", text)
	e.v.ForgetAll()
	e.expectInvalid(t, "expired, verified", text)

	// A JWT whose exp is long past, for a row the store still holds.
	stale := alice
	stale.ExpiresAt = e.clk.now().Add(-time.Minute)
	id, h := mustNewToken(t, KindJWTID)
	live := alice
	live.Kind, live.ExpiresAt = KindAccess, e.clk.now().Add(time.Hour)
	e.store.put(KindAccess, h, live)
	before := e.store.lookupCount()
	e.expectInvalid(t, "exp past the leeway", e.sign(t, id, stale))
	expectLookups(t, e.store, before)
}

func TestValidateJWTSigningKeysUnavailable(t *testing.T) {
	// A token whose key this instance has not loaded, while the store of
	// the keys is down: 503, as for an uncached token during an outage.
	e := newJWTEnv(t)
	text, _ := e.issue(t, alice)
	ring, err := NewKeyRing(e.keys, AlgES256, 24*time.Hour, 2*time.Hour, e.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	cold, _ := NewJWTAccessTokens(ring, testIssuer, testAudience)
	e.keys.failing.Store(true)
	if p, err := e.v.ValidateWith(context.Background(), text, cold); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("keys unavailable: %+v, %v; want ErrUnavailable", p, err)
	}
	expectLookups(t, e.store, 0)
	e.keys.failing.Store(false)
	e.clk.add(2 * time.Second) // past the ring's pause between reloads
	if _, err := e.v.ValidateWith(context.Background(), text, cold); err != nil {
		t.Fatalf("keys back: %v", err)
	}
}

func TestValidateJWTStoreDown(t *testing.T) {
	// Cached: keeps working; uncached: 503, never 401.
	e := newJWTEnv(t)
	cached, _ := e.issue(t, alice)
	uncached, _ := e.issue(t, alice)
	e.mustValidate(t, cached)
	settle(e.v)
	e.store.setFailing(true)
	e.mustValidate(t, cached)
	if p, err := e.validate(uncached); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("uncached while the store is down: %+v, %v; want ErrUnavailable", p, err)
	}
}

func TestCacheEntryOfOpaqueTokensStaysSmall(t *testing.T) {
	// The mark of a JWT access token lives in its own entry's user ID
	// string: an entry of an opaque token is no larger for it.
	if size := unsafe.Sizeof(cachedToken{}); size != 32 {
		t.Errorf("cachedToken is %d bytes, want 32", size)
	}
}

func TestPeekJTIHashAgreesWithVerifiedJTI(t *testing.T) {
	e := newJWTEnv(t)
	text, id := e.issue(t, alice)
	h, ok := peekJTIHash(text)
	if !ok || h != HashToken(id) {
		t.Fatalf("peekJTIHash = %x, %v; want the hash of %s", h, ok, id)
	}
	c, err := e.j.verify(context.Background(), text, e.clk.now(), false)
	if err != nil || c.ID != id {
		t.Fatalf("verify = %+v, %v", c, err)
	}
}

func TestLooksLikeJWS(t *testing.T) {
	for text, want := range map[string]bool{
		"a.b.c":          true,
		"eyJh.eyJz.c2ln": true,
		"a..c":           false,
		".b.c":           false,
		"a.b.":           false,
		"a.b":            false,
		"a.b.c.d":        false,
		"tga_x":          false,
		"":               false,
	} {
		if got := looksLikeJWS(text); got != want {
			t.Errorf("looksLikeJWS(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestDecodeSegmentAgreesWithBase64(t *testing.T) {
	buf := make([]byte, 64)
	for n := range 40 {
		raw := make([]byte, n)
		rand.Read(raw)
		enc := base64.RawURLEncoding.EncodeToString(raw)
		got, ok := decodeSegment(buf, enc)
		if !ok || string(buf[:got]) != string(raw) {
			t.Fatalf("decodeSegment(%q) = %x, %v; want %x", enc, buf[:got], ok, raw)
		}
		for _, bad := range []byte{'=', '+', '/', '.', 0, 0xff} {
			if n == 0 {
				break
			}
			mutated := []byte(enc)
			mutated[len(mutated)/2] = bad
			if _, ok := decodeSegment(buf, string(mutated)); ok {
				t.Errorf("decodeSegment accepted %q", mutated)
			}
		}
	}
	if _, ok := decodeSegment(buf, "AAAAA"); ok {
		t.Error("decodeSegment accepted a length no encoding has")
	}
}

func TestAccessTokenHash(t *testing.T) {
	// The stored token behind an accepted text: a JWT's jti, an opaque
	// token itself.
	e := newJWTEnv(t)
	text, id := e.issue(t, alice)
	e.mustValidate(t, text)
	if AccessTokenHash(text) != HashToken(id) {
		t.Error("AccessTokenHash of a JWT is not the hash of its jti")
	}
	opaque, h := e.store.issue(KindAccess, alice)
	if AccessTokenHash(opaque) != h {
		t.Error("AccessTokenHash of an opaque token is not its own hash")
	}
}
