package oauth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/dpoptest"
)

// dpopT0 is the verifier's clock in these tests.
var dpopT0 = time.Unix(1_700_000_000, 0)

const (
	tokenURI    = "https://server.example.com/token"
	resourceURI = "https://resource.example.org/protected"
)

// dpopKeys are made once: an RSA key takes a while to generate.
var dpopKeys = sync.OnceValue(func() map[string]*dpoptest.Key {
	return map[string]*dpoptest.Key{
		"ES256": dpoptest.NewKey("ES256"),
		"RS256": dpoptest.NewKey("RS256"),
		"EdDSA": dpoptest.NewKey("EdDSA"),
		"ES384": dpoptest.NewKey("ES384"),
	}
})

func dpopKey(alg string) *dpoptest.Key { return dpopKeys()[alg] }

// RFC 9449 Figure 2 (a proof for a token request) and Figure 13 (a proof
// for a protected resource, with the access token of Figure 12): proofs
// made by someone else, with the RFC's key, whose thumbprint is given there.
const (
	rfc9449TokenProof    = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	rfc9449ResourceProof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
	rfc9449AccessToken   = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	rfc9449ATH           = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
	rfc9449JKT           = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
)

func TestDPoPRFC9449Examples(t *testing.T) {
	v := NewDPoPVerifier(DPoPConfig{})
	jkt, err := v.Verify(rfc9449TokenProof, "POST", "https://server.example.com/token", "", time.Unix(1562262616, 0))
	if err != nil || jkt != rfc9449JKT {
		t.Fatalf("Figure 2 proof: jkt %q, err %v; want %q", jkt, err, rfc9449JKT)
	}
	err = v.VerifyBound(rfc9449ResourceProof, "GET", "https://resource.example.org/protectedresource",
		rfc9449AccessToken, rfc9449JKT, time.Unix(1562262618, 0))
	if err != nil {
		t.Fatalf("Figure 13 proof: %v", err)
	}
	if got := DPoPAccessTokenHash(rfc9449AccessToken); got != rfc9449ATH {
		t.Fatalf("ath of the Figure 12 token = %q, want %q", got, rfc9449ATH)
	}
}

func TestDPoPAcceptsEachAlg(t *testing.T) {
	v := NewDPoPVerifier(DPoPConfig{})
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			k := dpopKey(alg)
			jkt, err := v.Verify(k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0)), "POST", tokenURI, "", dpopT0)
			if err != nil {
				t.Fatal(err)
			}
			// RFC 7638 3: the thumbprint, computed apart from go-jose.
			if want := k.Thumbprint(); jkt != want {
				t.Fatalf("jkt = %q, want %q", jkt, want)
			}
			tok := "tgat_some-access-token"
			jkt2, err := v.Verify(k.Proof("GET", resourceURI, tok, dpoptest.At(dpopT0)), "GET", resourceURI, tok, dpopT0)
			if err != nil || jkt2 != jkt {
				t.Fatalf("proof with ath: jkt %q, err %v", jkt2, err)
			}
		})
	}
}

// b64json encodes v as a base64url JSON segment.
func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// bigRSAJWK is the public JWK of a made-up 4608-bit modulus: too large to
// accept (go-jose refuses it already), and never needed as a real key
// because the size is checked before the signature.
func bigRSAJWK(t *testing.T) json.RawMessage {
	n := make([]byte, 4608/8)
	if _, err := rand.Read(n); err != nil {
		t.Fatal(err)
	}
	n[0] |= 0x80
	n[len(n)-1] |= 1
	return json.RawMessage(`{"kty":"RSA","e":"AQAB","n":"` + base64.RawURLEncoding.EncodeToString(n) + `"}`)
}

