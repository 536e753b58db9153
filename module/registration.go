package module

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// Registration limits (docs/reference.md): at most maxRegistrations
// clients registered from one address within registrationWindow, on each
// instance.
const (
	maxRegistrations   = 10
	registrationWindow = time.Hour
)

// registrationLimiters count registrations per address, one limiter per
// store, so that a reload does not reset them.
var registrationLimiters = &limiterPool{m: map[string]*failureLimiter{}, make: func() *failureLimiter {
	return newWindowLimiter(time.Now, maxLimitedAddrs, maxRegistrations, registrationWindow)
}}

// The grant and response types a client may register (RFC 7591 2): those
// of the code flow, the only flow tokengate serves.
var (
	registrableResponseTypes = []string{"code"}
	registrableAuthMethods   = []string{"none", "client_secret_basic", "client_secret_post"}
)

// resolveRegistrationToken expands the initial access token's
// placeholders and returns its SHA-256, or nil when registration needs
// none.
func (a *App) resolveRegistrationToken(repl *caddy.Replacer) ([]byte, error) {
	if a.Registration == nil || a.Registration.InitialAccessToken == "" {
		return nil, nil
	}
	token, err := expandPlaceholders(repl, "registration token", a.Registration.InitialAccessToken)
	if err != nil {
		return nil, fmt.Errorf("tokengate: %w", err)
	}
	// A bearer token is token68 (RFC 6750 2.1): no other could be sent.
	if t, err := oauth.BearerToken([]string{"Bearer " + token}); err != nil || t != token {
		return nil, fmt.Errorf("tokengate: registration token must be one run of the characters A-Z a-z 0-9 - . _ ~ + / =")
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:], nil
}

// registrationPath reports whether r is for the registration endpoint,
// which is off while its path is empty: the path itself (id empty), or
// the client configuration endpoint of one client, the path followed by
// /<client_id> (RFC 7592 2).
func (e *Endpoints) registrationPath(r *http.Request) (id string, ok bool) {
	if e.Registration == "" {
		return "", false
	}
	if r.URL.Path == e.Registration {
		return "", true
	}
	return segmentBelow(r, e.Registration, "")
}

// registrationError is an RFC 7591 3.2.2 error: invalid_redirect_uri or
// invalid_client_metadata, with a description naming the culprit.
type registrationError struct {
	code, description string
}

func badMetadata(format string, args ...any) *registrationError {
	return &registrationError{"invalid_client_metadata", fmt.Sprintf(format, args...)}
}

// clientMetadata is what a registration or update request says of a
// client (RFC 7591 2), as tokengate keeps it.
type clientMetadata struct {
	spec oauth.ClientSpec
	// clientID and clientSecret are those an update repeats (RFC 7592
	// 2.2); secretGiven says the body had a client_secret.
	clientID, clientSecret string
	secretGiven            bool
}

