package oauth

import "strings"

// MaxScopes is the most scopes one scope parameter may name; a longer list
// is invalid_scope before any scope is looked at.
const MaxScopes = 64

// errTooManyScopes is the answer to a scope parameter naming more than
// MaxScopes scopes.
var errTooManyScopes = ErrInvalidScope.WithDescription("scope names more than 64 scopes")

// tooManyScopes reports whether scope names more than MaxScopes scopes,
// counting repeats, without splitting it.
func tooManyScopes(scope string) bool {
	n := 0
	for range strings.FieldsSeq(scope) {
		if n++; n > MaxScopes {
			return true
		}
	}
	return false
}
