package module

import (
	"context"
	"net/http"
)

// serveUserGrants is GET /tokengate/users/<id>/grants: the user's consents,
// as the self-service grants endpoint lists them.
func (a *AdminAPI) serveUserGrants(w http.ResponseWriter, r *http.Request, app *App, userID string) error {
	if err := allowMethods(w, r, http.MethodGet); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return apiError(http.StatusBadRequest, err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminStoreTimeout)
	defer cancel()
	grants, err := app.auth.ListGrants(ctx, userID)
	if err != nil {
		return a.storeError(w, err)
	}
	return answer(w, http.StatusOK, grantObjects(grants))
}

// serveUserGrant is DELETE /tokengate/users/<id>/grants/<client_id>: the
// consent, and every code, access and refresh token of that user for that
// client, revoked; 204 also when there was nothing to revoke.
func (a *AdminAPI) serveUserGrant(w http.ResponseWriter, r *http.Request, app *App, userID, clientID string) error {
	if err := allowMethods(w, r, http.MethodDelete); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return apiError(http.StatusBadRequest, err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminStoreTimeout)
	defer cancel()
	if err := app.auth.RevokeGrant(ctx, userID, clientID); err != nil {
		return a.storeError(w, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// serveUser is DELETE /tokengate/users/<id>: every consent, code and token
// of the user, the personal token included, revoked ("sign out
// everywhere").
func (a *AdminAPI) serveUser(w http.ResponseWriter, r *http.Request, app *App, userID string) error {
	if err := allowMethods(w, r, http.MethodDelete); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return apiError(http.StatusBadRequest, err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminStoreTimeout)
	defer cancel()
	if err := app.auth.RevokeUser(ctx, userID); err != nil {
		return a.storeError(w, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
