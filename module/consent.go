package module

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// pageParamNames are the authorization request parameters of the browser
// flow (RFC 6749 4.1.1, RFC 7636 4.3, OpenID Connect Core 3.1.2.1), in the
// order the consent form carries them and the CSRF MAC covers them.
// prompt is not among them: it is read from the GET alone, and the
// consent form is the page it may ask for.
var pageParamNames = [...]string{
	"client_id", "redirect_uri", "response_type", "scope", "state",
	"code_challenge", "code_challenge_method", "nonce",
}

// pageParams are the parameters of one browser-flow authorization request.
// repeated names the first parameter given more than once, which RFC 6749
// 3.1 forbids.
type pageParams struct {
	ClientID, RedirectURI, ResponseType, Scope, State string
	CodeChallenge, CodeChallengeMethod, Nonce         string
	repeated                                          string
	// Resources are the resource indicators (RFC 8707 2), the one
	// parameter that may be given more than once.
	Resources []string
}

// readPageParams takes the request parameters from v (the query string of
// a GET, the form of a POST). Unknown parameters are ignored (RFC 6749
// 3.1).
func readPageParams(v url.Values) pageParams {
	var p pageParams
	fields := p.fields()
	for i, name := range pageParamNames {
		vals := v[name]
		if len(vals) > 1 && p.repeated == "" {
			p.repeated = name
		}
		if len(vals) > 0 {
			*fields[i] = vals[0]
		}
	}
	p.Resources = v["resource"]
	return p
}

func (p *pageParams) fields() [len(pageParamNames)]*string {
	return [...]*string{
		&p.ClientID, &p.RedirectURI, &p.ResponseType, &p.Scope, &p.State,
		&p.CodeChallenge, &p.CodeChallengeMethod, &p.Nonce,
	}
}

// values returns the parameters in pageParamNames' order.
func (p pageParams) values() [len(pageParamNames)]string {
	var out [len(pageParamNames)]string
	for i, f := range p.fields() {
		out[i] = *f
	}
	return out
}

// request is the AuthServer's view of the parameters, for user (the
// user's IdP claims are the caller's to add).
func (p pageParams) request(user string) oauth.AuthorizeRequest {
	return oauth.AuthorizeRequest{
		ClientID:            p.ClientID,
		RedirectURI:         p.RedirectURI,
		ResponseType:        p.ResponseType,
		Scope:               p.Scope,
		State:               p.State,
		CodeChallenge:       p.CodeChallenge,
		CodeChallengeMethod: p.CodeChallengeMethod,
		UserID:              user,
		Nonce:               p.Nonce,
		Resources:           p.Resources,
	}
}

// validatePage checks the parameters. A bad client or redirect URI (also when
// given twice) is not redirectable; a repeated other parameter is an
// invalid_request sent to the client, as RFC 6749 4.1.2.1 says.
func (e *Endpoints) validatePage(r *http.Request, p pageParams) (*oauth.Client, []string, *oauth.Error, bool) {
	if p.repeated == "client_id" || p.repeated == "redirect_uri" {
		return nil, nil, oauth.ErrInvalidRequest.WithDescription(p.repeated + " is given more than once"), false
	}
	c, scopes, oerr, redirectable := e.app.auth.ValidateAuthorize(r.Context(), p.request(""))
	if oerr != nil {
		return c, nil, oerr, redirectable
	}
	if p.repeated != "" {
		return c, nil, oauth.ErrInvalidRequest.WithDescription(p.repeated + " is given more than once"), true
	}
	return c, scopes, nil, false
}

// pageRedirect answers 302 to the client's redirect URI with params
// added to its query, keeping the registered URI's own query parameters
// (RFC 6749 3.1.2), and the issuer's iss (RFC 9207 2). The response is not
// cached: it may carry a code.
func (e *Endpoints) pageRedirect(w http.ResponseWriter, redirectURI string, params ...string) error {
	params = append(params, "iss", e.app.Issuer)
	w.Header().Set("Location", withQueryParams(redirectURI, params...))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusFound)
	return nil
}

// pageRedirectError sends an authorization error response (RFC 6749 4.1.2.1)
// to the client: error, error_description, state and iss.
func (e *Endpoints) pageRedirectError(w http.ResponseWriter, p pageParams, oerr *oauth.Error) error {
	params := []string{"error", oerr.Code}
	if oerr.Description != "" {
		params = append(params, "error_description", oerr.Description)
	}
	if p.State != "" {
		params = append(params, "state", p.State)
	}
	return e.pageRedirect(w, p.RedirectURI, params...)
}

// errNoBrowserUser is a browser request with no user JWT at all.
var errNoBrowserUser = errors.New("no user session")

// browserUser authenticates the end user of the browser flow (GET
// authorize): the JWT in Authorization: Bearer, or else in the users.cookie
// cookie, verified like every user JWT.
func (e *Endpoints) browserUser(r *http.Request) (string, error) {
	u, err := e.browserIdentity(r)
	return u.ID, err
}

// browserIdentity is browserUser returning the verified claims too.
func (e *Endpoints) browserIdentity(r *http.Request) (oauth.VerifiedUser, error) {
	if e.app.users == nil {
		return oauth.VerifiedUser{}, errNoBrowserUser
	}
	var jwtText string
	if len(r.Header["Authorization"]) > 0 {
		t, err := oauth.BearerToken(r.Header["Authorization"])
		if err != nil {
			return oauth.VerifiedUser{}, err
		}
		jwtText = t
	} else if name := e.app.Users.Cookie; name != "" {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			jwtText = c.Value
		}
	}
	if jwtText == "" {
		return oauth.VerifiedUser{}, errNoBrowserUser
	}
	return e.app.users.VerifyUser(r.Context(), jwtText)
}

// loginRedirectURL is where a browser with no valid session goes:
// users.login_url with return_to set to the absolute URL of this request
// (docs/reference.md), built from the issuer's scheme and host and the request
// URI as the client sent it, before any rewrite. ok is false when no
// login_url is configured.
func (e *Endpoints) loginRedirectURL(r *http.Request) (string, bool) {
	if e.app.Users == nil || e.app.Users.LoginURL == "" {
		return "", false
	}
	requestURI := r.RequestURI
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.RequestURI != "" {
		requestURI = orig.RequestURI
	}
	if requestURI == "" {
		requestURI = r.URL.RequestURI()
	}
	origin := strings.TrimRight(e.app.Issuer, "/")
	if u, err := url.Parse(e.app.Issuer); err == nil && u.Scheme != "" && u.Host != "" {
		origin = u.Scheme + "://" + u.Host
	}
	// The login page's own fragment (a client-side route) is kept.
	login, frag, hasFrag := strings.Cut(e.app.Users.LoginURL, "#")
	login = withQueryParams(login, "return_to", origin+requestURI)
	if hasFrag {
		login += "#" + frag
	}
	return login, true
}
