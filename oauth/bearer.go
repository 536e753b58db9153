package oauth

import "errors"

// Ways an Authorization header can fail (docs/reference.md). ErrNoCredentials
// is the only one answered without error="invalid_token".
var (
	ErrNoCredentials    = errors.New("no Authorization header")
	ErrBadAuthorization = errors.New("malformed Authorization header")
)

// BearerToken extracts the token from the values of a request's
// Authorization header: exactly one value, scheme "Bearer" in any letter
// case, one or more spaces, then the token (RFC 6750 2.1, RFC 9110 11.1).
// The token is not checked here beyond being a non-empty run of token68
// characters; ParseToken does the rest.
func BearerToken(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", ErrNoCredentials
	case 1:
	default:
		return "", ErrBadAuthorization
	}
	v := values[0]
	const scheme = "bearer"
	if len(v) <= len(scheme) || v[len(scheme)] != ' ' {
		return "", ErrBadAuthorization
	}
	for i := 0; i < len(scheme); i++ {
		if v[i]|0x20 != scheme[i] {
			return "", ErrBadAuthorization
		}
	}
	i := len(scheme)
	for i < len(v) && v[i] == ' ' {
		i++
	}
	token := v[i:]
	if token == "" {
		return "", ErrBadAuthorization
	}
	for j := 0; j < len(token); j++ {
		if !isToken68(token[j]) {
			return "", ErrBadAuthorization
		}
	}
	return token, nil
}

// isToken68 reports whether c may appear in an RFC 9110 token68 (the '='
// padding is accepted anywhere; tokengate tokens never contain it).
func isToken68(c byte) bool {
	return isBase64URL(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}
