package module

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// csrfField is the consent form's CSRF token field.
const csrfField = "csrf_token"

// serveAuthorizePage is the browser flow's GET (docs/flows.md): the
// user is signed in (or sent to log in), the request validated, and then
// either a code issued at once, when the user has already consented to
// every requested scope, or the consent page shown. With openid on,
// prompt=none shows no page (OpenID Connect Core 3.1.2.6: login_required,
// consent_required) and prompt=consent or login always shows the consent
// page.
func (e *Endpoints) serveAuthorizePage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if oerr := checkValues(q); oerr != nil {
		return e.writeErrorPage(w, http.StatusBadRequest, "Invalid request", oerr.Description+".")
	}
	p := readPageParams(q)
	pr, promptErr := e.app.readPrompt(q["prompt"])
	user, err := e.browserIdentity(r)
	if err != nil {
		if errors.Is(err, oauth.ErrUserKeysUnavailable) {
			return e.userKeysUnavailablePage(w, err)
		}
		if pr.none {
			// No page may be shown, the login page included.
			if _, _, oerr, redirectable := e.validatePage(r, p); oerr != nil {
				return e.pageAuthorizeFailed(w, p, oerr, redirectable)
			}
			return e.pageRedirectError(w, p, oauth.ErrLoginRequired.WithDescription("the user is not signed in"))
		}
		if login, ok := e.loginRedirectURL(r); ok {
			w.Header().Set("Location", login)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Referrer-Policy", "no-referrer")
			w.WriteHeader(http.StatusFound)
			return nil
		}
		return e.writeErrorPage(w, http.StatusUnauthorized, "Sign-in required",
			"You need to be signed in to authorize an application. Sign in and try again.")
	}
	client, scopes, oerr, redirectable := e.validatePage(r, p)
	if oerr != nil {
		return e.pageAuthorizeFailed(w, p, oerr, redirectable)
	}
	if promptErr != nil {
		return e.pageRedirectError(w, p, promptErr)
	}
	need := true
	if !pr.consent {
		need, err = e.app.auth.NeedsConsent(r.Context(), user.ID, client.ID, scopes)
		if err != nil {
			e.logger.Error("reading consent failed", zap.String("client_id", client.ID), zap.Error(err))
			return e.pageRedirectError(w, p, oauth.ErrTemporarilyUnavailable)
		}
	}
	if !need {
		return e.issuePageCode(w, r, p, user)
	}
	if pr.none {
		return e.pageRedirectError(w, p, oauth.ErrConsentRequired.WithDescription("the user has not consented to every requested scope"))
	}
	key, err := e.app.auth.DeriveKey(r.Context(), consentKeyPurpose)
	if err != nil {
		e.logger.Error("reading the server key failed", zap.Error(err))
		return e.pageRedirectError(w, p, oauth.ErrTemporarilyUnavailable)
	}
	return e.writeConsentPage(w, r, client, scopes, user.ID, p,
		consentCSRFToken(key, user.ID, p, time.Now().Add(consentCSRFTTL)))
}

// serveConsentDecision handles the consent form's POST (docs/reference.md):
// the user is authenticated again, the CSRF token checked against the user
// and every request parameter, the request validated again, and then Approve
// issues a code (recording the consent) and Deny answers access_denied, both
// as redirects to the client.
func (e *Endpoints) serveConsentDecision(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r)
	if errors.Is(err, errBodyTooLarge) {
		return e.writeErrorPage(w, http.StatusRequestEntityTooLarge, "Request too large", "The form is larger than allowed.")
	}
	if err != nil {
		return e.writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return e.writeErrorPage(w, http.StatusUnsupportedMediaType, "Unsupported request",
			"The authorization endpoint takes a form (application/x-www-form-urlencoded) or JSON.")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return e.writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
	}
	if oerr := checkValues(form); oerr != nil {
		return e.writeErrorPage(w, http.StatusBadRequest, "Invalid request", oerr.Description+".")
	}
	user, err := e.browserIdentity(r)
	if err != nil {
		if errors.Is(err, oauth.ErrUserKeysUnavailable) {
			return e.userKeysUnavailablePage(w, err)
		}
		return e.writeErrorPage(w, http.StatusUnauthorized, "Sign-in required",
			"Your session has ended. Sign in and start the authorization again.")
	}
	p := readPageParams(form)
	key, err := e.app.auth.DeriveKey(r.Context(), consentKeyPurpose)
	if err != nil {
		e.logger.Error("reading the server key failed", zap.Error(err))
		w.Header().Set("Retry-After", retryAfterSeconds)
		return e.writeErrorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable",
			"The authorization server cannot be reached right now. Please try again in a moment.")
	}
	if len(form[csrfField]) != 1 || !checkConsentCSRF(key, user.ID, p, form[csrfField][0], time.Now()) {
		return e.writeErrorPage(w, http.StatusForbidden, "This form has expired",
			"The consent form is invalid or has expired. Go back to the application and start again.")
	}
	_, _, oerr, redirectable := e.validatePage(r, p)
	if oerr != nil {
		return e.pageAuthorizeFailed(w, p, oerr, redirectable)
	}
	switch form.Get("decision") {
	case "approve":
		return e.issuePageCode(w, r, p, user)
	case "deny":
		e.app.audit.Audit(r.Context(), oauth.AuditEvent{Message: oauth.AuditAuthorizationDenied, UserID: user.ID, ClientID: p.ClientID, Scopes: strings.Fields(p.Scope)})
		return e.pageRedirectError(w, p, oauth.ErrAccessDenied.WithDescription("the user denied the request"))
	}
	return e.writeErrorPage(w, http.StatusBadRequest, "Invalid request", "Choose Approve or Deny.")
}

