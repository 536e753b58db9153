package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/golang-jwt/jwt/v5"
)

// DPoP proof verification (RFC 9449). A proof is a JWT the client signs with
// a key of its own for one HTTP request; the verifier checks it and returns
// the key's thumbprint, to which the token endpoint binds the tokens it
// issues and against which a protected resource checks a bound token.

// DPoPWindow is how far a proof's iat may lie from the verifier's clock, in
// either direction (RFC 9449 11.1). A proof's jti is remembered as long as
// the proof could be accepted, so a copy is refused for the whole window.
const DPoPWindow = 60 * time.Second

// DefaultDPoPMaxProofs is DPoPConfig.MaxProofs when unset: at one proof per
// request, about 16,000 requests a second with proofs made just in time.
const DefaultDPoPMaxProofs = 1_000_000

// maxDPoPProofBytes bounds the work an unauthenticated proof can ask for. A
// proof with a 4096-bit RSA key is about 2.5 KB.
const maxDPoPProofBytes = 8 << 10

// The accepted key sizes for RS256. Below 2048 bits RSA is too weak; above
// 4096 bits each verification costs the server more than it is worth (and
// go-jose refuses to decode such a key by default).
const (
	minDPoPRSABits = 2048
	maxDPoPRSABits = 4096
)

// dpopAlgs are the JWS algorithms accepted for proofs, all asymmetric (RFC
// 9449 4.3 step 5): never "none", never an HMAC.
var dpopAlgs = []string{"ES256", "RS256", "EdDSA"}

// dpopAlgsParam is dpopAlgs as the algs parameter of a DPoP challenge (RFC
// 9449 7.1).
const dpopAlgsParam = `DPoP algs="ES256 RS256 EdDSA"`

// DPoPSigningAlgs returns the accepted proof algorithms, for the
// dpop_signing_alg_values_supported metadata member (RFC 9449 5.1).
func DPoPSigningAlgs() []string {
	return append([]string(nil), dpopAlgs...)
}

// ErrInvalidDPoPProof is the RFC 9449 error for a proof that is missing where
// one is required, malformed or refused. The token endpoint answers it with
// 400 (RFC 9449 5); a protected resource answers 401 with DPoPChallenge.
// Every refusal of DPoPVerifier is this code with its own description, safe
// to show the client.
var ErrInvalidDPoPProof = &Error{Code: "invalid_dpop_proof", Status: http.StatusBadRequest}

