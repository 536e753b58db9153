package module

import (
	"encoding/base64"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// userCodeField is the verification page's field (and query parameter,
// RFC 8628 3.3.1) for the user code.
const userCodeField = "user_code"

// serveDevicePage is the verification page (RFC 8628 3.3, docs/devices.md)
// for a signed-in user, found as the browser flow finds one: GET shows a
// form for the code, or with ?user_code= goes straight on; a POST of a
// code shows the consent page for that device's client and scopes; a
// POST of the consent page's Approve or Deny, CSRF-checked, decides and
// says so.
func (e *Endpoints) serveDevicePage(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet:
		if r.URL.Query().Has(userCodeField) {
			// The user code is a code: it stays out of the access log.
			rec := &answerRecorder{ResponseWriter: w}
			defer func() { e.logWithoutUserCode(rec, r) }()
			w = rec
		}
		query := r.URL.Query()
		if oerr := checkValues(query); oerr != nil {
			return e.writeErrorPage(w, http.StatusBadRequest, "Invalid request", oerr.Description+".")
		}
		user, ok, err := e.deviceUser(w, r)
		if !ok {
			return err
		}
		typed := query.Get(userCodeField)
		if typed == "" {
			return e.writeDeviceForm(w, r, http.StatusOK, user, "", "")
		}
		return e.showDeviceConsent(w, r, user, typed)
	case http.MethodPost:
		return e.serveDevicePost(w, r)
	}
	w.Header().Set("Allow", "GET, POST")
	return e.writeErrorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Open this page in your browser.")
}

// deviceUser is the signed-in user of the verification page's GET. When
// there is none it answers as the browser flow does, and ok is false: a
// redirect to login_url with return_to (the page's URL, user code and
// all), 401 without login_url, or 503 when the user's JWT cannot be
// checked.
func (e *Endpoints) deviceUser(w http.ResponseWriter, r *http.Request) (user string, ok bool, err error) {
	user, err = e.browserUser(r)
	if err == nil {
		return user, true, nil
	}
	if errors.Is(err, oauth.ErrUserKeysUnavailable) {
		return "", false, e.userKeysUnavailablePage(w, err)
	}
	if login, ok := e.loginRedirectURL(r); ok {
		w.Header().Set("Location", login)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.WriteHeader(http.StatusFound)
		return "", false, nil
	}
	return "", false, e.writeErrorPage(w, http.StatusUnauthorized, "Sign-in required",
		"You need to be signed in to connect a device. Sign in and try again.")
}

