package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
)

// SignIDToken signs claims (a map or a struct, marshalled as JSON, with a
// numeric exp) with the ring's current key, as an OpenID Connect ID token:
// header kid and typ JWT. Its typ keeps it from ever passing as an access
// token (VerifyAccessToken).
func SignIDToken(ctx context.Context, ring *KeyRing, c any) (string, error) {
	return sign(ctx, ring, c, "JWT")
}

// AtHash returns the at_hash of an access token (OIDC Core 3.1.3.6): the
// left half of its hash, unpadded base64url. The hash is the one of the ID
// token's alg, SHA-256 for both RS256 and ES256.
func AtHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
