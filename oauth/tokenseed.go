package oauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// TokenFromSeed returns the token text of kind k whose 256-bit body is seed.
// It is for tokens derived from a secret (see DeriveRotatedPair); every
// other token comes from NewToken.
func TokenFromSeed(k Kind, seed [32]byte) string {
	buf := make([]byte, TokenLen)
	copy(buf, "tg")
	buf[2] = byte(k)
	buf[3] = '_'
	base64.RawURLEncoding.Encode(buf[tokenPrefixLen:], seed[:])
	appendChecksum(buf)
	return string(buf)
}

// DeriveRotatedPair returns the access and refresh token texts issued when
// refresh token oldRefresh is rotated: HMAC-SHA256 under the server key of
// the presented token. A retry within refresh_grace recomputes the same pair
// from the same presented token (docs/reference.md), so the store never needs
// to keep a token in clear; without the server key nobody can compute it.
func DeriveRotatedPair(serverKey []byte, oldRefresh string) (access, refresh string) {
	return TokenFromSeed(KindAccess, deriveSeed(serverKey, "access", oldRefresh)),
		TokenFromSeed(KindRefresh, deriveSeed(serverKey, "refresh", oldRefresh))
}

// DeriveRotatedJWTID returns the jti of the JWT access token issued when
// refresh token oldRefresh is rotated, derived as DeriveRotatedPair derives
// the opaque pair, so that a retry within refresh_grace maps to the same
// stored token. Its own label keeps it unrelated to the opaque access token
// of the same rotation.
func DeriveRotatedJWTID(serverKey []byte, oldRefresh string) string {
	return TokenFromSeed(KindJWTID, deriveSeed(serverKey, "jwt id", oldRefresh))
}

func deriveSeed(key []byte, label, token string) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(token))
	var seed [32]byte
	copy(seed[:], m.Sum(nil))
	return seed
}