// The refusals of DPoPVerifier, one per rule, in the order the rules are
// checked. Never modify these values.
var (
	errDPoPMalformed      = ErrInvalidDPoPProof.WithDescription("DPoP proof is not a single compact JWS")
	errDPoPHeader         = ErrInvalidDPoPProof.WithDescription("DPoP proof header is not a base64url JSON object")
	errDPoPTyp            = ErrInvalidDPoPProof.WithDescription("DPoP proof typ must be dpop+jwt")
	errDPoPAlg            = ErrInvalidDPoPProof.WithDescription("DPoP proof alg must be one of ES256 RS256 EdDSA")
	errDPoPCrit           = ErrInvalidDPoPProof.WithDescription("DPoP proof header has crit extensions this server does not support")
	errDPoPNoJWK          = ErrInvalidDPoPProof.WithDescription("DPoP proof header has no jwk")
	errDPoPPrivateJWK     = ErrInvalidDPoPProof.WithDescription("DPoP proof jwk must be a public key, without private parts")
	errDPoPJWKCertificate = ErrInvalidDPoPProof.WithDescription("DPoP proof jwk must not carry a certificate chain")
	errDPoPBadJWK         = ErrInvalidDPoPProof.WithDescription("DPoP proof jwk is not a valid public key")
	errDPoPKeyAlg         = ErrInvalidDPoPProof.WithDescription("DPoP proof jwk does not fit alg (ES256: EC P-256; RS256: RSA of 2048 to 4096 bits; EdDSA: OKP Ed25519)")
	errDPoPSignature      = ErrInvalidDPoPProof.WithDescription("DPoP proof signature does not verify with its jwk")
	errDPoPClaims         = ErrInvalidDPoPProof.WithDescription("DPoP proof payload is not a base64url JSON object")
	errDPoPJTIType        = ErrInvalidDPoPProof.WithDescription("DPoP proof jti must be a string")
	errDPoPHTMType        = ErrInvalidDPoPProof.WithDescription("DPoP proof htm must be a string")
	errDPoPHTUType        = ErrInvalidDPoPProof.WithDescription("DPoP proof htu must be a string")
	errDPoPIATType        = ErrInvalidDPoPProof.WithDescription("DPoP proof iat must be a number")
	errDPoPATHType        = ErrInvalidDPoPProof.WithDescription("DPoP proof ath must be a string")
	errDPoPNoJTI          = ErrInvalidDPoPProof.WithDescription("DPoP proof has no jti")
	errDPoPHTM            = ErrInvalidDPoPProof.WithDescription("DPoP proof htm does not match the request method")
	errDPoPHTU            = ErrInvalidDPoPProof.WithDescription("DPoP proof htu does not match the request URI")
	errDPoPNoIAT          = ErrInvalidDPoPProof.WithDescription("DPoP proof has no iat")
	errDPoPTooOld         = ErrInvalidDPoPProof.WithDescription("DPoP proof iat is more than 60 seconds in the past")
	errDPoPFuture         = ErrInvalidDPoPProof.WithDescription("DPoP proof iat is more than 60 seconds in the future")
	errDPoPNoATH          = ErrInvalidDPoPProof.WithDescription("DPoP proof has no ath for the access token")
	errDPoPATH            = ErrInvalidDPoPProof.WithDescription("DPoP proof ath does not match the access token")
	errDPoPKeyMismatch    = ErrInvalidDPoPProof.WithDescription("DPoP proof key is not the key the token is bound to")
	errDPoPReplay         = ErrInvalidDPoPProof.WithDescription("DPoP proof jti was already used")
	errDPoPTooMany        = ErrInvalidDPoPProof.WithDescription("too many DPoP proofs in the last minute; retry shortly")
	errDPoPHeaderCount    = ErrInvalidDPoPProof.WithDescription("more than one DPoP header")
)

// DPoPConfig bounds a DPoPVerifier.
type DPoPConfig struct {
	// MaxProofs is the most proof identifiers remembered at once for replay
	// detection; default DefaultDPoPMaxProofs. Each takes about 70 bytes
	// (some 65 MB at the default, when full).
	// When as many proofs as this were accepted within the window, further
	// proofs are refused until the oldest expire: forgetting one early would
	// let a copy of it through.
	MaxProofs int
}

// DPoPVerifier checks DPoP proofs (RFC 9449 4.3) and remembers the jti of
// each proof it accepts for the window, on this instance only. It is safe
// for concurrent use.
type DPoPVerifier struct {
	parser *jwt.Parser
	seen   *seenProofs
}

// NewDPoPVerifier returns a verifier with the given bounds.
func NewDPoPVerifier(cfg DPoPConfig) *DPoPVerifier {
	if cfg.MaxProofs <= 0 {
		cfg.MaxProofs = DefaultDPoPMaxProofs
	}
	return &DPoPVerifier{
		parser: jwt.NewParser(
			jwt.WithValidMethods(dpopAlgs),
			jwt.WithStrictDecoding(),
			// iat is checked against the window here; exp and nbf have no
			// meaning for a proof.
			jwt.WithoutClaimsValidation(),
		),
		seen: newSeenProofs(cfg.MaxProofs),
	}
}

// Verify checks proof, the value of the request's DPoP header, for a request
// with the given method and URI (absolute; its query and fragment are
// ignored), and returns the RFC 7638 thumbprint of the proof's key (SHA-256,
// base64url): the jkt a token is bound to (RFC 9449 6.1).
//
// accessToken is the token the request presents with the proof, or "" at the
// token endpoint; with a token, the proof must carry its hash in ath (RFC
// 9449 4.3 step 12). Verify does not know which key a token is bound to;
// VerifyBound checks that too.
//
// now is the verifier's clock, against which iat is checked. A proof that
// passes is remembered, and its jti refused for the rest of the window. A
// refusal is one of the ErrInvalidDPoPProof errors.
func (v *DPoPVerifier) Verify(proof, method, htu, accessToken string, now time.Time) (jkt string, err error) {
	return v.verify(proof, method, htu, accessToken, "", now)
}

