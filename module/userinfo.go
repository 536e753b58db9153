package module

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// userinfoTimeout bounds the store read of a userinfo request.
const userinfoTimeout = 5 * time.Second

// serveUserinfo is the OpenID Connect userinfo endpoint (OpenID Connect
// Core 5.3), GET or POST: an access token with the openid scope gets
// {"sub": <user id>} and the claims of its grant that its scopes release.
// The token is authenticated exactly as the guard does it
// (authenticateAccess: the Authorization header only, Bearer or DPoP with
// its proof), with the guard's 401, 403 and 503 answers.
func (e *Endpoints) serveUserinfo(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		return writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "method not allowed"})
	}
	p, text, ok, err := e.app.authenticateAccess(w, r, e.logger, e.accessLog, guardResource{})
	if !ok {
		return err
	}
	// A token standing for no user (a client's own) has nobody to
	// describe, whatever its scopes.
	if !p.HasScope(oauth.ScopeOpenID) || p.UserID == "" {
		e.app.metrics.validation(validationInsufficientScope)
		return denyScopeFor(w, &p, oauth.ScopeOpenID, "")
	}
	answer := map[string]any{}
	if p.Kind == oauth.KindAccess {
		ctx, cancel := context.WithTimeout(r.Context(), userinfoTimeout)
		defer cancel()
		stored, err := e.app.state.store.AccessTokenClaims(ctx, oauth.AccessTokenHash(text))
		switch {
		case errors.Is(err, oauth.ErrNotFound):
			// Revoked since it was cached.
			e.app.metrics.validation(validationInvalid)
			if p.DPoPKey != "" {
				return denyDPoP(w, "invalid_token", "", "")
			}
			return denyUnauthenticated(w, true, "")
		case err != nil:
			e.app.metrics.validation(validationUnavailable)
			if ce := e.logger.Check(zap.WarnLevel, "reading userinfo claims failed"); ce != nil {
				ce.Write(zap.Error(err))
			}
			return denyUnavailable(w)
		}
		for name, v := range oauth.ReleasedClaims(stored, p.Scopes) {
			answer[name] = v
		}
	}
	e.app.metrics.validation(validationOK)
	answer["sub"] = p.UserID
	setNoStore(w)
	return writeJSON(w, http.StatusOK, answer)
}