func TestDPoPRefusals(t *testing.T) {
	es, ed, rs := dpopKey("ES256"), dpopKey("EdDSA"), dpopKey("RS256")
	at := dpoptest.At(dpopT0)
	const tok = "tgat_the-access-token"
	good := func(k *dpoptest.Key, opts ...dpoptest.Option) string {
		return k.Proof("POST", tokenURI, "", append([]dpoptest.Option{at}, opts...)...)
	}
	withTok := func(opts ...dpoptest.Option) string {
		return es.Proof("GET", resourceURI, tok, append([]dpoptest.Option{at}, opts...)...)
	}
	header := b64json(t, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": es.PublicJWK()})
	claims := b64json(t, map[string]any{"jti": "x", "htm": "POST", "htu": tokenURI, "iat": dpopT0.Unix()})

	cases := []struct {
		name  string
		proof string
		token string // the access token presented with the proof
		want  *Error
	}{
		// RFC 9449 4.3 step 2: a single well-formed JWT.
		{"step 2: empty", "", "", errDPoPMalformed},
		{"step 2: two segments", header + "." + claims, "", errDPoPMalformed},
		{"step 2: four segments", good(es) + ".x", "", errDPoPMalformed},
		{"step 2: two proofs joined", good(es) + "," + good(es), "", errDPoPMalformed},
		{"step 2: JWS JSON serialization", `{"protected":"` + header + `","payload":"` + claims + `","signature":"x"}`, "", errDPoPMalformed},
		{"step 2: oversized", good(es, dpoptest.Claim("pad", strings.Repeat("a", 9000))), "", errDPoPMalformed},
		{"step 2: header not base64url", "*." + claims + ".x", "", errDPoPHeader},
		{"step 2: header padded base64", header + "=." + claims + ".x", "", errDPoPHeader},
		{"step 2: header not JSON", base64.RawURLEncoding.EncodeToString([]byte("{typ")) + "." + claims + ".x", "", errDPoPHeader},
		{"step 2: header an array", b64json(t, []string{"dpop+jwt"}) + "." + claims + ".x", "", errDPoPHeader},
		{"step 2: payload not JSON", good(es, dpoptest.RawPayload([]byte("{jti"))), "", errDPoPClaims},
		{"step 2: payload an array", good(es, dpoptest.RawPayload([]byte(`["jti"]`))), "", errDPoPClaims},
		{"step 2: signature not base64url", header + "." + claims + ".*", "", errDPoPMalformed},

		// Step 4: typ, exactly.
		{"step 4: typ missing", good(es, dpoptest.Typ("")), "", errDPoPTyp},
		{"step 4: typ removed", good(es, dpoptest.Header("typ", nil)), "", errDPoPTyp},
		{"step 4: typ jwt", good(es, dpoptest.Typ("JWT")), "", errDPoPTyp},
		{"step 4: typ in other case", good(es, dpoptest.Typ("DPoP+JWT")), "", errDPoPTyp},
		{"step 4: typ with media type prefix", good(es, dpoptest.Typ("application/dpop+jwt")), "", errDPoPTyp},
		{"step 4: typ a number", good(es, dpoptest.Header("typ", 1)), "", errDPoPTyp},

		// Step 5: an asymmetric alg from the list.
		{"step 5: alg none", good(es, dpoptest.Alg("none")), "", errDPoPAlg},
		{"step 5: alg None", good(es, dpoptest.Alg("None")), "", errDPoPAlg},
		{"step 5: alg NONE", good(es, dpoptest.Alg("NONE")), "", errDPoPAlg},
		{"step 5: alg nOnE", good(es, dpoptest.Alg("nOnE")), "", errDPoPAlg},
		{"step 5: alg HS256 keyed with the jwk", good(es, dpoptest.Alg("HS256")), "", errDPoPAlg},
		{"step 5: alg HS512 keyed with the jwk", good(rs, dpoptest.Alg("HS512")), "", errDPoPAlg},
		{"step 5: alg es256", good(es, dpoptest.Alg("es256")), "", errDPoPAlg},
		{"step 5: alg PS256", good(rs, dpoptest.Alg("PS256")), "", errDPoPAlg},
		{"step 5: alg ES384", good(dpopKey("ES384")), "", errDPoPAlg},
		{"step 5: alg missing", good(es, dpoptest.Header("alg", nil)), "", errDPoPAlg},
		{"step 5: alg a number", good(es, dpoptest.Header("alg", 256)), "", errDPoPAlg},
		{"RFC 7515 4: alg given twice", good(es, dpoptest.RawHeader(rawHeader(t, es, `"alg":"ES256","alg":"ES256"`))), "", errDPoPHeader},
		{"RFC 7515 4: typ given twice", good(es, dpoptest.RawHeader(rawHeader(t, es, `"alg":"ES256","typ":"jwt"`))), "", errDPoPHeader},
		{"RFC 7515 4: names are case-sensitive (ALG)", good(es, dpoptest.RawHeader(rawHeader(t, es, `"ALG":"ES256"`))), "", errDPoPAlg},
		{"RFC 7515 4: names are case-sensitive (TYP)", good(es, dpoptest.RawHeader([]byte(`{"TYP":"dpop+jwt","alg":"ES256","jwk":`+string(es.PublicJWK())+`}`))), "", errDPoPTyp},
		{"RFC 7515 4.1.11: crit", good(es, dpoptest.Header("crit", []string{"exp"})), "", errDPoPCrit},

		// Step 7 and 4.2: jwk, a public key only.
		{"4.2: jwk missing", good(es, dpoptest.Header("jwk", nil)), "", errDPoPNoJWK},
		{"4.2: jwk null", good(es, dpoptest.JWK(json.RawMessage("null"))), "", errDPoPNoJWK},
		{"step 7: EC jwk with d", good(es, dpoptest.PrivateJWK()), "", errDPoPPrivateJWK},
		{"step 7: RSA jwk with d, p, q", good(rs, dpoptest.PrivateJWK()), "", errDPoPPrivateJWK},
		{"step 7: OKP jwk with d", good(ed, dpoptest.PrivateJWK()), "", errDPoPPrivateJWK},
		{"step 7: RSA jwk with d alone", good(rs, dpoptest.JWK(withMember(t, rs.PublicJWK(), "d", "AQAB"))), "", errDPoPPrivateJWK},
		{"step 7: symmetric jwk", good(es, dpoptest.JWK(json.RawMessage(`{"kty":"oct","k":"c2VjcmV0"}`))), "", errDPoPPrivateJWK},
		{"4.2: jwk with x5c", good(es, dpoptest.JWK(withMember(t, es.PublicJWK(), "x5c", []string{"MIIB"}))), "", errDPoPJWKCertificate},
		{"4.2: jwk a string", good(es, dpoptest.JWK(json.RawMessage(`"key"`))), "", errDPoPBadJWK},
		{"4.2: jwk without kty", good(es, dpoptest.JWK(withMember(t, es.PublicJWK(), "kty", nil))), "", errDPoPBadJWK},
		{"4.2: jwk of unknown kty", good(es, dpoptest.JWK(withMember(t, es.PublicJWK(), "kty", "XYZ"))), "", errDPoPBadJWK},
		{"4.2: EC jwk off its curve", good(es, dpoptest.JWK(withMember(t, es.PublicJWK(), "y", base64.RawURLEncoding.EncodeToString(make([]byte, 32))))), "", errDPoPBadJWK},
		{"4.2: EC jwk missing y", good(es, dpoptest.JWK(withMember(t, es.PublicJWK(), "y", nil))), "", errDPoPBadJWK},

		// Step 5 again: the jwk's type must be the one alg signs with.
		{"step 5: RS256 header with an EC jwk", good(es, dpoptest.Alg("RS256")), "", errDPoPKeyAlg},
		{"step 5: ES256 header with an RSA jwk", good(rs, dpoptest.Alg("ES256")), "", errDPoPKeyAlg},
		{"step 5: ES256 header with an Ed25519 jwk", good(ed, dpoptest.Alg("ES256")), "", errDPoPKeyAlg},
		{"step 5: EdDSA header with an EC jwk", good(es, dpoptest.Alg("EdDSA")), "", errDPoPKeyAlg},
		{"step 5: ES256 header with a P-384 jwk", good(dpopKey("ES384"), dpoptest.Alg("ES256")), "", errDPoPKeyAlg},
		{"step 5: RS256 with a 1024-bit key", good(dpoptest.NewRSAKey(1024)), "", errDPoPKeyAlg},
		{"step 5: RS256 with a 4608-bit key", good(rs, dpoptest.JWK(bigRSAJWK(t))), "", errDPoPBadJWK},

		// Step 6: the signature, by the jwk's key.
		{"step 6: signature altered", good(es, dpoptest.BadSignature()), "", errDPoPSignature},
		{"step 6: RS256 signature altered", good(rs, dpoptest.BadSignature()), "", errDPoPSignature},
		{"step 6: EdDSA signature altered", good(ed, dpoptest.BadSignature()), "", errDPoPSignature},
		{"step 6: jwk of another key", good(es, dpoptest.JWK(dpoptest.NewKey("ES256").PublicJWK())), "", errDPoPSignature},
		{"step 6: no signature", strings.TrimRightFunc(good(es), func(r rune) bool { return r != '.' }), "", errDPoPSignature},
		{"step 6: signature of another proof", replaceSig(good(es), good(es)), "", errDPoPSignature},

		// Step 3: the claims, with their JSON types.
		{"step 3: htm given twice", good(es, dpoptest.RawPayload(rawClaims(`"htm":"POST","htm":"POST"`))), "", errDPoPClaims},
		{"step 3: names are case-sensitive (HTM)", good(es, dpoptest.RawPayload([]byte(`{"jti":"a","HTM":"POST","htu":"`+tokenURI+`","iat":`+itoa(dpopT0.Unix())+`}`))), "", errDPoPHTM},
		{"step 3: jti missing", good(es, dpoptest.NoJTI()), "", errDPoPNoJTI},
		{"step 3: jti empty", good(es, dpoptest.JTI("")), "", errDPoPNoJTI},
		{"step 3: jti a number", good(es, dpoptest.Claim("jti", 12345)), "", errDPoPJTIType},
		{"step 3: htm a number", good(es, dpoptest.Claim("htm", 1)), "", errDPoPHTMType},
		{"step 3: htu an object", good(es, dpoptest.Claim("htu", map[string]string{"u": tokenURI})), "", errDPoPHTUType},
		{"step 3: iat a string", good(es, dpoptest.Claim("iat", "1700000000")), "", errDPoPIATType},
		{"step 3: iat a boolean", good(es, dpoptest.Claim("iat", true)), "", errDPoPIATType},
		{"step 3: iat missing", good(es, dpoptest.Claim("iat", nil)), "", errDPoPNoIAT},
		{"step 3: ath a number", withTok(dpoptest.Claim("ath", 1)), tok, errDPoPATHType},

		// Step 8: htm, exactly the method.
		{"step 8: htm missing", good(es, dpoptest.Claim("htm", nil)), "", errDPoPHTM},
		{"step 8: htm GET for POST", good(es, dpoptest.HTM("GET")), "", errDPoPHTM},
		{"step 8: htm in lower case", good(es, dpoptest.HTM("post")), "", errDPoPHTM},

		// Step 9: htu, the request URI.
		{"step 9: htu missing", good(es, dpoptest.Claim("htu", nil)), "", errDPoPHTU},
		{"step 9: htu another path", good(es, dpoptest.HTU("https://server.example.com/authorize")), "", errDPoPHTU},
		{"step 9: htu a longer path", good(es, dpoptest.HTU("https://server.example.com/token/x")), "", errDPoPHTU},
		{"step 9: htu a trailing slash", good(es, dpoptest.HTU("https://server.example.com/token/")), "", errDPoPHTU},
		{"step 9: htu path in other case", good(es, dpoptest.HTU("https://server.example.com/TOKEN")), "", errDPoPHTU},
		{"step 9: htu another host", good(es, dpoptest.HTU("https://evil.example.com/token")), "", errDPoPHTU},
		{"step 9: htu a subdomain", good(es, dpoptest.HTU("https://a.server.example.com/token")), "", errDPoPHTU},
		{"step 9: htu http for https", good(es, dpoptest.HTU("http://server.example.com/token")), "", errDPoPHTU},
		{"step 9: htu another port", good(es, dpoptest.HTU("https://server.example.com:8443/token")), "", errDPoPHTU},
		{"step 9: htu relative", good(es, dpoptest.HTU("/token")), "", errDPoPHTU},
		{"step 9: htu with userinfo", good(es, dpoptest.HTU("https://user@server.example.com/token")), "", errDPoPHTU},

		// Step 11 and 11.1: iat within 60 s either way.
		{"step 11: iat 61 s old", good(es, dpoptest.IATOffset(-61*time.Second)), "", errDPoPTooOld},
		{"step 11: iat an hour old", good(es, dpoptest.IATOffset(-time.Hour)), "", errDPoPTooOld},
		{"step 11: iat 60.5 s old", good(es, dpoptest.Claim("iat", float64(dpopT0.Unix())-60.5)), "", errDPoPTooOld},
		{"step 11: iat 0", good(es, dpoptest.Claim("iat", 0)), "", errDPoPTooOld},
		{"step 11: iat negative", good(es, dpoptest.Claim("iat", -1e300)), "", errDPoPTooOld},
		{"step 11: iat 61 s ahead", good(es, dpoptest.IATOffset(61*time.Second)), "", errDPoPFuture},
		{"step 11: iat 60.5 s ahead", good(es, dpoptest.Claim("iat", float64(dpopT0.Unix())+60.5)), "", errDPoPFuture},
		{"step 11: iat far ahead", good(es, dpoptest.Claim("iat", 1e300)), "", errDPoPFuture},

		// Step 12: ath with an access token.
		{"step 12: ath missing", withTok(dpoptest.NoATH()), tok, errDPoPNoATH},
		{"step 12: ath of another token", withTok(dpoptest.ATHOf("tgat_another-token")), tok, errDPoPATH},
		{"step 12: ath empty", withTok(dpoptest.Claim("ath", "")), tok, errDPoPATH},
		{"step 12: ath in lower case", withTok(dpoptest.Claim("ath", strings.ToLower(dpoptest.AccessTokenHash(tok)))), tok, errDPoPATH},
	}
	v := NewDPoPVerifier(DPoPConfig{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method, uri := "POST", tokenURI
			if c.token != "" {
				method, uri = "GET", resourceURI
			}
			jkt, err := v.Verify(c.proof, method, uri, c.token, dpopT0)
			if err != c.want {
				t.Fatalf("Verify = %q, %v; want %v", jkt, err, c.want)
			}
			if jkt != "" {
				t.Fatalf("a refusal returned jkt %q", jkt)
			}
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != "invalid_dpop_proof" || oe.Status != 400 {
				t.Fatalf("refusal %#v is not an invalid_dpop_proof error", err)
			}
		})
	}
}

