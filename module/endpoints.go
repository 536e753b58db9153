package module

import (
	"fmt"
	"html/template"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Endpoints{})
}

// Endpoints serves tokengate's HTTP endpoints (docs/reference.md) on their
// paths and passes every other request to the next handler.
type Endpoints struct {
	// Authorize is the authorization endpoint's path. Default: /oauth/authorize.
	Authorize string `json:"authorize,omitempty"`
	// Token is the token endpoint's path. Default: /oauth/token.
	Token string `json:"token,omitempty"`
	// Revoke is the revocation endpoint's path. Default: /oauth/revoke.
	Revoke string `json:"revoke,omitempty"`
	// Introspect is the introspection endpoint's path. Default: /oauth/introspect.
	Introspect string `json:"introspect,omitempty"`
	// APIToken is the personal API token endpoint's path. Default: /api-token.
	APIToken string `json:"api_token,omitempty"`
	// Grants is the path of the user's connected apps (docs/reference.md):
	// GET lists the clients the user authorized, DELETE on the path
	// followed by /<client_id> revokes one. Default: /oauth/grants.
	Grants string `json:"grants,omitempty"`
	// Clients is the path where users register OAuth clients of their
	// own (docs/reference.md): GET lists the user's clients, POST adds
	// one; GET, PUT and DELETE on the path followed by /<client_id>, and
	// POST on <clients>/<client_id>/secret, serve one of them. Default:
	// off.
	Clients string `json:"clients,omitempty"`
	// Userinfo is the OpenID Connect userinfo endpoint's path (docs/oidc.md),
	// served when openid is on. Default: /oauth/userinfo.
	Userinfo string `json:"userinfo,omitempty"`
	// JWKS is the path of the key set that ID tokens and JWT access tokens
	// are verified with (RFC 7517 5), served when openid is on or access
	// tokens are JWTs. Default: /.well-known/jwks.json.
	JWKS string `json:"jwks,omitempty"`
	// Registration is the dynamic client registration endpoint's path
	// (RFC 7591); GET, PUT and DELETE on the path followed by
	// /<client_id> are the client configuration endpoint (RFC 7592). It
	// needs the app's registration option. Default: off.
	Registration string `json:"registration,omitempty"`
	// DeviceAuthorization is the device authorization endpoint's path
	// (RFC 8628 3.1), where a device asks for a device code and a user
	// code. Default: /oauth/device_authorization.
	DeviceAuthorization string `json:"device_authorization,omitempty"`
	// Device is the path of the verification page (RFC 8628 3.3), where a
	// signed-in user enters the user code a device shows and approves or
	// denies it; it is the verification_uri. Default: /oauth/device.
	Device string `json:"device,omitempty"`
	// ConsentTemplate is an html/template file that replaces the built-in
	// consent page of the browser flow (docs/reference.md), read and parsed at
	// provisioning; a file that cannot be parsed is a config error. It is
	// executed with a ConsentPage: Nonce (the CSP nonce a <style> element
	// must carry, since the page's Content-Security-Policy allows no other
	// style and no script), ClientID, ClientName, ClientInitial, Scopes
	// (each with Name, Description and Granted: already consented to),
	// UserID, Action (the form's action), Hidden (each with Name and
	// Value: the request parameters and the CSRF token, all of which the
	// form must post back), RedirectURI, RedirectHost, Issuer and
	// IssuerHost. The form posts
	// application/x-www-form-urlencoded with method post to Action, with a
	// submit button named decision whose value is approve or deny.
	// The device verification page uses it too, with UserCode set (the
	// code the device shows, XXXX-XXXX) and RedirectURI and RedirectHost
	// empty. Default: the built-in page.
	ConsentTemplate string `json:"consent_template,omitempty"`

	app         *App
	logger      *zap.Logger
	consentPage *template.Template
	// accessLog writes the access log entries of requests whose URL holds
	// a user code, or (userinfo) a refused token, in place of Caddy's
	// (accesslog.go).
	accessLog *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Endpoints) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tokengate_endpoints",
		New: func() caddy.Module { return new(Endpoints) },
	}
}

