package module

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves tokengate's routes on Caddy's admin endpoint, under
// /tokengate/ (docs/operations.md): the stored OAuth clients, and users'
// personal API tokens. The `caddy tokengate` command is its client. It
// works on the tokengate app of the running config, whose store opens
// when the config starts.
type AdminAPI struct {
	app    *App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.tokengate",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision finds the config's tokengate app, as the PKI admin routes find
// theirs. A config without one is no error (see startedApp). Neither is
// an app that fails to load here: loading the config's apps reports that
// failure right after, and the config is refused.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger(a)
	if app, err := ctx.AppIfConfigured("tokengate"); err == nil {
		a.app = app.(*App)
	}
	return nil
}

// adminBase is the prefix of tokengate's admin routes.
const adminBase = "/tokengate/"

// Routes implements caddy.AdminRouter.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: adminBase, Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// serve routes a request under adminBase. Path segments are split before
// they are unescaped, so that a client id may hold a slash (%2F).
func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	segs, ok := pathSegments(r.URL.EscapedPath())
	if !ok {
		return notFound(r)
	}
	app, err := a.startedApp(r)
	if err != nil {
		return err
	}
	switch {
	case len(segs) == 1 && segs[0] == "clients":
		return a.serveClients(w, r, app)
	case len(segs) == 2 && segs[0] == "clients":
		return a.serveClient(w, r, app, segs[1])
	case len(segs) == 3 && segs[0] == "clients" && segs[2] == "secret":
		return a.serveClientSecret(w, r, app, segs[1])
	case len(segs) == 3 && segs[0] == "users" && segs[2] == "personal-token":
		return a.servePersonalToken(w, r, app, segs[1])
	case len(segs) == 3 && segs[0] == "users" && segs[2] == "grants":
		return a.serveUserGrants(w, r, app, segs[1])
	case len(segs) == 4 && segs[0] == "users" && segs[2] == "grants":
		return a.serveUserGrant(w, r, app, segs[1], segs[3])
	case len(segs) == 2 && segs[0] == "users":
		return a.serveUser(w, r, app, segs[1])
	}
	return notFound(r)
}

// pathSegments splits the escaped path after adminBase into unescaped
// segments; ok is false for an empty or undecodable segment.
func pathSegments(escaped string) ([]string, bool) {
	rest, found := strings.CutPrefix(escaped, adminBase)
	if !found || rest == "" {
		return nil, false
	}
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		v, err := url.PathUnescape(s)
		if err != nil || v == "" {
			return nil, false
		}
		segs[i] = v
	}
	return segs, true
}

// startedApp returns the tokengate app once its store is open: this
// config's, after the handlers' wait for it (App.awaitStart). Caddy puts
// a new config's admin routes in place before it starts the config, and
// leaves them there if the config fails; the routes then work on the app
// of the config still running. No app at all is 404; none started, 503.
func (a *AdminAPI) startedApp(r *http.Request) (*App, error) {
	if a.app != nil && a.app.awaitStart(r.Context()) {
		return a.app, nil
	}
	if app, err := caddy.ActiveContext().AppIfConfigured("tokengate"); err == nil {
		if running := app.(*App); running != a.app && running.awaitStart(r.Context()) {
			return running, nil
		}
	} else if a.app == nil {
		return nil, apiError(http.StatusNotFound, errors.New("the running config has no tokengate app"))
	}
	return nil, apiError(http.StatusServiceUnavailable, errors.New("tokengate's store is not open: the config has not started, or its store could not be opened"))
}

// allowMethods answers 405 unless r's method is one of methods.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) error {
	for _, m := range methods {
		if r.Method == m {
			return nil
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	return apiError(http.StatusMethodNotAllowed, fmt.Errorf("method not allowed: %s", r.Method))
}

// maxAdminBody is the largest request body the admin routes read, as the
// endpoints do.
const maxAdminBody = maxBodyBytes

// decodeBody reads r's JSON body into v: at most maxAdminBody (413
// beyond), one JSON value with no unknown fields (400 otherwise).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return apiError(http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", maxAdminBody))
	}
	if err != nil {
		return apiError(http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err))
	}
	if err := decodeJSON(body, v); err != nil {
		return apiError(http.StatusBadRequest, err)
	}
	return nil
}

// decodeJSON reads body, one JSON value with no unknown fields, into v.
func decodeJSON(body []byte, v any) error {
	// encoding/json would turn invalid UTF-8 into U+FFFD silently.
	if !utf8.Valid(body) {
		return errors.New("invalid JSON body: not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errors.New("invalid JSON body: more than one JSON value")
	}
	return nil
}

// skipBody refuses a body above maxAdminBody on a route that reads none,
// as the endpoints do, and ignores any other.
func skipBody(w http.ResponseWriter, r *http.Request) error {
	_, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxAdminBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return apiError(http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", maxAdminBody))
	}
	return nil
}

// answer writes v as JSON with status. Answers may carry a secret once,
// so none is cached.
func answer(w http.ResponseWriter, status int, v any) error {
	setNoStore(w)
	return writeJSON(w, status, v)
}

// apiError is Caddy's admin error: {"error":"<message>"} with status.
func apiError(status int, err error) error {
	return caddy.APIError{HTTPStatus: status, Err: err}
}

// storeError answers a failure of the store: 503, with the cause in
// Caddy's log of the request, not in the answer.
func (a *AdminAPI) storeError(w http.ResponseWriter, err error) error {
	a.logger.Error("tokengate admin: store call failed", zap.Error(err))
	w.Header().Set("Retry-After", retryAfterSeconds)
	return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err, Message: "the token store cannot be reached"}
}

func notFound(r *http.Request) error {
	return apiError(http.StatusNotFound, fmt.Errorf("resource not found: %s", r.URL.Path))
}

// Interface guards
var (
	_ caddy.AdminRouter = (*AdminAPI)(nil)
	_ caddy.Provisioner = (*AdminAPI)(nil)
)