// parseClientMetadata reads a JSON object of client metadata. Fields
// tokengate does not know or keep are ignored (RFC 7591 2); a field it
// knows with a wrong type or value is refused, naming it. A field that is
// absent or null takes its default (RFC 7592 2.2: an update that leaves
// one out asks for it to go).
func (a *App) parseClientMetadata(r *http.Request, body []byte) (clientMetadata, *registrationError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return clientMetadata{}, badMetadata("the body must be application/json")
	}
	if !utf8.Valid(body) {
		return clientMetadata{}, badMetadata("the body is not valid UTF-8")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return clientMetadata{}, badMetadata("the body must be one JSON object")
	}
	var m clientMetadata
	var rerr *registrationError
	str := func(name string) string {
		var s *string
		if raw, ok := fields[name]; ok && rerr == nil {
			if json.Unmarshal(raw, &s) != nil {
				rerr = badMetadata("%s must be a string", name)
			}
		}
		if s == nil {
			return ""
		}
		if len(*s) > maxParamBytes && rerr == nil {
			rerr = badMetadata("%s is longer than %d bytes", name, maxParamBytes)
		}
		return *s
	}
	boolean := func(name string) bool {
		var v *bool
		if raw, ok := fields[name]; ok && rerr == nil {
			if json.Unmarshal(raw, &v) != nil {
				rerr = badMetadata("%s must be true or false", name)
			}
		}
		return v != nil && *v
	}
	list := func(name string) []string {
		var l []string
		if raw, ok := fields[name]; ok && rerr == nil {
			if json.Unmarshal(raw, &l) != nil {
				rerr = badMetadata("%s must be an array of strings", name)
			}
		}
		for _, v := range l {
			if len(v) > maxParamBytes && rerr == nil {
				rerr = badMetadata("a value of %s is longer than %d bytes", name, maxParamBytes)
			}
		}
		return dedupe(l)
	}
	redirects := list("redirect_uris")
	name := str("client_name")
	method := str("token_endpoint_auth_method")
	grants := list("grant_types")
	responses := list("response_types")
	scope := str("scope")
	dpopBound := boolean("dpop_bound_access_tokens")
	m.clientID = str("client_id")
	m.clientSecret = str("client_secret")
	_, m.secretGiven = fields["client_secret"]
	if rerr != nil {
		return clientMetadata{}, rerr
	}

	if len(grants) == 0 {
		grants = oauth.DefaultGrantTypes()
	}
	for _, g := range grants {
		if !slices.Contains(oauth.KnownGrantTypes(), g) {
			return clientMetadata{}, badMetadata("grant_types: %q is not supported (%s are)", printable(g), strings.Join(oauth.KnownGrantTypes(), ", "))
		}
	}
	if err := oauth.CheckGrantTypes(grants, method == "none"); err != nil {
		return clientMetadata{}, badMetadata("grant_types: %v", err)
	}
	if !slices.ContainsFunc(grants, issuesTokens) {
		return clientMetadata{}, badMetadata("grant_types must include authorization_code, client_credentials or %s: refresh_token alone issues nothing", oauth.GrantTypeDeviceCode)
	}
	if len(redirects) == 0 && slices.Contains(grants, oauth.GrantTypeAuthorizationCode) {
		return clientMetadata{}, &registrationError{"invalid_redirect_uri", "redirect_uris must list at least one redirect URI"}
	}
	for _, u := range redirects {
		if err := checkRedirectURI(u); err != nil {
			return clientMetadata{}, &registrationError{"invalid_redirect_uri", err.Error()}
		}
	}
	if err := checkClientName(name); err != nil {
		return clientMetadata{}, badMetadata("client_name: %v", err)
	}
	if method == "" {
		method = "client_secret_basic" // RFC 7591 2
	}
	if !slices.Contains(registrableAuthMethods, method) {
		return clientMetadata{}, badMetadata("token_endpoint_auth_method %q is not supported (use none, client_secret_basic or client_secret_post)", printable(method))
	}
	for _, rt := range responses {
		if !slices.Contains(registrableResponseTypes, rt) {
			return clientMetadata{}, badMetadata("response_types: %q is not supported (code is)", printable(rt))
		}
	}
	scopes := dedupe(strings.Fields(scope))
	for _, s := range scopes {
		if !a.declares(s) {
			return clientMetadata{}, badMetadata("scope: %q is not a scope of this server", printable(s))
		}
	}
	if len(scopes) == 0 {
		scopes = a.scopeNames()
	}
	m.spec = oauth.ClientSpec{
		Name:         name,
		RedirectURIs: redirects,
		Scopes:       scopes,
		Public:       method == "none",
		GrantTypes:   grants,

		DPoPBoundAccessTokens: dpopBound,
	}
	return m, nil
}

// registrationResponse is the client information response (RFC 7591
// 3.2.1, RFC 7592 3): the metadata as stored, and the credentials.
type registrationResponse struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt   int64  `json:"client_secret_expires_at"`
	RegistrationAccessToken string `json:"registration_access_token"`
	RegistrationClientURI   string `json:"registration_client_uri"`

	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	// DPoPBoundAccessTokens is the client's dpop required (RFC 9449
	// 5.2), shown only when true.
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
}

// newRegistrationResponse describes rec. The store does not keep which
// of the two secret methods a confidential client named, since the token
// endpoint takes both from every such client: it is always answered as
// client_secret_basic, the default (docs/decisions.md).
func (e *Endpoints) newRegistrationResponse(rec oauth.StoredClient, secret, token string) registrationResponse {
	method := "client_secret_basic"
	if rec.Public() {
		method = "none"
	}
	return registrationResponse{
		ClientID:                rec.ID,
		ClientSecret:            secret,
		ClientIDIssuedAt:        rec.CreatedAt.Unix(),
		RegistrationAccessToken: token,
		RegistrationClientURI:   strings.TrimSuffix(e.app.Issuer, "/") + e.Registration + "/" + url.PathEscape(rec.ID),
		ClientName:              rec.Name,
		RedirectURIs:            append([]string{}, rec.RedirectURIs...),
		TokenEndpointAuthMethod: method,
		GrantTypes:              append([]string{}, rec.GrantTypes...),
		ResponseTypes:           slices.Clone(registrableResponseTypes),
		Scope:                   strings.Join(rec.Scopes, " "),
		DPoPBoundAccessTokens:   rec.DPoPBoundAccessTokens,
	}
}

// serveRegistration is the registration endpoint (RFC 7591 3) on the
// registration path, and the client configuration endpoint (RFC 7592 2)
// on <registration>/<client_id>. Every answer is no-store (RFC 7591
// 3.2.1).
func (e *Endpoints) serveRegistration(w http.ResponseWriter, r *http.Request) error {
	setNoStore(w)
	id, _ := e.registrationPath(r)
	allow := []string{http.MethodPost}
	if id != "" {
		allow = []string{http.MethodGet, http.MethodPut, http.MethodDelete}
	}
	if !slices.Contains(allow, r.Method) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "method not allowed"})
	}
	body, err := readBody(w, r)
	if err != nil {
		return writeParamsError(w, err)
	}
	if id == "" {
		return e.registerClient(w, r, body)
	}
	return e.serveClientConfiguration(w, r, id, body)
}

