package module

import (
	"net/http"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// serveAuthorizeJSON is the dashboard flow of the authorization endpoint
// (docs/flows.md): the user, identified by their JWT, posts the RFC
// 6749 4.1.1 request as JSON and gets back the URL to send the browser to,
// carrying code, state and iss (RFC 9207 2) on success, or error and state
// (RFC 6749 4.1.2.1) when the error may go to the client.
func (e *Endpoints) serveAuthorizeJSON(w http.ResponseWriter, r *http.Request) error {
	setNoStore(w)
	body, err := readBody(w, r)
	if err != nil {
		return writeParamsError(w, err)
	}
	userID, ok := e.authenticateUser(w, r)
	if !ok {
		return nil
	}
	// resource may be an array: RFC 8707 2 lets it be given more than once.
	p, resources, err := parseJSONParamsWithList(body, "resource")
	if err != nil {
		return writeParamsError(w, err)
	}
	req := oauth.AuthorizeRequest{
		ClientID:            p["client_id"],
		RedirectURI:         p["redirect_uri"],
		ResponseType:        p["response_type"],
		Scope:               p["scope"],
		State:               p["state"],
		CodeChallenge:       p["code_challenge"],
		CodeChallengeMethod: p["code_challenge_method"],
		UserID:              userID,
		Resources:           resources,
	}
	code, oerr, redirectable := e.app.auth.Authorize(r.Context(), req)
	if oerr == nil {
		return writeJSON(w, http.StatusOK, struct {
			RedirectURL string `json:"redirect_url"`
		}{withQueryParams(req.RedirectURI, "code", code, "state", req.State, "iss", e.app.Issuer)})
	}
	status := http.StatusBadRequest
	if oerr.Status >= 500 {
		status = oerr.Status
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfterSeconds)
		}
	}
	if !redirectable {
		return writeJSON(w, status, oerr)
	}
	pairs := []string{"error", oerr.Code}
	if oerr.Description != "" {
		pairs = append(pairs, "error_description", oerr.Description)
	}
	if req.State != "" {
		pairs = append(pairs, "state", req.State)
	}
	pairs = append(pairs, "iss", e.app.Issuer)
	return writeJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
		RedirectURL string `json:"redirect_url"`
	}{oerr.Code, oerr.Description, withQueryParams(req.RedirectURI, pairs...)})
}
