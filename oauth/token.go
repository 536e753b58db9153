package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash/crc32"
)

// Kind says what a token is for. A token of one kind is never accepted where
// another kind is expected, so the kind is part of the token text.
type Kind byte

// The token kinds, named by the letter of their prefix.
const (
	KindAccess   Kind = 'a' // OAuth access token, prefix tga_
	KindRefresh  Kind = 'r' // OAuth refresh token, prefix tgr_
	KindPersonal Kind = 'p' // personal API token, prefix tgp_
	KindCode     Kind = 'c' // authorization code, prefix tgc_
	// KindRegistration is a registered client's registration access
	// token (RFC 7592 3), prefix tgx_, presented only to the client
	// configuration endpoint.
	KindRegistration Kind = 'x'
	KindDevice       Kind = 'd' // device code (RFC 8628 3.2), prefix tgd_
)

// String returns the kind's name, as logs show it. The guard's
// X-Authenticated-Token-Type is Principal.TokenType, which also tells a
// client's own token from a user's.
func (k Kind) String() string {
	switch k {
	case KindAccess:
		return "oauth"
	case KindRefresh:
		return "refresh"
	case KindPersonal:
		return "personal"
	case KindCode:
		return "code"
	case KindRegistration:
		return "registration"
	case KindDevice:
		return "device"
	}
	return "unknown"
}

// Token text layout: "tg" + kind letter + "_" + 43 base64url characters (256
// random bits) + 6 base64url characters of CRC-32 over everything before them.
// The checksum lets the guard refuse a mistyped or made-up token before any
// cache or store look-up; it is not a security measure, the 256 bits are.
const (
	tokenPrefixLen   = 4
	tokenRandomBytes = 32
	tokenBodyLen     = 43 // base64url, unpadded, of 32 bytes
	tokenSumLen      = 6  // base64url, unpadded, of 4 bytes
	// TokenLen is the length of every token text.
	TokenLen = tokenPrefixLen + tokenBodyLen + tokenSumLen
	// hintLen is how much of a token may be shown again after issue.
	hintLen = tokenPrefixLen + 4
)

// TokenHash is the SHA-256 of a token's text. The store keeps only this.
type TokenHash [sha256.Size]byte

// ErrMalformedToken is returned by ParseToken for text that cannot be a token.
var ErrMalformedToken = errors.New("malformed token")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// NewToken returns a fresh token of kind k and its hash.
func NewToken(k Kind) (string, TokenHash, error) {
	var random [tokenRandomBytes]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", TokenHash{}, err
	}
	buf := make([]byte, TokenLen)
	copy(buf, "tg")
	buf[2] = byte(k)
	buf[3] = '_'
	base64.RawURLEncoding.Encode(buf[tokenPrefixLen:], random[:])
	appendChecksum(buf)
	return string(buf), HashToken(string(buf)), nil
}

func appendChecksum(buf []byte) {
	sum := checksum(string(buf[:tokenPrefixLen+tokenBodyLen]))
	base64.RawURLEncoding.Encode(buf[tokenPrefixLen+tokenBodyLen:], sum[:])
}

// checksum is CRC-32C of s, big-endian. It walks the string itself because
// hash/crc32 takes a []byte, and converting the token would allocate on the
// guard's hot path.
func checksum(s string) [4]byte {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crcTable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	crc = ^crc
	return [4]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)}
}

// ParseToken checks the shape and checksum of a token's text and returns its
// kind. It allocates nothing and touches no store.
func ParseToken(text string) (Kind, error) {
	if len(text) != TokenLen || text[0] != 't' || text[1] != 'g' || text[3] != '_' {
		return 0, ErrMalformedToken
	}
	k := Kind(text[2])
	switch k {
	case KindAccess, KindRefresh, KindPersonal, KindCode, KindRegistration, KindDevice:
	default:
		return 0, ErrMalformedToken
	}
	for i := tokenPrefixLen; i < TokenLen; i++ {
		if !isBase64URL(text[i]) {
			return 0, ErrMalformedToken
		}
	}
	// The last character of a 43-character encoding of 32 bytes carries 2
	// padding bits that must be zero, or two texts would decode alike.
	if base64Value(text[tokenPrefixLen+tokenBodyLen-1])&0x3 != 0 ||
		base64Value(text[TokenLen-1])&0xf != 0 {
		return 0, ErrMalformedToken
	}
	var want [tokenSumLen]byte
	sum := checksum(text[:tokenPrefixLen+tokenBodyLen])
	base64.RawURLEncoding.Encode(want[:], sum[:])
	if string(want[:]) != text[tokenPrefixLen+tokenBodyLen:] {
		return 0, ErrMalformedToken
	}
	return k, nil
}

// HashToken returns the hash under which a token is stored.
func HashToken(text string) TokenHash {
	if len(text) == TokenLen {
		// A copy on the stack: converting a string this long to []byte
		// would allocate on every request.
		var buf [TokenLen]byte
		copy(buf[:], text)
		return sha256.Sum256(buf[:])
	}
	return sha256.Sum256([]byte(text))
}

// TokenHint returns the part of a token that may be shown after issue, such
// as "tgp_abcd", so a user can tell which token is active.
func TokenHint(text string) string {
	if len(text) < hintLen {
		return text
	}
	return text[:hintLen]
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func base64Value(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	}
	return 63
}