// rawHeader returns a proof header with typ and jwk of k, and extra members.
func rawHeader(t *testing.T, k *dpoptest.Key, extra string) []byte {
	t.Helper()
	return []byte(`{"typ":"dpop+jwt",` + extra + `,"jwk":` + string(k.PublicJWK()) + `}`)
}

// rawClaims returns good claims for tokenURI at dpopT0, plus extra members.
func rawClaims(extra string) []byte {
	return []byte(`{"jti":"a","htu":"` + tokenURI + `","iat":` + itoa(dpopT0.Unix()) + `,` + extra + `}`)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// withMember returns jwk with member name set to v, or removed when v is nil.
func withMember(t *testing.T, jwk json.RawMessage, name string, v any) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(jwk, &m); err != nil {
		t.Fatal(err)
	}
	if v == nil {
		delete(m, name)
	} else {
		m[name] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replaceSig returns proof a with the signature of proof b.
func replaceSig(a, b string) string {
	return a[:strings.LastIndexByte(a, '.')] + b[strings.LastIndexByte(b, '.'):]
}

func TestDPoPRefusalsHaveTheirOwnDescriptions(t *testing.T) {
	all := []*Error{
		errDPoPMalformed, errDPoPHeader, errDPoPTyp, errDPoPAlg, errDPoPCrit, errDPoPNoJWK,
		errDPoPPrivateJWK, errDPoPJWKCertificate, errDPoPBadJWK, errDPoPKeyAlg, errDPoPSignature,
		errDPoPClaims, errDPoPJTIType, errDPoPHTMType, errDPoPHTUType, errDPoPIATType,
		errDPoPATHType, errDPoPNoJTI, errDPoPHTM, errDPoPHTU, errDPoPNoIAT, errDPoPTooOld,
		errDPoPFuture, errDPoPNoATH, errDPoPATH, errDPoPKeyMismatch, errDPoPReplay,
		errDPoPTooMany, errDPoPHeaderCount,
	}
	seen := map[string]bool{}
	for _, e := range all {
		if e.Code != "invalid_dpop_proof" || e.Description == "" || seen[e.Description] {
			t.Errorf("refusal %+v: want code invalid_dpop_proof and a description of its own", e)
		}
		// RFC 6750 3: what an error_description may hold.
		if strings.ContainsAny(e.Description, "\"\\") {
			t.Errorf("description %q needs escaping in a challenge", e.Description)
		}
		seen[e.Description] = true
	}
}

func TestDPoPEscapedStringsAreDecoded(t *testing.T) {
	// RFC 8259 7: "dpop\u002bjwt" is the string dpop+jwt.
	v := NewDPoPVerifier(DPoPConfig{})
	k := dpopKey("ES256")
	h := []byte(`{"typ":"dpop\u002bjwt","alg":"ES\u00325\u0036","jwk":` + string(k.PublicJWK()) + `}`)
	c := []byte(`{"jti":"\u00e9t\u00e9","htm":"P\u004fST","htu":"` + strings.ReplaceAll(tokenURI, "/", `\/`) + `","iat":` + itoa(dpopT0.Unix()) + `}`)
	p := k.Proof("POST", tokenURI, "", dpoptest.RawHeader(h), dpoptest.RawPayload(c))
	if _, err := v.Verify(p, "POST", tokenURI, "", dpopT0); err != nil {
		t.Fatal(err)
	}
}

func TestDPoPWindowEdges(t *testing.T) {
	// RFC 9449 11.1: iat exactly 60 s away either way is still inside.
	v := NewDPoPVerifier(DPoPConfig{})
	k := dpopKey("ES256")
	for _, off := range []time.Duration{-DPoPWindow, -time.Second, 0, time.Second, DPoPWindow} {
		p := k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0), dpoptest.IATOffset(off))
		if _, err := v.Verify(p, "POST", tokenURI, "", dpopT0); err != nil {
			t.Errorf("iat offset %v: %v", off, err)
		}
	}
	// A fractional iat is read as such.
	p := k.Proof("POST", tokenURI, "", dpoptest.Claim("iat", float64(dpopT0.Unix())-59.5))
	if _, err := v.Verify(p, "POST", tokenURI, "", dpopT0); err != nil {
		t.Errorf("iat 59.5 s old: %v", err)
	}
}