// VerifyBound is Verify for a token bound to the key with thumbprint jkt
// (RFC 9449 4.3 step 12, 7.1): a proof signed by another key is refused
// before its jti is remembered, so that only the holder of a bound key can
// fill the replay store.
func (v *DPoPVerifier) VerifyBound(proof, method, htu, accessToken, jkt string, now time.Time) error {
	if jkt == "" {
		return errDPoPKeyMismatch
	}
	_, err := v.verify(proof, method, htu, accessToken, jkt, now)
	return err
}

// dpopHeader is the protected header of a proof (RFC 9449 4.2), decoded
// with go-jose's JSON decoder: member names match case-sensitively and a
// name given twice makes the header invalid, as JOSE wants, so that no two
// readers of one header can disagree on it. jwt decodes the header again, as
// a map, on its way to the signature; decoding it here gives each rule its
// own answer.
type dpopHeader struct {
	Typ  josejson.RawMessage `json:"typ"`
	Alg  josejson.RawMessage `json:"alg"`
	JWK  josejson.RawMessage `json:"jwk"`
	Crit josejson.RawMessage `json:"crit"`
}

// jwkRisky lists the members of a jwk that make it a private or symmetric key
// or bring a certificate chain: go-jose would validate those at some cost
// (RSA primes, X.509 parsing) before IsPublic could say no.
type jwkRisky struct {
	D    json.RawMessage `json:"d"`
	P    json.RawMessage `json:"p"`
	Q    json.RawMessage `json:"q"`
	DP   json.RawMessage `json:"dp"`
	DQ   json.RawMessage `json:"dq"`
	QI   json.RawMessage `json:"qi"`
	K    json.RawMessage `json:"k"`
	Priv json.RawMessage `json:"priv"`
	X5C  json.RawMessage `json:"x5c"`
	X5U  json.RawMessage `json:"x5u"`
}

func (v *DPoPVerifier) verify(proof, method, htu, accessToken, wantJKT string, now time.Time) (string, error) {
	// RFC 9449 4.3 step 2: a single well-formed JWT, in compact form.
	if proof == "" || len(proof) > maxDPoPProofBytes || strings.Count(proof, ".") != 2 {
		return "", errDPoPMalformed
	}
	key, jwk, alg, err := proofKey(proof)
	if err != nil {
		return "", err
	}

	// RFC 9449 4.3 step 6: the signature, by golang-jwt with the jwk's key,
	// and the alg jwt read being the one checked above.
	var c dpopClaims
	_, err = v.parser.ParseWithClaims(proof, &c, func(t *jwt.Token) (any, error) {
		if t.Method.Alg() != alg {
			return nil, errDPoPAlg
		}
		return key, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, errDPoPAlg):
		return "", errDPoPAlg
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "", errDPoPSignature
	case errors.Is(err, jwt.ErrTokenMalformed):
		// The header decoded above, so the payload or the signature
		// segment did not.
		sig := proof[strings.LastIndexByte(proof, '.')+1:]
		if _, serr := base64.RawURLEncoding.Strict().DecodeString(sig); serr != nil {
			return "", errDPoPMalformed
		}
		return "", errDPoPClaims
	default:
		return "", errDPoPMalformed
	}

	// RFC 9449 4.3 steps 3, 8, 9, 11, 12.
	if err := c.check(method, htu, accessToken, now); err != nil {
		return "", err
	}

	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", errDPoPBadJWK
	}
	jkt := base64.RawURLEncoding.EncodeToString(sum)
	if wantJKT != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(wantJKT)) != 1 {
		return "", errDPoPKeyMismatch
	}

	// RFC 9449 11.1: the proof is remembered until its iat leaves the window.
	if err := v.seen.remember(seenKey(jkt, c.JTI), c.IAT.unixNanos()+int64(DPoPWindow), now.UnixNano()); err != nil {
		return "", err
	}
	return jkt, nil
}

