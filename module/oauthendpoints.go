package module

import (
	"mime"
	"net/http"
)

// serveAuthorize splits the authorization endpoint (docs/reference.md): GET
// is the browser flow, a JSON POST the dashboard flow, a form POST the
// consent page's Approve or Deny.
func (e *Endpoints) serveAuthorize(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet:
		return e.serveAuthorizePage(w, r)
	case http.MethodPost:
		if isJSONRequest(r) {
			return e.serveAuthorizeJSON(w, r)
		}
		return e.serveConsentDecision(w, r)
	}
	w.Header().Set("Allow", "GET, POST")
	return writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "method not allowed"})
}

// isJSONRequest reports whether the body is declared as JSON.
func isJSONRequest(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