func TestDPoPHTUMatching(t *testing.T) {
	cases := []struct {
		htu, request string
		match        bool
	}{
		// RFC 9449 4.3 step 9: query and fragment are ignored, on both sides.
		{"https://server.example.com/token", "https://server.example.com/token?a=1", true},
		{"https://server.example.com/token?b=2", "https://server.example.com/token", true},
		{"https://server.example.com/token#frag", "https://server.example.com/token", true},
		{"https://server.example.com/token?x#y", "https://server.example.com/token?z", true},
		// RFC 3986 6.2.2.1 and 6.2.3: scheme and host case, default ports.
		{"HTTPS://Server.Example.COM/token", "https://server.example.com/token", true},
		{"https://server.example.com:443/token", "https://server.example.com/token", true},
		{"https://server.example.com/token", "https://server.example.com:443/token", true},
		{"http://server.example.com:80/token", "http://server.example.com/token", true},
		{"https://server.example.com:/token", "https://server.example.com/token", true},
		{"https://server.example.com", "https://server.example.com/", true},
		{"https://server.example.com?q", "https://server.example.com/", true},
		{"https://[::1]:443/token", "https://[::1]/token", true},
		{"https://[::1]:8443/token", "https://[::1]:8443/token", true},
		{"https://127.0.0.1:8443/token", "https://127.0.0.1:8443/token", true},
		// RFC 3986 6.2.2.1, 6.2.2.2: percent-encodings.
		{"https://server.example.com/%7Euser/token", "https://server.example.com/~user/token", true},
		{"https://server.example.com/a%2fb", "https://server.example.com/a%2Fb", true},
		{"https://server.example.com/a%2Fb", "https://server.example.com/a/b", false},
		{"https://server.example.com/a%zz", "https://server.example.com/a%zz", false},
		// RFC 3986 6.2.2.3: dot segments.
		{"https://server.example.com/a/../token", "https://server.example.com/token", true},
		{"https://server.example.com/./token", "https://server.example.com/token", true},
		{"https://server.example.com/a/%2E%2E/token", "https://server.example.com/token", true},
		{"https://server.example.com/a/..", "https://server.example.com/", true},
		{"https://server.example.com/a/b/c/./../../g", "https://server.example.com/a/g", true},
		{"https://server.example.com/..token", "https://server.example.com/..token", true},
		{"https://server.example.com/..token", "https://server.example.com/token", false},
		// What stays different.
		{"https://server.example.com:443/token", "http://server.example.com:443/token", false},
		{"http://server.example.com:443/token", "http://server.example.com/token", false},
		{"https://server.example.com:8443/token", "https://server.example.com/token", false},
		{"https://server.example.com/Token", "https://server.example.com/token", false},
		{"https://server.example.com/token/", "https://server.example.com/token", false},
		{"https://server.example.com./token", "https://server.example.com/token", false},
		{"https://server.example.com:abc/token", "https://server.example.com:abc/token", false},
		{"ftp://server.example.com/token", "ftp://server.example.com/token", false},
		{"https:///token", "https:///token", false},
		{"http://::", "http://::", false},
		{"http://h:1:2/", "http://h:1:2/", false},
		{"http://a]b/", "http://a]b/", false},
		{"//server.example.com/token", "https://server.example.com/token", false},
		{"", "", false},
	}
	for _, c := range cases {
		if got := sameHTU(c.htu, c.request); got != c.match {
			t.Errorf("sameHTU(%q, %q) = %v, want %v", c.htu, c.request, got, c.match)
		}
	}

	// The same through Verify, for a few.
	v := NewDPoPVerifier(DPoPConfig{})
	k := dpopKey("ES256")
	for _, htu := range []string{
		"https://server.example.com/token?x=1#f",
		"HTTPS://SERVER.example.com:443/token",
		"https://server.example.com/%74oken",
	} {
		p := k.Proof("POST", htu, "", dpoptest.At(dpopT0))
		if _, err := v.Verify(p, "POST", tokenURI+"?grant_type=x", "", dpopT0); err != nil {
			t.Errorf("htu %q: %v", htu, err)
		}
	}
}

