package module

import "net/http"

// serveIntrospect is the introspection endpoint (RFC 7662): an
// authenticated client learns whether one of its own tokens is active
// (RFC 7662 2.2); any other token is {"active":false}.
func (e *Endpoints) serveIntrospect(w http.ResponseWriter, r *http.Request) error {
	p, client, err := e.clientRequest(w, r)
	if client == nil {
		return err
	}
	info, oerr := e.app.auth.Introspect(r.Context(), client, p["token"])
	if oerr != nil {
		return writeOAuthError(w, oerr)
	}
	return writeJSON(w, http.StatusOK, info)
}