// proofKey reads the header of a compact JWS and returns the proof's public
// key, after the header rules of RFC 9449 4.3 (steps 4, 5 and 7).
func proofKey(proof string) (key any, jwk *jose.JSONWebKey, alg string, err error) {
	seg, _, _ := strings.Cut(proof, ".")
	raw, derr := base64.RawURLEncoding.Strict().DecodeString(seg)
	if derr != nil {
		return nil, nil, "", errDPoPHeader
	}
	var h dpopHeader
	if err := josejson.Unmarshal(raw, &h); err != nil {
		return nil, nil, "", errDPoPHeader
	}
	if typ, ok := jsonString(h.Typ); !ok || typ != "dpop+jwt" {
		return nil, nil, "", errDPoPTyp
	}
	alg, ok := jsonString(h.Alg)
	if !ok || !isDPoPAlg(alg) {
		return nil, nil, "", errDPoPAlg
	}
	// RFC 7515 4.1.11: an extension the recipient does not understand
	// makes the JWS invalid; this verifier understands none.
	if h.Crit != nil {
		return nil, nil, "", errDPoPCrit
	}
	if len(h.JWK) == 0 || string(h.JWK) == "null" {
		return nil, nil, "", errDPoPNoJWK
	}
	var risky jwkRisky
	if err := json.Unmarshal(h.JWK, &risky); err != nil {
		return nil, nil, "", errDPoPBadJWK
	}
	if risky.D != nil || risky.P != nil || risky.Q != nil || risky.DP != nil || risky.DQ != nil ||
		risky.QI != nil || risky.K != nil || risky.Priv != nil {
		return nil, nil, "", errDPoPPrivateJWK
	}
	if risky.X5C != nil || risky.X5U != nil {
		return nil, nil, "", errDPoPJWKCertificate
	}
	jwk = new(jose.JSONWebKey)
	if err := jwk.UnmarshalJSON(h.JWK); err != nil {
		return nil, nil, "", errDPoPBadJWK
	}
	if !jwk.IsPublic() {
		return nil, nil, "", errDPoPPrivateJWK
	}
	if !keyFitsAlg(jwk.Key, alg) {
		return nil, nil, "", errDPoPKeyAlg
	}
	return jwk.Key, jwk, alg, nil
}

func isDPoPAlg(alg string) bool {
	for _, a := range dpopAlgs {
		if a == alg {
			return true
		}
	}
	return false
}

// keyFitsAlg reports whether key is of the type alg signs with. golang-jwt
// checks the Go type only: ES256 would verify with a P-384 key.
func keyFitsAlg(key any, alg string) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		return alg == "RS256" && bits >= minDPoPRSABits && bits <= maxDPoPRSABits
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// dpopClaims is the payload of a proof (RFC 9449 4.2), decoded like the
// header. A claim of the wrong JSON type is remembered in wrongType rather
// than failing the decoding, so that it gets its own answer once the
// signature is known good.
type dpopClaims struct {
	JTI, HTM, HTU, ATH string
	hasATH             bool
	IAT                numericClaim
	wrongType          string
}

type dpopClaimsJSON struct {
	JTI josejson.RawMessage `json:"jti"`
	HTM josejson.RawMessage `json:"htm"`
	HTU josejson.RawMessage `json:"htu"`
	IAT josejson.RawMessage `json:"iat"`
	ATH josejson.RawMessage `json:"ath"`
}

// UnmarshalJSON implements json.Unmarshaler.
func (c *dpopClaims) UnmarshalJSON(b []byte) error {
	var raw dpopClaimsJSON
	if err := josejson.Unmarshal(b, &raw); err != nil {
		return err
	}
	var ok bool
	if c.JTI, ok = jsonString(raw.JTI); !ok {
		c.wrongType = "jti"
	} else if c.HTM, ok = jsonString(raw.HTM); !ok {
		c.wrongType = "htm"
	} else if c.HTU, ok = jsonString(raw.HTU); !ok {
		c.wrongType = "htu"
	} else if c.IAT, ok = jsonNumber(raw.IAT); !ok {
		c.wrongType = "iat"
	} else if c.ATH, ok = jsonString(raw.ATH); !ok {
		c.wrongType = "ath"
	}
	c.hasATH = !isAbsent(raw.ATH)
	return nil
}

// isAbsent reports whether a member was left out or given as null.
func isAbsent(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// jsonString decodes a member that must be a string if present: ok is false
// for another JSON type; an absent member is "".
func jsonString(raw []byte) (s string, ok bool) {
	if isAbsent(raw) {
		return "", true
	}
	if raw[0] != '"' {
		return "", false
	}
	// The decoder has checked the syntax already: without escapes or
	// non-ASCII bytes, the string is what lies between the quotes.
	plain := true
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(raw[1 : len(raw)-1]), true
	}
	return s, json.Unmarshal(raw, &s) == nil
}

