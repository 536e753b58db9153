package oauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A JWT access token (RFC 9068) is a signed wrapper around a hidden id: its
// jti is a token text of KindJWTID, and the store keeps the access token
// under the hash of that id exactly as it keeps an opaque one. Everything
// that revokes or looks up access tokens therefore covers JWTs unchanged,
// and a revocation anywhere forgets the jti's hash in every cache
// (docs/decisions.md). The id alone is never accepted as a token.

// JWTAccessTokens are the settings under which access tokens are read
// and signed as JWTs: the key ring, and the iss and default aud they
// carry. Build them with NewJWTAccessTokens; they never change.
type JWTAccessTokens struct {
	ring     *KeyRing
	issuer   string
	audience string
	// tag names the issuer and audience in the validation cache: a JWT
	// verified under other settings (a config before a reload) is checked
	// again rather than trusted.
	tag [sha256.Size]byte
}

// NewJWTAccessTokens returns the settings for JWT access tokens signed
// and verified with ring, with iss issuer and, for a token issued for no
// resource of its own (RFC 8707), aud audience (access_token_audience,
// the issuer by default).
func NewJWTAccessTokens(ring *KeyRing, issuer, audience string) (*JWTAccessTokens, error) {
	if ring == nil || issuer == "" || audience == "" {
		return nil, errors.New("JWT access tokens need a key ring, an issuer and an audience")
	}
	return &JWTAccessTokens{
		ring: ring, issuer: issuer, audience: audience,
		tag: sha256.Sum256([]byte(issuer + "\x00" + audience)),
	}, nil
}

// AccessTokenFormat is what the access tokens issued look like.
type AccessTokenFormat uint8

// The access_token_format values.
const (
	// AccessTokenOpaque: tga_ texts, the default.
	AccessTokenOpaque AccessTokenFormat = iota
	// AccessTokenJWT: RFC 9068 JWTs around a tgj_ id.
	AccessTokenJWT
)

// maxJWTAccessTokenLen bounds a JWT access token before any decoding. The
// ones tokengate signs are about a kilobyte; 8 KiB is the longest
// parameter value the endpoints take.
const maxJWTAccessTokenLen = 8 << 10

// looksLikeJWS reports whether text has the shape of a compact JWS:
// three non-empty segments. Opaque tokens have no dot. The characters are
// left to the readers: peekJTIHash checks the payload's, verification all
// of them, and a cache entry is trusted only for the text it verified.
func looksLikeJWS(text string) bool {
	if len(text) > maxJWTAccessTokenLen {
		return false
	}
	first := strings.IndexByte(text, '.')
	if first <= 0 {
		return false
	}
	rest := text[first+1:]
	second := strings.IndexByte(rest, '.')
	return second > 0 && second < len(rest)-1 && strings.IndexByte(rest[second+1:], '.') < 0
}

// stackBytes is the size of the buffers the cached path decodes and
// hashes in without allocating: a JWT access token tokengate signs is
// about a kilobyte, and its payload half of that.
const stackBytes = 1536

// jtiKey is the place in a payload where tokengate writes the jti.
var jtiKey = []byte(`"jti":"`)

// peekJTIHash returns the hash of the jti in the payload of a JWS, read
// without verifying anything and without allocating. It only says where
// to look in the cache: an entry found there is trusted only for the very
// text it was made from (jwtMark), so a text that fools this reader gets
// a miss and the full verification.
func peekJTIHash(text string) (TokenHash, bool) {
	first := strings.IndexByte(text, '.')
	second := strings.IndexByte(text[first+1:], '.') + first + 1
	payload := text[first+1 : second]
	var buf [stackBytes]byte // zeroed on every call: no larger than needed
	decoded := buf[:]
	if need := len(payload) * 3 / 4; need > len(buf) {
		decoded = make([]byte, need)
	}
	n, ok := decodeSegment(decoded, payload)
	if !ok {
		return TokenHash{}, false
	}
	decoded = decoded[:n]
	i := bytes.Index(decoded, jtiKey)
	if i < 0 {
		return TokenHash{}, false
	}
	id := decoded[i+len(jtiKey):]
	if len(id) <= TokenLen || id[TokenLen] != '"' {
		return TokenHash{}, false
	}
	return sha256.Sum256(id[:TokenLen]), true
}

// decodeSegment decodes unpadded base64url src into dst, which must
// hold len(src)*3/4 bytes. It is base64.RawURLEncoding.Decode for a
// string, which that would have to copy into a []byte first.
func decodeSegment(dst []byte, src string) (int, bool) {
	if len(src)%4 == 1 || len(dst) < len(src)*3/4 {
		return 0, false
	}
	n, i := 0, 0
	for ; i+4 <= len(src); i += 4 {
		a, b, c, d := base64URLValues[src[i]], base64URLValues[src[i+1]], base64URLValues[src[i+2]], base64URLValues[src[i+3]]
		if (a | b | c | d) > 63 { // one of them is 0xff
			return 0, false
		}
		dst[n], dst[n+1], dst[n+2] = a<<2|b>>4, b<<4|c>>2, c<<6|d
		n += 3
	}
	// The last 2 or 3 characters: 1 or 2 bytes.
	var acc uint32
	bits := 0
	for ; i < len(src); i++ {
		v := base64URLValues[src[i]]
		if v == 0xff {
			return 0, false
		}
		acc, bits = acc<<6|uint32(v), bits+6
		if bits >= 8 {
			bits -= 8
			dst[n] = byte(acc >> bits)
			n++
		}
	}
	return n, true
}

