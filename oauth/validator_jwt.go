package oauth

import (
	"context"
	"crypto/subtle"
	"errors"
)

// validateJWT is ValidateWith for a text shaped like a JWS.
//
// A cached answer costs no signature check: the jti is read from the
// payload alone, and the entry kept under its hash is trusted only when it
// remembers this very text (jwtMark). Anything else (a first use, an
// entry made from another text with the same jti) runs the whole RFC 9068
// 4 verification, then the store look-up, as an opaque token's miss does.
// A token that fails verification (an ID token, one signed by anyone
// else, a tampered one) is refused without asking the store, and is not
// cached: only tokengate can make texts that reach the store.
func (v *Validator) validateJWT(ctx context.Context, text string, j *JWTAccessTokens) (Principal, error) {
	h, ok := peekJTIHash(text)
	if !ok {
		return Principal{}, ErrInvalidToken
	}
	now := v.now()
	nowMs := epochMillis(now)
	if e, ok := v.cache.Get(string(h[:])); ok && e.fresh(nowMs) {
		switch {
		case e.grant == nil:
			// Verified once, then unknown to the store: revoked, or
			// expired and purged. That holds for every text of this jti.
			v.metrics.CacheHit()
			return Principal{}, ErrInvalidToken
		case e.marked(j.mark(text)):
			v.metrics.CacheHit()
			if p, ok := e.principal(nowMs); ok {
				return p, nil
			}
			return Principal{}, ErrInvalidToken
		}
	}
	v.metrics.CacheMiss()

	c, err := j.verify(ctx, text, now, false)
	switch {
	case errors.Is(err, ErrSigningKeysUnavailable):
		return Principal{}, ErrUnavailable
	case err != nil:
		return Principal{}, ErrInvalidToken
	}
	// The verified jti, not the one peeked: they agree for every text
	// tokengate signs, and only the verified one may name a stored token.
	h = HashToken(c.ID)
	seen := v.revocations.Load()
	p, err := v.lookup(ctx, KindAccess, h)
	var e *cachedToken
	switch {
	case err == nil:
		if !j.matches(c, &p) {
			return Principal{}, ErrInvalidToken
		}
		e = v.newCachedJWT(&p, j.mark(text), now)
	case errors.Is(err, ErrNotFound):
		e = v.newCachedToken(nil, now)
	default:
		return Principal{}, ErrUnavailable
	}
	v.remember(h, e, seen)
	if p, ok := e.principal(nowMs); ok {
		return p, nil
	}
	return Principal{}, ErrInvalidToken
}

// marked reports whether e is the entry of a JWT access token made from
// the text with mark m.
func (e *cachedToken) marked(m jwtMark) bool {
	return e.grant != nil && e.grant.jwt && len(e.userID) >= len(m) &&
		subtle.ConstantTimeCompare([]byte(e.userID[:len(m)]), m[:]) == 1
}