// registerClient is POST on the registration path (RFC 7591 3.1).
func (e *Endpoints) registerClient(w http.ResponseWriter, r *http.Request, body []byte) error {
	app := e.app
	if want := app.registrationTokenHash; want != nil {
		token, err := oauth.BearerToken(r.Header["Authorization"])
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], want) != 1 || err != nil {
			return denyRegistrationToken(w, !errors.Is(err, oauth.ErrNoCredentials), "registration needs the initial access token as a bearer token")
		}
	}
	addr := remoteAddr(r)
	limiter := registrationLimiters.get(app.stateKey)
	if wait, ok := limiter.take(addr); !ok {
		app.metrics.rateLimit()
		w.Header().Set("Retry-After", retryAfter(wait))
		return writeJSON(w, http.StatusTooManyRequests, oauthError{"temporarily_unavailable", "too many registrations from this address; retry later"})
	}
	m, rerr := app.parseClientMetadata(r, body)
	if rerr != nil {
		limiter.giveBack(addr)
		return writeJSON(w, http.StatusBadRequest, oauthError{rerr.code, rerr.description})
	}
	rec, secret, token, err := app.admin.Register(r.Context(), m.spec)
	if err != nil {
		limiter.giveBack(addr)
		return e.storeUnavailable(w, err)
	}
	return writeJSON(w, http.StatusCreated, e.newRegistrationResponse(rec, secret, token))
}

// serveClientConfiguration is GET, PUT and DELETE on a registered
// client's configuration endpoint (RFC 7592 2), with its registration
// access token as the bearer token. A wrong or missing token, and a
// client that does not exist or did not register itself, get the same
// 401 (RFC 7592 2.1).
func (e *Endpoints) serveClientConfiguration(w http.ResponseWriter, r *http.Request, id string, body []byte) error {
	app := e.app
	ctx := r.Context()
	token, err := oauth.BearerToken(r.Header["Authorization"])
	if err != nil {
		return denyRegistrationToken(w, !errors.Is(err, oauth.ErrNoCredentials), "send the registration access token as a bearer token")
	}
	answer := func(err error) error {
		if errors.Is(err, oauth.ErrInvalidRegistrationToken) || errors.Is(err, oauth.ErrNotFound) {
			return denyRegistrationToken(w, true, "the registration access token is not valid for this client")
		}
		return e.storeUnavailable(w, err)
	}
	switch r.Method {
	case http.MethodGet:
		rec, err := app.admin.Registered(ctx, id, token)
		if err != nil {
			return answer(err)
		}
		return writeJSON(w, http.StatusOK, e.newRegistrationResponse(rec, "", token))
	case http.MethodPut:
		current, err := app.admin.Registered(ctx, id, token)
		if err != nil {
			return answer(err)
		}
		m, rerr := app.parseClientMetadata(r, body)
		if rerr == nil {
			rerr = checkUpdatedMetadata(current, m)
		}
		if rerr != nil {
			return writeJSON(w, http.StatusBadRequest, oauthError{rerr.code, rerr.description})
		}
		rec, err := app.admin.UpdateRegistered(ctx, id, token, m.spec)
		if err != nil {
			return answer(err)
		}
		return writeJSON(w, http.StatusOK, e.newRegistrationResponse(rec, "", token))
	default: // DELETE (RFC 7592 2.3)
		if err := app.admin.DeleteRegistered(ctx, id, token); err != nil {
			return answer(err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// checkUpdatedMetadata applies RFC 7592 2.2 to an update of the client
// current: it names the client by its id, repeats its secret if at all,
// and stays public or confidential as it was.
func checkUpdatedMetadata(current oauth.StoredClient, m clientMetadata) *registrationError {
	if m.clientID != current.ID {
		return badMetadata("client_id must be given and be %q, the client of this URL", current.ID)
	}
	if m.secretGiven && !current.MatchesSecret(m.clientSecret) {
		return badMetadata("client_secret is not the client's secret; it cannot change here")
	}
	if m.spec.Public != current.Public() {
		return badMetadata("token_endpoint_auth_method cannot change between none and a client secret method; register a new client instead")
	}
	return nil
}

// denyRegistrationToken answers 401 invalid_token (RFC 6750 3.1): a
// missing, malformed or wrong initial or registration access token.
// sent says whether the request carried one at all.
func denyRegistrationToken(w http.ResponseWriter, sent bool, description string) error {
	challenge := realm
	if sent {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	return writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_token", description})
}

// issuesTokens reports whether grant type g starts a grant, as every grant
// type but refresh_token does.
func issuesTokens(g string) bool { return g != oauth.GrantTypeRefreshToken }