func TestDPoPHTUCleanNeedsNoAllocation(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		sameHTU("https://server.example.com/token?x", "https://server.example.com/token")
	})
	if allocs != 0 {
		t.Fatalf("comparing two normal URIs allocated %v times", allocs)
	}
}

func TestDPoPReplay(t *testing.T) {
	v := NewDPoPVerifier(DPoPConfig{})
	k := dpopKey("ES256")
	p := k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0), dpoptest.JTI("jti-1"))
	if _, err := v.Verify(p, "POST", tokenURI, "", dpopT0); err != nil {
		t.Fatal(err)
	}
	// RFC 9449 11.1: the same proof again, at once and at the edge of its
	// window.
	for _, at := range []time.Duration{0, time.Second, DPoPWindow} {
		if _, err := v.Verify(p, "POST", tokenURI, "", dpopT0.Add(at)); err != errDPoPReplay {
			t.Fatalf("same proof %v later: %v, want %v", at, err, errDPoPReplay)
		}
	}
	// Another proof with the same jti, made later within the window.
	p2 := k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0.Add(30*time.Second)), dpoptest.JTI("jti-1"))
	if _, err := v.Verify(p2, "POST", tokenURI, "", dpopT0.Add(30*time.Second)); err != errDPoPReplay {
		t.Fatalf("same jti 30 s later: %v, want %v", err, errDPoPReplay)
	}
	// Once the first proof's window is over, the jti is free again.
	later := dpopT0.Add(DPoPWindow + time.Second)
	p3 := k.Proof("POST", tokenURI, "", dpoptest.At(later), dpoptest.JTI("jti-1"))
	if _, err := v.Verify(p3, "POST", tokenURI, "", later); err != nil {
		t.Fatalf("same jti after the window: %v", err)
	}
	// The jti is scoped by key: another client may use the same one.
	other := dpoptest.NewKey("EdDSA")
	p4 := other.Proof("POST", tokenURI, "", dpoptest.At(later), dpoptest.JTI("jti-1"))
	if _, err := v.Verify(p4, "POST", tokenURI, "", later); err != nil {
		t.Fatalf("same jti with another key: %v", err)
	}
}

