package module

import (
	"net/http"
	"slices"
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
	// With openid on, or JWT access tokens.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// With openid on.
	UserinfoEndpoint string `json:"userinfo_endpoint,omitempty"`
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
	return writeJSON(w, http.StatusOK, e.metadata())
}

// metadata is the RFC 8414 2 document of this handler's paths.
func (e *Endpoints) metadata() authServerMetadata {
	base := strings.TrimSuffix(e.app.Issuer, "/")
	scopes := e.app.scopeNames()
	m := e.oauthMetadata(base, scopes)
	if e.app.needsSigningKeys() {
		m.JWKSURI = base + e.JWKS
	}
	if e.app.OpenID != nil {
		m.UserinfoEndpoint = base + e.Userinfo
	}
	return m
}

// oauthMetadata is the OAuth part of the metadata.
func (e *Endpoints) oauthMetadata(base string, scopes []string) authServerMetadata {
	return authServerMetadata{
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
	}
}

// openIDMetadata is the OpenID Provider metadata (OpenID Connect Discovery
// 1.0 3): the RFC 8414 document and what OpenID Connect adds.
type openIDMetadata struct {
	authServerMetadata
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
	ResponseModesSupported           []string `json:"response_modes_supported"`
	// Discovery 1.0 3 takes an absent request_uri_parameter_supported
	// for true; the others are said for clarity.
	ClaimsParameterSupported     bool `json:"claims_parameter_supported"`
	RequestParameterSupported    bool `json:"request_parameter_supported"`
	RequestURIParameterSupported bool `json:"request_uri_parameter_supported"`
}

// openIDConfigurationPath is where OpenID Connect Discovery 1.0 4 puts the
// provider's metadata, for an issuer with no path.
const openIDConfigurationPath = "/.well-known/openid-configuration"

// idTokenClaims are the claims of every ID token (OpenID Connect Core 2),
// nonce when the request had one.
var idTokenClaims = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp"}

// serveOpenIDConfiguration answers GET /.well-known/openid-configuration
// (OpenID Connect Discovery 1.0 4).
func (e *Endpoints) serveOpenIDConfiguration(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "method not allowed"})
	}
	return writeJSON(w, http.StatusOK, openIDMetadata{
		authServerMetadata:               e.metadata(),
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{e.app.OpenID.SigningAlg},
		ClaimsSupported:                  append(slices.Clip(idTokenClaims), e.app.OpenID.Claims...),
		ResponseModesSupported:           []string{"query"},
	})
}