// numericClaim is a JSON number claim (RFC 7519 2 NumericDate), told apart
// from an absent one.
type numericClaim struct {
	set     bool
	seconds float64
}

// jsonNumber decodes a member that must be a number if present.
func jsonNumber(raw []byte) (numericClaim, bool) {
	if isAbsent(raw) {
		return numericClaim{}, true
	}
	if !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return numericClaim{}, false
	}
	// A number too large for a float64 comes back as an infinity, which
	// the window check refuses like any other far-off time.
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil && !math.IsInf(f, 0) {
		return numericClaim{}, false
	}
	return numericClaim{set: true, seconds: f}, true
}

// unixNanos is the claim's time in nanoseconds; only called on a claim that
// passed the window check, so the conversion cannot overflow.
func (n numericClaim) unixNanos() int64 {
	return int64(n.seconds * 1e9)
}

// The claims interface golang-jwt asks of a payload; its own claim checks
// are off (WithoutClaimsValidation), so these are never consulted.
func (c *dpopClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (c *dpopClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (c *dpopClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *dpopClaims) GetIssuer() (string, error)                   { return "", nil }
func (c *dpopClaims) GetSubject() (string, error)                  { return "", nil }
func (c *dpopClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// check applies the claim rules of RFC 9449 4.3 to a proof whose signature
// verified.
func (c *dpopClaims) check(method, htu, accessToken string, now time.Time) error {
	switch c.wrongType {
	case "":
	case "jti":
		return errDPoPJTIType
	case "htm":
		return errDPoPHTMType
	case "htu":
		return errDPoPHTUType
	case "iat":
		return errDPoPIATType
	case "ath":
		return errDPoPATHType
	default:
		return errDPoPClaims
	}
	if c.JTI == "" {
		return errDPoPNoJTI
	}
	if c.HTM != method {
		return errDPoPHTM
	}
	if !sameHTU(c.HTU, htu) {
		return errDPoPHTU
	}
	if !c.IAT.set {
		return errDPoPNoIAT
	}
	// Compared in float seconds: iat may be fractional, and a far-off value
	// must not overflow a conversion to time.Time.
	age := float64(now.UnixNano())/1e9 - c.IAT.seconds
	if age > DPoPWindow.Seconds() {
		return errDPoPTooOld
	}
	if age < -DPoPWindow.Seconds() {
		return errDPoPFuture
	}
	if accessToken != "" {
		if !c.hasATH {
			return errDPoPNoATH
		}
		// Neither side is secret (the client sent both the token and
		// ath), so a plain comparison will do, and one that does not
		// allocate.
		var want [43]byte
		sum := sha256.Sum256([]byte(accessToken))
		base64.RawURLEncoding.Encode(want[:], sum[:])
		if string(want[:]) != c.ATH {
			return errDPoPATH
		}
	}
	return nil
}

// DPoPAccessTokenHash returns the ath a proof must carry for accessToken:
// base64url(SHA-256(token)) (RFC 9449 4.2).
func DPoPAccessTokenHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// DPoPProof returns the proof of a request from the values of its DPoP
// header: "" when there is none, and an error when there is more than one
// (RFC 9449 4.3 step 1) or the one is empty.
func DPoPProof(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		if values[0] == "" {
			return "", errDPoPMalformed
		}
		return values[0], nil
	default:
		return "", errDPoPHeaderCount
	}
}

// DPoPChallenge returns the WWW-Authenticate challenge of a protected
// resource for DPoP (RFC 9449 7.1): `DPoP algs="ES256 RS256 EdDSA"`, then
// error (such as "invalid_dpop_proof" or "invalid_token") and
// error_description when given. Characters a quoted error_description may
// not hold (RFC 6750 3) are replaced by spaces.
func DPoPChallenge(code, description string) string {
	if code == "" {
		return dpopAlgsParam
	}
	var b strings.Builder
	b.Grow(len(dpopAlgsParam) + len(code) + len(description) + 40)
	b.WriteString(dpopAlgsParam)
	b.WriteString(`, error="`)
	b.WriteString(code)
	b.WriteByte('"')
	if description != "" {
		b.WriteString(`, error_description="`)
		for i := 0; i < len(description); i++ {
			ch := description[i]
			if ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' {
				ch = ' '
			}
			b.WriteByte(ch)
		}
		b.WriteByte('"')
	}
	return b.String()
}
