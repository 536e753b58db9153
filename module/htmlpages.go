package module

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"os"

	"go.uber.org/zap"
)

// defaultConsentHTML is the built-in consent page; consent_template
// replaces it.
//
//go:embed consent.html
var defaultConsentHTML string

// defaultConsentTemplate is defaultConsentHTML, parsed once.
var defaultConsentTemplate = template.Must(template.New("consent.html").Parse(defaultConsentHTML))

// loadConsentTemplate parses a consent_template file, naming the file in
// any error.
func loadConsentTemplate(path string) (*template.Template, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("consent_template: %w", err)
	}
	t, err := template.New(path).Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("consent_template %s: %w", path, err)
	}
	return t, nil
}

// ConsentPage is what the consent template is executed with (see
// Endpoints.ConsentTemplate). Every string is escaped by html/template as
// the context it lands in requires.
type ConsentPage struct {
	// Nonce is the CSP nonce a <style> element needs: <style nonce="{{.Nonce}}">.
	Nonce string
	// ClientID, ClientName and ClientInitial (the name's first letter,
	// upper-cased) describe the client asking.
	ClientID, ClientName, ClientInitial string
	// Scopes are the requested scopes, in request order.
	Scopes []ConsentScope
	// UserID is the signed-in user's id.
	UserID string
	// Action is the form's action: the authorization endpoint's path, as
	// the request reached Caddy (before any rewrite).
	Action string
	// Hidden are the form's hidden fields: the request parameters and the
	// CSRF token. The form must carry every one of them, and a submit
	// button named decision with the value approve or deny.
	Hidden []HiddenField
	// RedirectURI is where the user goes next; RedirectHost is its host
	// (or scheme, for a private-use URI scheme).
	RedirectURI, RedirectHost string
	// Issuer is the authorization server's issuer; IssuerHost its host.
	Issuer, IssuerHost string
	// UserCode is set on the device verification page (RFC 8628 3.3): the
	// code, XXXX-XXXX, that the device asking shows, so that the user can
	// check it is their own device. RedirectURI and RedirectHost are then
	// empty.
	UserCode string
}

// ConsentScope is one requested scope and its declared description.
// Granted says the user has already consented to it for this client, so
// that the page can set the new scopes apart.
type ConsentScope struct {
	Name, Description string
	Granted           bool
}

// HiddenField is one hidden form field.
type HiddenField struct {
	Name, Value string
}

// errorPageTemplate is the page of every HTML error of the browser flow.
var errorPageTemplate = template.Must(template.New("error").Parse(`<!DOCTYPE html>
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
.status { display: inline-block; padding: 2px 10px; border-radius: 999px; background: #fdecec; color: #b42318; font-size: 12px; font-weight: 600; }
h1 { margin: 14px 0 8px; font-size: 21px; }
p { margin: 0; color: #5b6577; overflow-wrap: anywhere; }
@media (prefers-color-scheme: dark) {
	body { background: #0f131a; color: #e8ecf3; }
	main { background: #181e28; border-color: #2a3240; }
	p { color: #9aa4b5; }
}
</style>
</head>
<body>
<main>
	<span class="status">Error {{.Status}}</span>
	<h1>{{.Title}}</h1>
	<p>{{.Message}}</p>
</main>
</body>
</html>
`))

// setPageHeaders sets the headers of every HTML page (docs/reference.md): never
// cached, never framed (RFC 7034, CSP frame-ancestors), no Referer leaving
// it (it may carry the request's state), no scripts, and only the page's own
// nonce'd <style>.
func setPageHeaders(w http.ResponseWriter, nonce string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; img-src data:; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// newCSPNonce returns a fresh CSP nonce (CSP3 6.7.2.1: at least 128 bits).
func newCSPNonce() string {
	var b [18]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// writeHTMLPage executes t with data (which carries nonce for its <style>)
// into a buffer and sends it with status, or a 500 page when the template
// fails, so that a half-rendered page is never sent.
func (e *Endpoints) writeHTMLPage(w http.ResponseWriter, status int, t *template.Template, nonce string, data any) error {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		e.logger.Error("rendering HTML page failed", zap.String("template", t.Name()), zap.Error(err))
		return e.writeErrorPage(w, http.StatusInternalServerError, "Something went wrong", "The page could not be shown. Please try again later.")
	}
	setPageHeaders(w, nonce)
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// writeErrorPage answers an HTML error page.
func (e *Endpoints) writeErrorPage(w http.ResponseWriter, status int, title, message string) error {
	nonce := newCSPNonce()
	var buf bytes.Buffer
	if err := errorPageTemplate.Execute(&buf, struct {
		Nonce, Title, Message string
		Status                int
	}{nonce, title, message, status}); err != nil {
		return err
	}
	setPageHeaders(w, nonce)
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}