func TestDPoPReplayOfFutureProof(t *testing.T) {
	// A proof made 60 s ahead of the verifier's clock can be accepted until
	// 60 s after that, and is remembered as long.
	v := NewDPoPVerifier(DPoPConfig{})
	k := dpopKey("EdDSA")
	p := k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0), dpoptest.IATOffset(DPoPWindow))
	if _, err := v.Verify(p, "POST", tokenURI, "", dpopT0); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(p, "POST", tokenURI, "", dpopT0.Add(2*DPoPWindow)); err != errDPoPReplay {
		t.Fatalf("replay 120 s later: %v, want %v", err, errDPoPReplay)
	}
	if _, err := v.Verify(p, "POST", tokenURI, "", dpopT0.Add(2*DPoPWindow+time.Second)); err != errDPoPTooOld {
		t.Fatalf("replay 121 s later: %v, want %v", err, errDPoPTooOld)
	}
}

func TestDPoPRefusedProofLeavesJTIUnused(t *testing.T) {
	v := NewDPoPVerifier(DPoPConfig{})
	k := dpopKey("ES256")
	bad := k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0), dpoptest.JTI("j"), dpoptest.HTM("PUT"))
	if _, err := v.Verify(bad, "POST", tokenURI, "", dpopT0); err != errDPoPHTM {
		t.Fatalf("bad proof: %v", err)
	}
	good := k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0), dpoptest.JTI("j"))
	if _, err := v.Verify(good, "POST", tokenURI, "", dpopT0); err != nil {
		t.Fatalf("good proof after a refused one with its jti: %v", err)
	}
}

