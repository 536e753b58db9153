package oauth

import "slices"

// The grant types a client may be allowed (RFC 7591 2, RFC 8628 3.4).
const (
	GrantTypeAuthorizationCode = "authorization_code"
	GrantTypeRefreshToken      = "refresh_token"
	GrantTypeClientCredentials = "client_credentials"
	GrantTypeDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// AllowsGrant reports whether the client may use grantType. A client
// registered without grant types gets the authorization code and refresh
// token grants; one registered with them gets exactly those.
//
// This is the smallest form of per-client grant types, enough for the
// device grant to be turned on per client; the checks of the grant types
// themselves (known names, which combinations make sense) belong with the
// client's other rules.
func (c *Client) AllowsGrant(grantType string) bool {
	if len(c.grantTypes) == 0 {
		return grantType == GrantTypeAuthorizationCode || grantType == GrantTypeRefreshToken
	}
	return slices.Contains(c.grantTypes, grantType)
}