// issuePageCode records the consent, issues a code and redirects to the
// client with code, state and iss (RFC 6749 4.1.2, RFC 9207). The code
// keeps the user's claims that its scopes release.
func (e *Endpoints) issuePageCode(w http.ResponseWriter, r *http.Request, p pageParams, user oauth.VerifiedUser) error {
	req := p.request(user.ID)
	req.Claims = e.app.userClaims(user, p.Scope)
	code, oerr, redirectable := e.app.auth.Authorize(r.Context(), req)
	if oerr != nil {
		return e.pageAuthorizeFailed(w, p, oerr, redirectable)
	}
	return e.pageRedirect(w, p.RedirectURI, "code", code, "state", p.State)
}

// pageAuthorizeFailed answers an invalid request: to the client when the error
// is redirectable, else (a bad client or redirect URI) with an HTML page,
// never a redirect (RFC 6749 4.1.2.1).
func (e *Endpoints) pageAuthorizeFailed(w http.ResponseWriter, p pageParams, oerr *oauth.Error, redirectable bool) error {
	if redirectable {
		return e.pageRedirectError(w, p, oerr)
	}
	if oerr.Status == http.StatusServiceUnavailable {
		// The client could not be looked up: nothing is known to be wrong
		// with the request.
		w.Header().Set("Retry-After", retryAfterSeconds)
		return e.writeErrorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable",
			"The authorization server cannot be reached right now. Please try again in a moment.")
	}
	msg := "The application sent an invalid authorization request"
	if oerr.Description != "" {
		msg += ": " + oerr.Description
	}
	return e.writeErrorPage(w, http.StatusBadRequest, "Invalid authorization request", msg+".")
}

// userKeysUnavailablePage answers 503 when the identity provider's keys
// cannot be fetched to verify the user's JWT.
func (e *Endpoints) userKeysUnavailablePage(w http.ResponseWriter, err error) error {
	e.logger.Warn("cannot verify the user's JWT", zap.Error(err))
	w.Header().Set("Retry-After", retryAfterSeconds)
	return e.writeErrorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable",
		"Your sign-in cannot be checked right now. Please try again in a moment.")
}

// writeConsentPage renders the consent page (docs/reference.md) with the
// request parameters and csrf as hidden fields.
func (e *Endpoints) writeConsentPage(w http.ResponseWriter, r *http.Request, c *oauth.Client, scopes []string, user string, p pageParams, csrf string) error {
	nonce := newCSPNonce()
	data := ConsentPage{
		Nonce:         nonce,
		ClientID:      c.ID,
		ClientName:    c.Name,
		ClientInitial: clientInitial(c.Name),
		UserID:        user,
		Action:        e.consentFormAction(r),
		RedirectURI:   p.RedirectURI,
		RedirectHost:  pageURIHost(p.RedirectURI),
		Issuer:        e.app.Issuer,
		IssuerHost:    pageURIHost(e.app.Issuer),
	}
	granted := e.consentGrantedScopes(r.Context(), user, c.ID)
	for _, s := range scopes {
		data.Scopes = append(data.Scopes, ConsentScope{
			Name:        s,
			Description: e.app.auth.ScopeDescription(s),
			Granted:     slices.Contains(granted, s),
		})
	}
	for i, v := range p.values() {
		if v != "" {
			data.Hidden = append(data.Hidden, HiddenField{Name: pageParamNames[i], Value: v})
		}
	}
	for _, res := range p.Resources {
		data.Hidden = append(data.Hidden, HiddenField{Name: "resource", Value: res})
	}
	data.Hidden = append(data.Hidden, HiddenField{Name: csrfField, Value: csrf})
	return e.writeHTMLPage(w, http.StatusOK, e.consentPage, nonce, data)
}

// consentFormAction is the path the consent form posts to: the path this
// request came in on, before any rewrite (handle_path, uri strip_prefix),
// so that the POST reaches this handler again the same way.
func (e *Endpoints) consentFormAction(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil && orig.URL.Path != "" {
		return orig.URL.EscapedPath()
	}
	return e.Authorize
}

// consentGrantedScopes returns the scopes user has already consented to for
// clientID, so that the consent page can tell them from the new ones (consent
// is asked for new scopes only); nil when the store cannot say.
func (e *Endpoints) consentGrantedScopes(ctx context.Context, user, clientID string) []string {
	if e.app.auth.Store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	granted, err := e.app.auth.Store.GrantedScopes(ctx, user, clientID)
	if err != nil {
		e.logger.Warn("reading granted scopes failed", zap.String("client_id", clientID), zap.Error(err))
		return nil
	}
	return granted
}

// clientInitial is the first letter of name, upper-cased, for the client's
// placeholder logo.
func clientInitial(name string) string {
	r, _ := utf8.DecodeRuneInString(strings.TrimSpace(name))
	if r == utf8.RuneError {
		return "?"
	}
	return string(unicode.ToUpper(r))
}

// pageURIHost is a URI's host, or its scheme when it has none (a private-use
// URI scheme, RFC 8252 7.1).
func pageURIHost(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	if u.Host != "" {
		return u.Host
	}
	return u.Scheme
}
