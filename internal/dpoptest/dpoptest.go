// Package dpoptest builds DPoP proofs (RFC 9449 4.2) for tests: good ones,
// and ones with any single field broken, so that every refusal of the
// verifier can be provoked from a test in any package.
//
// It computes thumbprints and access token hashes on its own, from the RFC
// text, rather than through the code under test.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Key is a client's DPoP key pair.
type Key struct {
	alg    string // the alg this key signs with
	method jwt.SigningMethod
	signer crypto.Signer
}

// NewKey returns a fresh key for alg: "ES256" (P-256), "RS256" (2048-bit
// RSA), "EdDSA" (Ed25519), or "ES384" (P-384, which a verifier that accepts
// only ES256 must refuse). It panics on any other alg.
func NewKey(alg string) *Key {
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "RS256":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		panic("dpoptest: unknown alg " + alg)
	}
	if err != nil {
		panic("dpoptest: " + err.Error())
	}
	return &Key{alg: alg, method: jwt.GetSigningMethod(alg), signer: signer}
}

// NewRSAKey returns an RS256 key of the given size, for testing the limits
// a verifier puts on RSA keys.
func NewRSAKey(bits int) *Key {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic("dpoptest: " + err.Error())
	}
	return &Key{alg: "RS256", method: jwt.SigningMethodRS256, signer: k}
}

// Alg returns the JWS algorithm the key signs with.
func (k *Key) Alg() string { return k.alg }

// PublicJWK returns the public key as a JWK (RFC 7517).
func (k *Key) PublicJWK() json.RawMessage {
	return mustJWK(k.signer.Public())
}

// PrivateJWK returns the whole key pair as a JWK, private parts included.
func (k *Key) PrivateJWK() json.RawMessage {
	return mustJWK(k.signer)
}

func mustJWK(key any) json.RawMessage {
	b, err := json.Marshal(jose.JSONWebKey{Key: key})
	if err != nil {
		panic("dpoptest: " + err.Error())
	}
	return b
}

// Thumbprint returns the RFC 7638 thumbprint of the public key: SHA-256 of
// the required members in lexicographic order, base64url. It is the jkt a
// token bound to this key carries.
func (k *Key) Thumbprint() string {
	var members string
	switch pub := k.signer.Public().(type) {
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		ecdh, err := pub.Bytes() // 0x04 || X || Y
		if err != nil {
			panic("dpoptest: " + err.Error())
		}
		members = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, pub.Curve.Params().Name,
			b64(ecdh[1:1+size]), b64(ecdh[1+size:]))
	case *rsa.PublicKey:
		e := minimalBytes(uint64(pub.E))
		members = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, b64(e), b64(pub.N.Bytes()))
	case ed25519.PublicKey:
		members = fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":%q}`, b64(pub))
	}
	sum := sha256.Sum256([]byte(members))
	return b64(sum[:])
}