// base64URLValues maps each byte to its base64url value, 0xff for none.
var base64URLValues = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = byte(i)
	}
	return t
}()

// jwtMark is what a cache entry of a JWT access token remembers of the
// text it verified: SHA-256 over the settings' tag and the text. A hit
// for the same jti with any other text (another signature, a tampered
// payload, other settings) is not trusted.
type jwtMark [sha256.Size]byte

// mark returns the jwtMark of text under j, without allocating for the
// texts tokengate signs.
func (j *JWTAccessTokens) mark(text string) jwtMark {
	var buf [sha256.Size + stackBytes]byte
	if len(text) > stackBytes {
		return sha256.Sum256(append(j.tag[:], text...))
	}
	copy(buf[:], j.tag[:])
	n := copy(buf[sha256.Size:], text)
	return sha256.Sum256(buf[:sha256.Size+n])
}

// unverifiedClaims are the claims read from a payload before its
// signature is checked, to choose how to check it.
type unverifiedClaims struct {
	Audience  jwt.ClaimStrings `json:"aud"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
}

// verify checks text as a JWT access token of these settings and returns
// its claims, whose jti is a tgj_ id. The aud may be the settings' own or
// any other single audience (a resource, RFC 8707): the caller compares
// it with the stored token's. With anyTime, an expired token is still
// read (for revocation and introspection, where the store decides).
//
// Its error wraps ErrInvalidJWTAccessToken for a token to refuse, and
// ErrSigningKeysUnavailable when the keys could not be read.
func (j *JWTAccessTokens) verify(ctx context.Context, text string, now time.Time, anyTime bool) (*AccessTokenClaims, error) {
	if !looksLikeJWS(text) {
		return nil, fmt.Errorf("%w: malformed token", ErrInvalidJWTAccessToken)
	}
	payload := text[strings.IndexByte(text, '.')+1 : strings.LastIndexByte(text, '.')]
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed payload", ErrInvalidJWTAccessToken)
	}
	var u unverifiedClaims
	if json.Unmarshal(raw, &u) != nil || len(u.Audience) != 1 || u.Audience[0] == "" {
		// tokengate names one audience in each token it signs.
		return nil, fmt.Errorf("%w: malformed payload", ErrInvalidJWTAccessToken)
	}
	at := now
	if anyTime && u.ExpiresAt != nil && !now.Before(u.ExpiresAt.Time) {
		// Check the token as of just before it expired: signature, typ,
		// iss and the rest still have to hold.
		at = u.ExpiresAt.Add(-time.Second)
	}
	c, err := VerifyAccessToken(ctx, j.ring, text, j.issuer, u.Audience[0], at)
	if err != nil {
		return nil, err
	}
	if k, err := ParseToken(c.ID); err != nil || k != KindJWTID {
		return nil, fmt.Errorf("%w: jti is not a token id", ErrInvalidJWTAccessToken)
	}
	return c, nil
}

// matches reports whether the verified claims c say what the stored token
// p says: the subject, client and audience. The store decides scopes and
// expiry; these must agree so that a JWT can never speak for another row.
func (j *JWTAccessTokens) matches(c *AccessTokenClaims, p *Principal) bool {
	aud := p.Audience
	if aud == "" {
		aud = j.audience
	}
	return c.Subject == subjectOf(p.UserID, p.ClientID) && c.ClientID == p.ClientID &&
		len(c.Audience) == 1 && c.Audience[0] == aud
}

// subjectOf is the sub of an access token: the user, or for a token that
// stands for its client alone, the client (RFC 9068 2.2).
func subjectOf(userID, clientID string) string {
	if userID == "" {
		return clientID
	}
	return userID
}

// issuedAccessToken is what an access token is signed from.
type issuedAccessToken struct {
	id        string // the tgj_ jti
	userID    string
	clientID  string
	scopes    []string
	audience  string // the token's resource (RFC 8707); empty for the default
	dpopKey   string // cnf jkt (RFC 9449 6); empty for none
	issuedAt  time.Time
	expiresAt time.Time
	authTime  time.Time // zero when unknown
}

// sign returns the JWT access token for t (RFC 9068 2).
func (j *JWTAccessTokens) sign(ctx context.Context, t issuedAccessToken) (string, error) {
	aud := t.audience
	if aud == "" {
		aud = j.audience
	}
	c := AccessTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    j.issuer,
			Subject:   subjectOf(t.userID, t.clientID),
			Audience:  jwt.ClaimStrings{aud},
			ExpiresAt: jwt.NewNumericDate(t.expiresAt),
			IssuedAt:  jwt.NewNumericDate(t.issuedAt),
			ID:        t.id,
		},
		ClientID: t.clientID,
		Scope:    strings.Join(t.scopes, " "),
	}
	if !t.authTime.IsZero() {
		c.AuthTime = jwt.NewNumericDate(t.authTime)
	}
	if t.dpopKey != "" {
		c.Confirmation = &Confirmation{JKT: t.dpopKey}
	}
	return SignAccessToken(ctx, j.ring, c)
}

// AccessTokenHash returns the hash the store keeps an access token under,
// for a token text ValidateWith has accepted: the text's own hash for an
// opaque token, that of its jti for a JWT access token.
func AccessTokenHash(text string) TokenHash {
	if looksLikeJWS(text) {
		// Of an accepted JWT, the jti read here is the one verified: a
		// cache hit needs the very text verified under that jti, and
		// every text tokengate signs reads alike both ways.
		if h, ok := peekJTIHash(text); ok {
			return h
		}
	}
	return HashToken(text)
}