func TestDPoPVerifyBound(t *testing.T) {
	v := NewDPoPVerifier(DPoPConfig{})
	k, thief := dpopKey("ES256"), dpopKey("EdDSA")
	const tok = "tgat_bound-token"
	p := k.Proof("GET", resourceURI, tok, dpoptest.At(dpopT0))
	if err := v.VerifyBound(p, "GET", resourceURI, tok, k.Thumbprint(), dpopT0); err != nil {
		t.Fatal(err)
	}
	// RFC 9449 4.3 step 12: a valid proof by another key.
	stolen := thief.Proof("GET", resourceURI, tok, dpoptest.At(dpopT0), dpoptest.JTI("thief"))
	if err := v.VerifyBound(stolen, "GET", resourceURI, tok, k.Thumbprint(), dpopT0); err != errDPoPKeyMismatch {
		t.Fatalf("proof by another key: %v, want %v", err, errDPoPKeyMismatch)
	}
	if err := v.VerifyBound(stolen, "GET", resourceURI, tok, "", dpopT0); err != errDPoPKeyMismatch {
		t.Fatalf("no bound key: %v, want %v", err, errDPoPKeyMismatch)
	}
	// That refusal did not spend the thief's jti.
	if _, err := v.Verify(stolen, "GET", resourceURI, tok, dpopT0); err != nil {
		t.Fatalf("refused proof's jti was remembered: %v", err)
	}
}