// serveDevicePost handles the verification page's forms: the code form,
// and the consent page's decision.
func (e *Endpoints) serveDevicePost(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r)
	if errors.Is(err, errBodyTooLarge) {
		return e.writeErrorPage(w, http.StatusRequestEntityTooLarge, "Request too large", "The form is larger than allowed.")
	}
	if err != nil {
		return e.writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return e.writeErrorPage(w, http.StatusUnsupportedMediaType, "Unsupported request",
			"This page takes a form (application/x-www-form-urlencoded).")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || len(form[userCodeField]) > 1 || len(form["decision"]) > 1 {
		return e.writeErrorPage(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
	}
	if oerr := checkValues(form); oerr != nil {
		return e.writeErrorPage(w, http.StatusBadRequest, "Invalid request", oerr.Description+".")
	}
	user, err := e.browserUser(r)
	if err != nil {
		if errors.Is(err, oauth.ErrUserKeysUnavailable) {
			return e.userKeysUnavailablePage(w, err)
		}
		return e.writeErrorPage(w, http.StatusUnauthorized, "Sign-in required",
			"Your session has ended. Sign in and enter the code again.")
	}
	typed := form.Get(userCodeField)
	decision, decided := form["decision"]
	if !decided {
		if typed == "" {
			return e.writeDeviceForm(w, r, http.StatusBadRequest, user, "", "Enter the code your device shows.")
		}
		return e.showDeviceConsent(w, r, user, typed)
	}

	key, err := e.app.auth.DeriveKey(r.Context(), consentKeyPurpose)
	if err != nil {
		return e.deviceUnavailable(w, "reading the server key failed", err)
	}
	code, valid := oauth.NormalizeUserCode(typed)
	if !valid || len(form[csrfField]) != 1 || !checkDeviceCSRF(key, user, oauth.FormatUserCode(code), form[csrfField][0], time.Now()) {
		return e.writeErrorPage(w, http.StatusForbidden, "This form has expired",
			"The form is invalid or has expired. Enter the code your device shows again.")
	}
	var approve bool
	switch decision[0] {
	case "approve":
		approve = true
	case "deny":
	default:
		return e.writeErrorPage(w, http.StatusBadRequest, "Invalid request", "Choose Approve or Deny.")
	}
	req, err := e.app.device.Decide(r.Context(), code, user, approve)
	switch {
	case errors.Is(err, oauth.ErrUnknownUserCode):
		return e.writeErrorPage(w, http.StatusBadRequest, "This code can no longer be used",
			"The code has expired or was already used. Start again on your device.")
	case err != nil:
		return e.deviceUnavailable(w, "recording a device decision failed", err)
	}
	return e.writeDeviceDone(w, approve, req)
}

// showDeviceConsent looks up the code the user typed and shows the
// consent page for its device's client and scopes, or the code form again
// with an error. A user who has entered too many wrong codes gets 429.
func (e *Endpoints) showDeviceConsent(w http.ResponseWriter, r *http.Request, user, typed string) error {
	if wait, blocked := userCodeMisses.blocked(user); blocked {
		e.app.metrics.rateLimit()
		w.Header().Set("Retry-After", retryAfter(wait))
		return e.writeErrorPage(w, http.StatusTooManyRequests, "Too many attempts",
			"Too many codes were wrong. Wait a minute, then enter the code your device shows.")
	}
	req, err := e.app.device.Lookup(r.Context(), typed)
	switch {
	case errors.Is(err, oauth.ErrUnknownUserCode):
		userCodeMisses.miss(user)
		return e.writeDeviceForm(w, r, http.StatusBadRequest, user, typed,
			"That code is not valid or has expired. Check the code your device shows and try again.")
	case err != nil:
		return e.deviceUnavailable(w, "looking up a user code failed", err)
	}
	key, err := e.app.auth.DeriveKey(r.Context(), consentKeyPurpose)
	if err != nil {
		return e.deviceUnavailable(w, "reading the server key failed", err)
	}
	c := req.Client
	nonce := newCSPNonce()
	data := ConsentPage{
		Nonce:         nonce,
		ClientID:      c.ID,
		ClientName:    c.Name,
		ClientInitial: clientInitial(c.Name),
		UserID:        user,
		Action:        e.deviceFormAction(r),
		Issuer:        e.app.Issuer,
		IssuerHost:    pageURIHost(e.app.Issuer),
		UserCode:      req.UserCode,
		Hidden: []HiddenField{
			{Name: userCodeField, Value: req.UserCode},
			{Name: csrfField, Value: deviceCSRFToken(key, user, req.UserCode, time.Now().Add(consentCSRFTTL))},
		},
	}
	granted := e.consentGrantedScopes(r.Context(), user, c.ID)
	for _, s := range req.Scopes {
		data.Scopes = append(data.Scopes, ConsentScope{
			Name:        s,
			Description: e.app.auth.ScopeDescription(s),
			Granted:     slices.Contains(granted, s),
		})
	}
	return e.writeHTMLPage(w, http.StatusOK, e.consentPage, nonce, data)
}

// deviceUnavailable answers 503 when the store cannot be reached.
func (e *Endpoints) deviceUnavailable(w http.ResponseWriter, msg string, err error) error {
	e.logger.Error(msg, zap.Error(err))
	w.Header().Set("Retry-After", retryAfterSeconds)
	return e.writeErrorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable",
		"The authorization server cannot be reached right now. Please try again in a moment.")
}

// deviceFormAction is the path the verification page's forms post to:
// the path this request came in on, before any rewrite, as the consent
// page of the authorization endpoint does.
func (e *Endpoints) deviceFormAction(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil && orig.URL.Path != "" {
		return orig.URL.EscapedPath()
	}
	return e.Device
}

// deviceCSRFToken is the CSRF token of the verification page's consent
// form for user and the user code shown (XXXX-XXXX), expiring at exp: the
// consent form's token, under its own label. The code names one device
// authorization, whose client and scopes never change.
func deviceCSRFToken(key []byte, user, userCode string, exp time.Time) string {
	e := exp.Unix()
	return strconv.FormatInt(e, 10) + "." + base64.RawURLEncoding.EncodeToString(formMAC(key, deviceCSRFLabel, e, user, userCode))
}

// checkDeviceCSRF reports whether token is a valid, unexpired CSRF token
// of the device consent form for user and userCode at now.
func checkDeviceCSRF(key []byte, user, userCode, token string, now time.Time) bool {
	return checkFormToken(token, now, func(exp int64) []byte { return formMAC(key, deviceCSRFLabel, exp, user, userCode) })
}

const deviceCSRFLabel = "tokengate device consent"

// devicePage is what devicePageTemplate is executed with.
type devicePage struct {
	Nonce, Title string
	// Form: the code form, with Action, UserID, Typed (the code as
	// typed, to correct) and Error. Otherwise the page says Message.
	Form                         bool
	Action, UserID, Typed, Error string
	Message                      string
	// Approved colours the outcome page.
	Approved bool
}

