package module

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Guard{})
}

// Guard lets a request through only with a valid access token that has
// the scopes its method needs (docs/reference.md), sent as a bearer token
// or, bound to a DPoP key, with a proof of that key (docs/dpop.md), and
// tells the next handler who called.
type Guard struct {
	// Methods maps an upper-case HTTP method, or "*" for every method not
	// listed, to the scopes a request needs, all of them. HEAD falls back to
	// GET's line, then to "*". A method with no line is refused with 403.
	// With no entries at all, any valid token passes.
	Methods map[string][]string `json:"methods,omitempty"`
	// ForwardAuthorization keeps the caller's Authorization header for the
	// next handler. By default it is removed.
	ForwardAuthorization bool `json:"forward_authorization,omitempty"`
	// UpstreamJWT, when set, replaces the Authorization header with a JWT
	// describing the caller.
	UpstreamJWT *UpstreamJWT `json:"upstream_jwt,omitempty"`
	// Resource names the protected resource the guard stands in front of
	// (RFC 9728): an absolute https URI (http for a loopback host) with no
	// query or fragment. The endpoints handler of the site then serves its
	// metadata at /.well-known/oauth-protected-resource followed by the
	// URI's path, and the guard's 401 and 403 answers point to it with a
	// resource_metadata parameter. Default: none.
	Resource string `json:"resource,omitempty"`

	app      *App
	upstream *upstreamSigner
	metrics  *gatewayMetrics
	logger   *zap.Logger
	// accessLog writes the access log entries of refused requests whose
	// URL held a token.
	accessLog *zap.Logger
	// resourceMetadata is the WWW-Authenticate parameter naming the
	// resource's metadata, with its leading ", "; empty without Resource.
	resourceMetadata string
}

// protected is what the guard names of its resource.
func (g *Guard) protected() guardResource {
	return guardResource{resource: g.Resource, challengeSuffix: g.resourceMetadata}
}

// CaddyModule returns the Caddy module information.
func (Guard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tokengate",
		New: func() caddy.Module { return new(Guard) },
	}
}

// Provision finds the tokengate app and checks the rules against it.
func (g *Guard) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	g.accessLog = ctx.Logger(accessLogName{})
	app, err := tokengateApp(ctx, "tokengate directive")
	if err != nil {
		return err
	}
	g.app = app
	g.metrics = app.metrics
	for m := range g.Methods {
		if m != "*" && m != strings.ToUpper(m) {
			return fmt.Errorf("tokengate: method %q must be written in upper case", m)
		}
	}
	if err := app.ValidateScopes("tokengate directive", g.Methods); err != nil {
		return err
	}
	if err := g.useResource(app); err != nil {
		return err
	}
	if g.UpstreamJWT != nil {
		g.upstream, err = newUpstreamSigner(g.UpstreamJWT, app.Issuer)
		if err != nil {
			return fmt.Errorf("tokengate: upstream_jwt: %w", err)
		}
	}
	return nil
}

// tokengateApp returns the configured tokengate app, or an error saying that
// the global option block is missing. An app that is configured but fails
// to provision (an empty placeholder, say) reports its own error.
func tokengateApp(ctx caddy.Context, who string) (*App, error) {
	v, err := ctx.AppIfConfigured("tokengate")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil, fmt.Errorf("%s needs the tokengate global option block", who)
	}
	if err != nil {
		return nil, err
	}
	return v.(*App), nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Identity headers are only ever set by the guard: drop any the client
	// sent, and any method override, before anything else, on every
	// request; and keep a Connection header from making reverse_proxy drop
	// the headers the guard sets.
	if stripClientHeaders(r.Header) {
		unlistGuardedHeaders(r.Header, g.ForwardAuthorization || g.upstream != nil)
	}

	if isCORSPreflight(r) {
		return next.ServeHTTP(w, r)
	}
	p, _, ok, err := g.app.authenticateAccess(w, r, g.logger, g.accessLog, g.protected())
	if !ok {
		return err
	}
	required, ok := g.requiredScopes(r.Method)
	missing, lacks := p.FirstMissing(required)
	if !ok || lacks {
		g.metrics.validation(validationInsufficientScope)
		return denyScopeFor(w, &p, missing, g.resourceMetadata)
	}
	g.metrics.validation(validationOK)

	setIdentity(r, &p)
	if g.upstream != nil {
		jwt, err := g.upstream.sign(&p)
		if err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("signing upstream JWT: %w", err))
		}
		r.Header.Set("Authorization", "Bearer "+jwt)
		delete(r.Header, headerDPoP)
	} else if !g.ForwardAuthorization {
		// The DPoP proof goes with the token it was made for.
		delete(r.Header, "Authorization")
		delete(r.Header, headerDPoP)
	}
	return next.ServeHTTP(w, r)
}

// requiredScopes finds the request's line: its own method, then for HEAD the
// GET line, then "*" (docs/reference.md). With no lines, no scope is needed.
func (g *Guard) requiredScopes(method string) ([]string, bool) {
	if len(g.Methods) == 0 {
		return nil, true
	}
	if s, ok := g.Methods[method]; ok {
		return s, true
	}
	if method == http.MethodHead {
		if s, ok := g.Methods[http.MethodGet]; ok {
			return s, true
		}
	}
	s, ok := g.Methods["*"]
	return s, ok
}

// isCORSPreflight matches the Fetch standard's preflight request, which
// browsers send without credentials, so it cannot carry a token.
func isCORSPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions &&
		r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// hasQueryToken reports whether the query names a token or access_token
// parameter, with or without a value (RFC 6750 2.3 is not supported: tokens
// in URLs leak through logs and Referer).
func hasQueryToken(rawQuery string) bool {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		// An unparsable query may still carry one; look at the raw keys.
		for _, kv := range strings.Split(rawQuery, "&") {
			k, _, _ := strings.Cut(kv, "=")
			if k, err := url.QueryUnescape(k); err == nil && (k == "token" || k == "access_token") {
				return true
			}
		}
		return false
	}
	_, token := q["token"]
	_, accessToken := q["access_token"]
	return token || accessToken
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Guard)(nil)
	_ caddyhttp.MiddlewareHandler = (*Guard)(nil)
)
