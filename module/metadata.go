package module

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// authServerMetadata is the RFC 8414 2 authorization server metadata.
type authServerMetadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint"`
	DeviceAuthorizationEndpoint            string   `json:"device_authorization_endpoint"`
	ScopesSupported                        []string `json:"scopes_supported"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods       []string `json:"introspection_endpoint_auth_methods_supported"`
	AuthorizationResponseIssParameter      bool     `json:"authorization_response_iss_parameter_supported"`
	// RegistrationEndpoint is there while registration is on (RFC 8414 2).
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// DPoPSigningAlgValuesSupported are the algorithms a DPoP proof may
	// use (RFC 9449 5.1).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
	// With openid on, or JWT access tokens.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// With openid on.
	UserinfoEndpoint string `json:"userinfo_endpoint,omitempty"`
}

// clientAuthMethods are the client authentication methods of the token,
// revocation and introspection endpoints (docs/reference.md): "none" is a
// public client naming itself with client_id alone.
var clientAuthMethods = []string{"client_secret_basic", "client_secret_post", "none"}

// grantTypesSupported lists authorization_code and refresh_token, always,
// and each other grant type only while some client, static or stored, may
// use it: stored clients change at run time, so it is worked out on each
// request, from the clients this instance holds in memory.
func (e *Endpoints) grantTypesSupported() []string {
	out := []string{oauth.GrantTypeAuthorizationCode, oauth.GrantTypeRefreshToken}
	for _, g := range oauth.KnownGrantTypes() {
		if slices.Contains(out, g) {
			continue
		}
		if e.app.clientsAllow(g) {
			out = append(out, g)
		}
	}
	return out
}

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
	registration := ""
	if e.Registration != "" {
		registration = base + e.Registration
	}
	m := authServerMetadata{
		Issuer:                                 e.app.Issuer,
		AuthorizationEndpoint:                  base + e.Authorize,
		TokenEndpoint:                          base + e.Token,
		RevocationEndpoint:                     base + e.Revoke,
		IntrospectionEndpoint:                  base + e.Introspect,
		DeviceAuthorizationEndpoint:            base + e.DeviceAuthorization,
		ScopesSupported:                        scopes,
		ResponseTypesSupported:                 []string{"code"},
		GrantTypesSupported:                    e.grantTypesSupported(),
		CodeChallengeMethodsSupported:          []string{"S256"},
		TokenEndpointAuthMethodsSupported:      clientAuthMethods,
		RevocationEndpointAuthMethodsSupported: clientAuthMethods,
		IntrospectionEndpointAuthMethods:       clientAuthMethods,
		AuthorizationResponseIssParameter:      true,
		RegistrationEndpoint:                   registration,
		DPoPSigningAlgValuesSupported:          oauth.DPoPSigningAlgs(),
	}
	if e.app.needsSigningKeys() {
		m.JWKSURI = base + e.JWKS
	}
	if e.app.OpenID != nil {
		m.UserinfoEndpoint = base + e.Userinfo
	}
	return m
}

// clientsAllow reports whether some client may use grantType: the static
// clients and, once the store is open, the stored ones too. Metadata is
// served before that, so it does not wait.
func (a *App) clientsAllow(grantType string) bool {
	select {
	case <-a.started.done:
		if a.state != nil {
			return a.registry.SomeClientAllows(grantType)
		}
	default:
	}
	return (&oauth.Clients{Static: a.clients}).SomeClientAllows(grantType)
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
