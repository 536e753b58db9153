package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// PKCEMethodS256 is the only code_challenge_method accepted
// (docs/reference.md); "plain" would let a stolen authorization request be
// replayed.
const PKCEMethodS256 = "S256"

// pkceChallengeLen is the length of BASE64URL(SHA256(verifier)), unpadded.
const pkceChallengeLen = 43

// ValidChallenge reports whether c can be an S256 code_challenge: exactly 43
// base64url characters (RFC 7636 4.2).
func ValidChallenge(c string) bool {
	if len(c) != pkceChallengeLen {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isBase64URL(c[i]) {
			return false
		}
	}
	return true
}

// ValidVerifier reports whether v is a well-formed code_verifier: 43 to 128
// characters of [A-Za-z0-9-._~] (RFC 7636 4.1).
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(isBase64URL(c) || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

// S256Challenge returns BASE64URL(SHA256(verifier)) (RFC 7636 4.2).
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifyPKCE reports whether verifier is well formed and matches the S256
// challenge, comparing in constant time (RFC 7636 4.6).
func VerifyPKCE(challenge, verifier string) bool {
	if !ValidVerifier(verifier) || !ValidChallenge(challenge) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(S256Challenge(verifier)), []byte(challenge)) == 1
}
