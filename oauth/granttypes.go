package oauth

import (
	"fmt"
	"slices"
)

// The grant types a client may be allowed, by the names RFC 7591 2 gives
// them in a client's grant_types.
const (
	// GrantTypeAuthorizationCode is the code flow (RFC 6749 4.1).
	GrantTypeAuthorizationCode = "authorization_code"
	// GrantTypeRefreshToken is the refresh of a token pair (RFC 6749 6).
	GrantTypeRefreshToken = "refresh_token"
	// GrantTypeClientCredentials is a client acting for itself (RFC 6749
	// 4.4); confidential clients only.
	GrantTypeClientCredentials = "client_credentials"
	// GrantTypeDeviceCode is the device authorization grant (RFC 8628 3.4).
	GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// knownGrantTypes are every grant type a client may be given, in the
// order metadata lists them.
var knownGrantTypes = []string{
	GrantTypeAuthorizationCode,
	GrantTypeRefreshToken,
	GrantTypeClientCredentials,
	GrantTypeDeviceCode,
}

// defaultGrantTypes are the grant types of a client that names none.
var defaultGrantTypes = []string{GrantTypeAuthorizationCode, GrantTypeRefreshToken}

// DefaultGrantTypes returns the grant types of a client that names none:
// authorization_code and refresh_token.
func DefaultGrantTypes() []string { return slices.Clone(defaultGrantTypes) }

// KnownGrantTypes returns every grant type a client may be given.
func KnownGrantTypes() []string { return slices.Clone(knownGrantTypes) }

// CheckGrantTypes applies the rules a client's grant types keep: each one
// known, and client_credentials for a confidential client only (RFC 6749
// 4.4: the client authenticates as itself). The error names the culprit.
func CheckGrantTypes(grantTypes []string, public bool) error {
	for _, g := range grantTypes {
		if !slices.Contains(knownGrantTypes, g) {
			return fmt.Errorf("unknown grant type %q (known: %v)", g, knownGrantTypes)
		}
		if g == GrantTypeClientCredentials && public {
			return fmt.Errorf("grant type %s needs a confidential client (one with a secret)", g)
		}
	}
	return nil
}

// grantTypesOrDefault returns grantTypes without repeats, or the default
// grant types when there are none.
func grantTypesOrDefault(grantTypes []string) []string {
	if len(grantTypes) == 0 {
		return DefaultGrantTypes()
	}
	out := make([]string, 0, len(grantTypes))
	for _, g := range grantTypes {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// AllowsGrant reports whether the client may use grantType; a grant it
// may not use is unauthorized_client (RFC 6749 5.2). A client with no
// grant types has the default ones.
func (c *Client) AllowsGrant(grantType string) bool {
	if len(c.GrantTypes) == 0 {
		return slices.Contains(defaultGrantTypes, grantType)
	}
	return slices.Contains(c.GrantTypes, grantType)
}

// NeedsRedirectURI reports whether a client with grantTypes (none: the
// default ones) must register a redirect URI: only the code flow sends
// the user agent back to the client (RFC 6749 3.1.2).
func NeedsRedirectURI(grantTypes []string) bool {
	return len(grantTypes) == 0 || slices.Contains(grantTypes, GrantTypeAuthorizationCode)
}
