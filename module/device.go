package module

import (
	"net/http"
	"strings"
)

// serveDeviceAuthorization is the device authorization endpoint (RFC 8628
// 3.1, 3.2): POST, the client authenticated exactly as at the token
// endpoint (a public client sends client_id alone), an optional scope.
// The answer carries the device code, the user code and the verification
// page's URL, and is never cached.
func (e *Endpoints) serveDeviceAuthorization(w http.ResponseWriter, r *http.Request) error {
	p, client, err := e.clientRequest(w, r)
	if client == nil {
		return err
	}
	resp, oerr := e.app.device.Start(r.Context(), client, p["scope"], e.verificationURI())
	if oerr != nil {
		return writeOAuthError(w, oerr)
	}
	return writeJSON(w, http.StatusOK, resp)
}

// verificationURI is the verification page's absolute URL (RFC 8628 3.2
// verification_uri): the issuer followed by the device path, as the
// metadata builds the endpoints' URLs.
func (e *Endpoints) verificationURI() string {
	return strings.TrimSuffix(e.app.Issuer, "/") + e.Device
}