// minimalBytes returns v as a big-endian byte string without leading zeros.
func minimalBytes(v uint64) []byte {
	var b []byte
	for ; v > 0; v >>= 8 {
		b = append([]byte{byte(v)}, b...)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// AccessTokenHash returns base64url(SHA-256(token)), the ath of RFC 9449 4.2.
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64(sum[:])
}

// An Option changes one thing about a proof.
type Option func(*proof)

type proof struct {
	header    map[string]any
	claims    map[string]any
	now       time.Time
	iatOffset time.Duration
	badSig    bool
	payload   []byte // replaces the claims when set
	rawHeader []byte // replaces the header when set
}

// At sets the time the proof is made at (its iat before any IATOffset);
// default time.Now().
func At(t time.Time) Option { return func(p *proof) { p.now = t } }

// IATOffset moves iat by d from the proof's time: negative is in the past.
func IATOffset(d time.Duration) Option { return func(p *proof) { p.iatOffset = d } }

// Typ sets the typ header; the default is "dpop+jwt".
func Typ(typ string) Option { return Header("typ", typ) }

// Alg sets the alg header without changing how the proof is signed: with
// "none" in any letter case the signature is empty, with an HS* alg it is an
// HMAC keyed with the bytes of the public jwk (the algorithm confusion
// attack), and otherwise the key signs with its own algorithm.
func Alg(alg string) Option { return Header("alg", alg) }

// PrivateJWK puts the whole key pair, private parts included, in the jwk
// header.
func PrivateJWK() Option {
	return func(p *proof) { p.header["jwk"] = privateMarker{} }
}

type privateMarker struct{}

type iatPending struct{}

// JWK replaces the jwk header by jwk (another key's, or a made-up one).
func JWK(jwk json.RawMessage) Option { return Header("jwk", jwk) }

// Header sets a header member to v; a nil v removes it.
func Header(name string, v any) Option {
	return func(p *proof) { set(p.header, name, v) }
}

// Claim sets a claim to v; a nil v removes it. With it any claim can be
// given a value of the wrong JSON type.
func Claim(name string, v any) Option {
	return func(p *proof) { set(p.claims, name, v) }
}

func set(m map[string]any, name string, v any) {
	if v == nil {
		delete(m, name)
		return
	}
	m[name] = v
}

// NoJTI leaves jti out.
func NoJTI() Option { return Claim("jti", nil) }

// JTI sets jti, for replaying one on purpose; the default is random.
func JTI(jti string) Option { return Claim("jti", jti) }

// HTM sets htm to method instead of the request's.
func HTM(method string) Option { return Claim("htm", method) }

// HTU sets htu to u instead of the request's.
func HTU(u string) Option { return Claim("htu", u) }

// ATHOf sets ath to the hash of token instead of the request's token.
func ATHOf(token string) Option { return Claim("ath", AccessTokenHash(token)) }

// NoATH leaves ath out even when the proof is for an access token.
func NoATH() Option { return Claim("ath", nil) }

// RawPayload signs b as the payload instead of the claims, for payloads
// that are not a JSON object at all.
func RawPayload(b []byte) Option { return func(p *proof) { p.payload = b } }

// RawHeader signs b as the protected header instead of the header members,
// for headers a map cannot express (a member given twice). The signature
// is made with the key's own algorithm.
func RawHeader(b []byte) Option { return func(p *proof) { p.rawHeader = b } }

// BadSignature flips a bit of the signature.
func BadSignature() Option { return func(p *proof) { p.badSig = true } }

// Proof returns a proof for a request with the given method and URI and,
// unless accessToken is "", for that access token (with ath). Options break
// one field each. It panics if signing fails.
func (k *Key) Proof(method, url, accessToken string, opts ...Option) string {
	p := &proof{
		header: map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.PublicJWK()},
		claims: map[string]any{"jti": rand.Text(), "htm": method, "htu": url},
		now:    time.Now(),
	}
	if accessToken != "" {
		p.claims["ath"] = AccessTokenHash(accessToken)
	}
	// iat waits for At and IATOffset; Claim("iat", ...) replaces it.
	p.claims["iat"] = iatPending{}
	for _, o := range opts {
		o(p)
	}
	if _, ok := p.claims["iat"].(iatPending); ok {
		p.claims["iat"] = p.now.Add(p.iatOffset).Unix()
	}
	if _, ok := p.header["jwk"].(privateMarker); ok {
		p.header["jwk"] = k.PrivateJWK()
	}
	return k.sign(p)
}

func (k *Key) sign(p *proof) string {
	header := p.rawHeader
	var err error
	if header == nil {
		header, err = json.Marshal(p.header)
		if err != nil {
			panic("dpoptest: " + err.Error())
		}
	}
	claims := p.payload
	if claims == nil {
		claims, err = json.Marshal(p.claims)
		if err != nil {
			panic("dpoptest: " + err.Error())
		}
	}
	signing := b64(header) + "." + b64(claims)

	alg, _ := p.header["alg"].(string)
	if p.rawHeader != nil {
		alg = k.alg
	}
	var sig []byte
	switch {
	case strings.EqualFold(alg, "none"):
	case strings.HasPrefix(alg, "HS"):
		m := jwt.GetSigningMethod(alg)
		if m == nil {
			m = jwt.SigningMethodHS256
		}
		secret, _ := json.Marshal(p.header["jwk"])
		sig, err = m.Sign(signing, secret)
	default:
		sig, err = k.method.Sign(signing, k.signer)
	}
	if err != nil {
		panic("dpoptest: " + err.Error())
	}
	if p.badSig && len(sig) > 0 {
		sig[len(sig)/2] ^= 1
	}
	return signing + "." + b64(sig)
}
