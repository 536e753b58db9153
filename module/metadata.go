package module

import (
	"net/http"
	"strings"
)

// authServerMetadata is the RFC 8414 2 authorization server metadata.
type authServerMetadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint"`
	ScopesSupported                        []string `json:"scopes_supported"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods       []string `json:"introspection_endpoint_auth_methods_supported"`
	AuthorizationResponseIssParameter      bool     `json:"authorization_response_iss_parameter_supported"`
}

// clientAuthMethods are the client authentication methods of the token,
// revocation and introspection endpoints (docs/reference.md): "none" is a
// public client naming itself with client_id alone.
var clientAuthMethods = []string{"client_secret_basic", "client_secret_post", "none"}

// serveMetadata answers GET /.well-known/oauth-authorization-server (RFC
// 8414 3). The endpoint URLs are the issuer followed by this
// handler's configured paths.
func (e *Endpoints) serveMetadata(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "method not allowed"})
	}
	base := strings.TrimSuffix(e.app.Issuer, "/")
	scopes := e.app.scopeNames()
	return writeJSON(w, http.StatusOK, authServerMetadata{
		Issuer:                                 e.app.Issuer,
		AuthorizationEndpoint:                  base + e.Authorize,
		TokenEndpoint:                          base + e.Token,
		RevocationEndpoint:                     base + e.Revoke,
		IntrospectionEndpoint:                  base + e.Introspect,
		ScopesSupported:                        scopes,
		ResponseTypesSupported:                 []string{"code"},
		GrantTypesSupported:                    []string{"authorization_code", "refresh_token"},
		CodeChallengeMethodsSupported:          []string{"S256"},
		TokenEndpointAuthMethodsSupported:      clientAuthMethods,
		RevocationEndpointAuthMethodsSupported: clientAuthMethods,
		IntrospectionEndpointAuthMethods:       clientAuthMethods,
		AuthorizationResponseIssParameter:      true,
	})
}