// writeDeviceForm shows the code form, with an error when errMsg is set.
func (e *Endpoints) writeDeviceForm(w http.ResponseWriter, r *http.Request, status int, user, typed, errMsg string) error {
	nonce := newCSPNonce()
	return e.writeHTMLPage(w, status, devicePageTemplate, nonce, devicePage{
		Nonce: nonce, Title: "Connect a device", Form: true,
		Action: e.deviceFormAction(r), UserID: user, Typed: typed, Error: errMsg,
	})
}

// writeDeviceDone says what the user decided.
func (e *Endpoints) writeDeviceDone(w http.ResponseWriter, approved bool, req oauth.DeviceRequest) error {
	name := "The device"
	if req.Client != nil {
		name = req.Client.Name
	}
	page := devicePage{Title: "Request denied", Message: name + " was not given access. You can close this page."}
	if approved {
		page = devicePage{Title: "Device connected", Approved: true,
			Message: name + " now has access. Return to your device; you can close this page."}
	}
	page.Nonce = newCSPNonce()
	return e.writeHTMLPage(w, http.StatusOK, devicePageTemplate, page.Nonce, page)
}

// devicePageTemplate is the verification page's code form and its outcome
// page, in the style of the consent page.
var devicePageTemplate = template.Must(template.New("device").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style nonce="{{.Nonce}}">
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center; padding: 24px 16px;
	background: #f3f5f9; color: #18202f; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
main { width: 100%; max-width: 460px; background: #fff; border: 1px solid #e3e7ef; border-radius: 16px; padding: 32px 28px;
	box-shadow: 0 10px 30px rgba(20, 30, 60, .08); text-align: center; }
h1 { margin: 0 0 8px; font-size: 21px; }
p { margin: 0 0 16px; color: #5b6577; overflow-wrap: anywhere; }
.sub code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
form { margin: 0; display: flex; flex-direction: column; gap: 14px; }
input { width: 100%; padding: 12px 14px; border: 1px solid #e3e7ef; border-radius: 10px; background: #fff; color: inherit;
	font: 600 22px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; letter-spacing: .12em; text-align: center; text-transform: uppercase; }
input:focus { outline: 3px solid #e8eefc; border-color: #2457d6; }
button { padding: 11px 16px; border-radius: 10px; font: inherit; font-weight: 600; cursor: pointer;
	border: 1px solid #2457d6; background: #2457d6; color: #fff; }
button:hover { background: #1c46b0; }
.error { margin: 0; padding: 10px 12px; border-radius: 10px; background: #fdecec; color: #b42318; font-size: 14px; }
.outcome { display: inline-block; margin-bottom: 14px; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600;
	background: #fdecec; color: #b42318; }
.outcome.ok { background: #e6f4ec; color: #1b8a5a; }
@media (prefers-color-scheme: dark) {
	body { background: #0f131a; color: #e8ecf3; }
	main { background: #181e28; border-color: #2a3240; }
	p { color: #9aa4b5; }
	input { background: #0f131a; border-color: #2a3240; }
}
</style>
</head>
<body>
<main>
{{- if .Form}}
	<h1>Connect a device</h1>
	<p class="sub">Enter the code shown on your device. Signed in as <code>{{.UserID}}</code>.</p>
	<form method="post" action="{{.Action}}">
		{{- if .Error}}
		<p class="error" role="alert">{{.Error}}</p>
		{{- end}}
		<input type="text" name="user_code" value="{{.Typed}}" placeholder="XXXX-XXXX" aria-label="Code"
			autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="32" required autofocus>
		<button type="submit">Continue</button>
	</form>
{{- else}}
	<span class="outcome{{if .Approved}} ok{{end}}">{{if .Approved}}Approved{{else}}Denied{{end}}</span>
	<h1>{{.Title}}</h1>
	<p>{{.Message}}</p>
{{- end}}
</main>
</body>
</html>
`))

// logWithoutUserCode writes the access log entry of a verification page
// request whose query held a user code, with the code redacted there and
// in the login redirect's return_to.
func (e *Endpoints) logWithoutUserCode(rec *answerRecorder, r *http.Request) {
	header := rec.Header().Clone()
	if loc := header.Get("Location"); loc != "" {
		header.Set("Location", redactRequestURI(loc, func(q string) string { return redactQuery(q, "return_to") }))
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	logRedactedRequest(e.accessLog, header, r, status, rec.size, func(q string) string { return redactQuery(q, userCodeField) })
}

// answerRecorder passes an answer through and notes its status and size,
// for the access log entry written after it.
type answerRecorder struct {
	http.ResponseWriter
	status, size int
}

func (a *answerRecorder) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
	a.ResponseWriter.WriteHeader(status)
}

func (a *answerRecorder) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	n, err := a.ResponseWriter.Write(b)
	a.size += n
	return n, err
}
