package oauth

import (
	"errors"
	"strings"
)

// Ways an Authorization header can fail (docs/reference.md). ErrNoCredentials
// is the only one answered without error="invalid_token".
var (
	ErrNoCredentials    = errors.New("no Authorization header")
	ErrBadAuthorization = errors.New("malformed Authorization header")
)

// Scheme is the authentication scheme an access token was sent with.
type Scheme uint8

// The schemes AccessToken tells apart.
const (
	// SchemeNone: no scheme could be read, or another one than these.
	SchemeNone Scheme = iota
	// SchemeBearer is RFC 6750 2.1's.
	SchemeBearer
	// SchemeDPoP is RFC 9449 7.1's, for tokens bound to a DPoP key.
	SchemeDPoP
)

// BearerToken extracts the token from the values of a request's
// Authorization header: exactly one value, scheme "Bearer" in any letter
// case, one or more spaces, then the token (RFC 6750 2.1, RFC 9110 11.1).
// The token is not checked here beyond being a non-empty run of token68
// characters; ParseToken does the rest.
func BearerToken(values []string) (string, error) {
	token, scheme, err := AccessToken(values)
	if err == nil && scheme != SchemeBearer {
		return "", ErrBadAuthorization
	}
	return token, err
}

// AccessToken is BearerToken for a protected resource that also takes the
// DPoP scheme (RFC 9449 7.1), with the same syntax: "DPoP", one or more
// spaces, a token68. The scheme is reported whenever it was read, also
// with an error after it, so that a DPoP request's refusal can be answered
// with a DPoP challenge.
func AccessToken(values []string) (token string, scheme Scheme, err error) {
	switch len(values) {
	case 0:
		return "", SchemeNone, ErrNoCredentials
	case 1:
	default:
		return "", SchemeNone, ErrBadAuthorization
	}
	v := values[0]
	name, _, _ := strings.Cut(v, " ")
	switch {
	case equalFoldASCII(name, "bearer"):
		scheme = SchemeBearer
	case equalFoldASCII(name, "dpop"):
		scheme = SchemeDPoP
	default:
		return "", SchemeNone, ErrBadAuthorization
	}
	i := len(name)
	for i < len(v) && v[i] == ' ' {
		i++
	}
	token = v[i:]
	if token == "" {
		return "", scheme, ErrBadAuthorization
	}
	for j := 0; j < len(token); j++ {
		if !isToken68(token[j]) {
			return "", scheme, ErrBadAuthorization
		}
	}
	return token, scheme, nil
}

// equalFoldASCII reports whether s is lower, a lower-case ASCII word, in
// any letter case; unlike strings.EqualFold it maps no other character
// (such as the Kelvin sign) to an ASCII letter.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// isToken68 reports whether c may appear in an RFC 9110 token68 (the '='
// padding is accepted anywhere; tokengate tokens never contain it).
func isToken68(c byte) bool {
	return isBase64URL(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}