// Provision sets the default paths and finds the tokengate app.
func (e *Endpoints) Provision(ctx caddy.Context) error {
	e.logger = ctx.Logger()
	e.accessLog = ctx.Logger(accessLogName{})
	app, err := tokengateApp(ctx, "tokengate_endpoints directive")
	if err != nil {
		return err
	}
	e.app = app
	for _, p := range []struct {
		path *string
		def  string
	}{
		{&e.Authorize, "/oauth/authorize"},
		{&e.Token, "/oauth/token"},
		{&e.Revoke, "/oauth/revoke"},
		{&e.Introspect, "/oauth/introspect"},
		{&e.APIToken, "/api-token"},
		{&e.Grants, "/oauth/grants"},
		{&e.Clients, ""}, // off unless given
		{&e.Userinfo, "/oauth/userinfo"},
		{&e.JWKS, "/.well-known/jwks.json"},
		{&e.Registration, ""},
		{&e.DeviceAuthorization, "/oauth/device_authorization"},
		{&e.Device, "/oauth/device"},
	} {
		if *p.path == "" {
			*p.path = p.def
		}
		if *p.path != "" && (*p.path)[0] != '/' {
			return fmt.Errorf("tokengate_endpoints: path %q must start with /", *p.path)
		}
	}
	if e.Registration != "" && app.Registration == nil {
		return fmt.Errorf("tokengate_endpoints: the registration path %s needs the registration global option (registration open, or registration token <initial access token>)", e.Registration)
	}
	e.consentPage = defaultConsentTemplate
	if e.ConsentTemplate != "" {
		if e.consentPage, err = loadConsentTemplate(e.ConsentTemplate); err != nil {
			return fmt.Errorf("tokengate_endpoints: %w", err)
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (e *Endpoints) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	var serve func(http.ResponseWriter, *http.Request) error
	switch r.URL.Path {
	case e.APIToken:
		serve = e.serveAPIToken
	case e.Token:
		serve = e.serveToken
	case e.Revoke:
		serve = e.serveRevoke
	case e.Introspect:
		serve = e.serveIntrospect
	case metadataPath:
		// Configuration only: served even before the store is open.
		return e.serveMetadata(w, r)
	case openIDConfigurationPath:
		if e.app.OpenID == nil {
			return next.ServeHTTP(w, r)
		}
		return e.serveOpenIDConfiguration(w, r)
	case e.Authorize:
		serve = e.serveAuthorize
	case e.JWKS:
		if !e.app.needsSigningKeys() {
			return next.ServeHTTP(w, r)
		}
		serve = e.serveJWKS
	case e.Userinfo:
		if e.app.OpenID == nil {
			return next.ServeHTTP(w, r)
		}
		// It waits for the store as the guard does, with the guard's 503.
		return e.serveUserinfo(w, r)
	case e.DeviceAuthorization:
		serve = e.serveDeviceAuthorization
	case e.Device:
		serve = e.serveDevicePage
	default:
		// The grants and clients paths and the paths below them; every
		// endpoint's own path goes first.
		if res := e.app.resourceAt(r); res != nil {
			// Configuration only, as the metadata above.
			return e.serveProtectedResource(w, r, res)
		}
		if _, ok := e.grantPath(r); ok {
			serve = e.serveGrants
		} else if _, _, ok := e.clientsPath(r); ok {
			serve = e.serveSelfClients
		} else if _, ok := e.registrationPath(r); ok {
			serve = e.serveRegistration
		} else {
			return next.ServeHTTP(w, r)
		}
	}
	if !e.app.awaitStart(r.Context()) {
		return e.notStarted(w, r)
	}
	return serve(w, r)
}

// notStarted answers as for an unreachable store when the app has not
// opened it (yet): 503 temporarily_unavailable, an HTML page for the
// browser flow's GET and form POST.
func (e *Endpoints) notStarted(w http.ResponseWriter, r *http.Request) error {
	if ce := e.logger.Check(zap.WarnLevel, "token store not open yet"); ce != nil {
		ce.Write(zap.String("path", r.URL.Path))
	}
	w.Header().Set("Retry-After", retryAfterSeconds)
	if r.URL.Path == e.Authorize && (r.Method == http.MethodGet || r.Method == http.MethodPost && !isJSONRequest(r)) || r.URL.Path == e.Device {
		return e.writeErrorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable",
			"The authorization server cannot be reached right now. Please try again in a moment.")
	}
	setNoStore(w)
	return writeJSON(w, http.StatusServiceUnavailable, oauthError{"temporarily_unavailable", "the token store cannot be reached"})
}

// metadataPath is where RFC 8414 3 puts the authorization server metadata.
const metadataPath = "/.well-known/oauth-authorization-server"

// Interface guards
var (
	_ caddy.Provisioner           = (*Endpoints)(nil)
	_ caddyhttp.MiddlewareHandler = (*Endpoints)(nil)
)
