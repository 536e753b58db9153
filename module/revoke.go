package module

import (
	"net/http"
)

// serveRevoke is the revocation endpoint (RFC 7009): 200 with an
// empty object for any well-formed request of an authenticated client,
// whether or not the token was known or its own (RFC 7009 2.2); 503 when the
// store cannot be reached, never a false success.
func (e *Endpoints) serveRevoke(w http.ResponseWriter, r *http.Request) error {
	p, client, err := e.clientRequest(w, r)
	if client == nil {
		return err
	}
	if oerr := e.app.auth.Revoke(r.Context(), client, p["token"], p["token_type_hint"]); oerr != nil {
		return writeOAuthError(w, oerr)
	}
	return writeJSON(w, http.StatusOK, struct{}{})
}
