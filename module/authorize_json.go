package module

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// serveAuthorizeJSON is the dashboard flow of the authorization endpoint
// (docs/flows.md): the user, identified by their JWT, posts the RFC
// 6749 4.1.1 request as JSON and gets back the URL to send the browser to,
// carrying code, state and iss (RFC 9207 2) on success, or error and state
// (RFC 6749 4.1.2.1) when the error may go to the client. The post is the
// user's consent; with openid on, prompt=none asks for a code only when
// the user is signed in and has consented already (OpenID Connect Core
// 3.1.2.6: login_required, consent_required).
func (e *Endpoints) serveAuthorizeJSON(w http.ResponseWriter, r *http.Request) error {
	setNoStore(w)
	body, err := readBody(w, r)
	if err != nil {
		return writeParamsError(w, err)
	}
	user, userErr := e.verifyUserJWT(r)
	// resource may be an array: RFC 8707 2 lets it be given more than once.
	p, resources, err := parseJSONParamsWithList(body, "resource")
	if userErr != nil {
		if err != nil || errors.Is(userErr, oauth.ErrUserKeysUnavailable) {
			writeUserJWTError(w, userErr)
			return nil
		}
		if pr, _ := e.app.readPrompt(jsonPrompt(p)); !pr.none {
			writeUserJWTError(w, userErr)
			return nil
		}
		// Not signed in, and no login page may be shown.
		req := authorizeRequestJSON(p, resources, "")
		if _, _, oerr, redirectable := e.app.auth.ValidateAuthorize(r.Context(), req); oerr != nil {
			return e.writeAuthorizeJSONError(w, req, oerr, redirectable)
		}
		return e.writeAuthorizeJSONError(w, req, oauth.ErrLoginRequired.WithDescription("the user is not signed in"), true)
	}
	if err != nil {
		return writeParamsError(w, err)
	}
	req := authorizeRequestJSON(p, resources, user.ID)
	pr, promptErr := e.app.readPrompt(jsonPrompt(p))
	if pr.none || promptErr != nil {
		c, scopes, oerr, redirectable := e.app.auth.ValidateAuthorize(r.Context(), req)
		if oerr != nil {
			return e.writeAuthorizeJSONError(w, req, oerr, redirectable)
		}
		if promptErr != nil {
			return e.writeAuthorizeJSONError(w, req, promptErr, true)
		}
		need, err := e.app.auth.NeedsConsent(r.Context(), user.ID, c.ID, scopes)
		if err != nil {
			e.logger.Error("reading consent failed", zap.String("client_id", c.ID), zap.Error(err))
			return e.writeAuthorizeJSONError(w, req, oauth.ErrTemporarilyUnavailable, true)
		}
		if need {
			return e.writeAuthorizeJSONError(w, req, oauth.ErrConsentRequired.WithDescription("the user has not consented to every requested scope"), true)
		}
	}
	req.Claims = e.app.userClaims(user, req.Scope)
	code, oerr, redirectable := e.app.auth.Authorize(r.Context(), req)
	if oerr == nil {
		return writeJSON(w, http.StatusOK, struct {
			RedirectURL string `json:"redirect_url"`
		}{withQueryParams(req.RedirectURI, "code", code, "state", req.State, "iss", e.app.Issuer)})
	}
	return e.writeAuthorizeJSONError(w, req, oerr, redirectable)
}

// authorizeRequestJSON is the AuthServer's view of a dashboard-flow body
// and its resource indicators, for userID.
func authorizeRequestJSON(p bodyParams, resources []string, userID string) oauth.AuthorizeRequest {
	return oauth.AuthorizeRequest{
		ClientID:            p["client_id"],
		RedirectURI:         p["redirect_uri"],
		ResponseType:        p["response_type"],
		Scope:               p["scope"],
		State:               p["state"],
		CodeChallenge:       p["code_challenge"],
		CodeChallengeMethod: p["code_challenge_method"],
		UserID:              userID,
		Nonce:               p["nonce"],
		Resources:           resources,
	}
}

// jsonPrompt is the prompt parameter of a dashboard-flow body, as the
// values readPrompt takes (a JSON body has a key once).
func jsonPrompt(p bodyParams) []string {
	if v, ok := p["prompt"]; ok {
		return []string{v}
	}
	return nil
}

// writeAuthorizeJSONError answers a refused dashboard-flow request: 400
// (or the 5xx of a store failure), with a redirect_url carrying error,
// error_description, state and iss when the error may go to the client.
func (e *Endpoints) writeAuthorizeJSONError(w http.ResponseWriter, req oauth.AuthorizeRequest, oerr *oauth.Error, redirectable bool) error {
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
