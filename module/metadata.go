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
	base := strings.TrimSuffix(e.app.Issuer, "/")
	scopes := make([]string, 0, len(e.app.Scopes))
	for _, s := range e.app.Scopes {
		scopes = append(scopes, s.Name)
	}
	registration := ""
	if e.Registration != "" {
		registration = base + e.Registration
	}
	return writeJSON(w, http.StatusOK, authServerMetadata{
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
	})
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