func TestDPoPStoreFullRefuses(t *testing.T) {
	const max = seenShards // one proof per shard
	v := NewDPoPVerifier(DPoPConfig{MaxProofs: max})
	k := dpopKey("EdDSA")
	accepted, full := 0, false
	for i := 0; i <= max && !full; i++ {
		p := k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0))
		switch _, err := v.Verify(p, "POST", tokenURI, "", dpopT0); err {
		case nil:
			accepted++
		case errDPoPTooMany:
			full = true
		default:
			t.Fatal(err)
		}
	}
	// With more proofs than room, one is refused, none forgotten.
	if !full || accepted > max || v.seen.len() != accepted {
		t.Fatalf("accepted %d of at most %d, refused one: %v, remembered %d", accepted, max, full, v.seen.len())
	}
	// After the window there is room again.
	later := dpopT0.Add(DPoPWindow + time.Second)
	for i := 0; i <= max; i++ {
		p := k.Proof("POST", tokenURI, "", dpoptest.At(later))
		if _, err := v.Verify(p, "POST", tokenURI, "", later); err == nil {
			return
		} else if err != errDPoPTooMany {
			t.Fatal(err)
		}
	}
	t.Fatal("no proof accepted after the window")
}

func TestSeenProofsExpiryOrder(t *testing.T) {
	// Entries expire by their own time, not in the order they came.
	exps := []int64{50, 10, 40, 20, 30, 60, 5}
	for now := int64(0); now <= 61; now++ {
		s := newSeenProofs(seenShards * 100)
		for i, exp := range exps {
			if err := s.remember(seenProofKey{0, byte(i)}, exp, 0); err != nil { // all in shard 0
				t.Fatal(err)
			}
		}
		for i, exp := range exps {
			err := s.remember(seenProofKey{0, byte(i)}, 1000, now)
			if live := exp >= now; live && err != errDPoPReplay {
				t.Fatalf("now %d: entry expiring at %d forgotten (%v)", now, exp, err)
			} else if !live && err != nil {
				t.Fatalf("now %d: entry expired at %d still refused: %v", now, exp, err)
			}
		}
	}
}

func TestDPoPProofHeader(t *testing.T) {
	// RFC 9449 4.3 step 1: not more than one DPoP header.
	if p, err := DPoPProof(nil); p != "" || err != nil {
		t.Errorf("no header: %q, %v", p, err)
	}
	if p, err := DPoPProof([]string{"a.b.c"}); p != "a.b.c" || err != nil {
		t.Errorf("one header: %q, %v", p, err)
	}
	if _, err := DPoPProof([]string{"a.b.c", "a.b.c"}); err != errDPoPHeaderCount {
		t.Errorf("two headers: %v", err)
	}
	if _, err := DPoPProof([]string{""}); err != errDPoPMalformed {
		t.Errorf("empty header: %v", err)
	}
}

func TestDPoPChallenge(t *testing.T) {
	cases := []struct{ code, desc, want string }{
		// RFC 9449 7.1: no credentials, then a bad proof, then a bad token.
		{"", "", `DPoP algs="ES256 RS256 EdDSA"`},
		{"invalid_dpop_proof", errDPoPHTU.Description,
			`DPoP algs="ES256 RS256 EdDSA", error="invalid_dpop_proof", error_description="DPoP proof htu does not match the request URI"`},
		{"invalid_token", "", `DPoP algs="ES256 RS256 EdDSA", error="invalid_token"`},
		// RFC 6750 3: no quote, backslash or control character in the value.
		{"invalid_dpop_proof", "a\"b\\c\nd\u00e9",
			`DPoP algs="ES256 RS256 EdDSA", error="invalid_dpop_proof", error_description="a b c d  "`},
	}
	for _, c := range cases {
		if got := DPoPChallenge(c.code, c.desc); got != c.want {
			t.Errorf("DPoPChallenge(%q, %q) =\n%s\nwant\n%s", c.code, c.desc, got, c.want)
		}
	}
}

func TestDPoPSigningAlgs(t *testing.T) {
	algs := DPoPSigningAlgs()
	if strings.Join(algs, " ") != "ES256 RS256 EdDSA" {
		t.Fatalf("algs = %v", algs)
	}
	algs[0] = "none"
	if DPoPSigningAlgs()[0] != "ES256" {
		t.Fatal("the list given out is the verifier's own")
	}
	// The challenge names the same list.
	if want := `DPoP algs="` + strings.Join(DPoPSigningAlgs(), " ") + `"`; DPoPChallenge("", "") != want {
		t.Fatalf("challenge %q does not name %q", DPoPChallenge("", ""), want)
	}
}

func TestDPoPConcurrentReplay(t *testing.T) {
	// One proof sent many times at once is accepted exactly once.
	v := NewDPoPVerifier(DPoPConfig{})
	p := dpopKey("ES256").Proof("POST", tokenURI, "", dpoptest.At(dpopT0))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Go(func() {
			if _, err := v.Verify(p, "POST", tokenURI, "", dpopT0); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if err != errDPoPReplay {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("accepted %d times", ok)
	}
}
