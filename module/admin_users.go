package module

import (
	"context"
	"net/http"
)

// userRoute opens a request to a /tokengate/users/<id>/... route: its
// method must be method, the user id one a JWT could carry; the context
// bounds the store calls. On error the answer is the error.
func userRoute(w http.ResponseWriter, r *http.Request, userID, method string) (context.Context, context.CancelFunc, error) {
	if err := allowMethods(w, r, method); err != nil {
		return nil, nil, err
	}
	if err := checkUserID(userID); err != nil {
		return nil, nil, apiError(http.StatusBadRequest, err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminStoreTimeout)
	return ctx, cancel, nil
}

// serveUserGrants is GET /tokengate/users/<id>/grants: the user's consents,
// as the self-service grants endpoint lists them.
func (a *AdminAPI) serveUserGrants(w http.ResponseWriter, r *http.Request, app *App, userID string) error {
	ctx, cancel, err := userRoute(w, r, userID, http.MethodGet)
	if err != nil {
		return err
	}
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
	ctx, cancel, err := userRoute(w, r, userID, http.MethodDelete)
	if err != nil {
		return err
	}
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
	ctx, cancel, err := userRoute(w, r, userID, http.MethodDelete)
	if err != nil {
		return err
	}
	defer cancel()
	if err := app.auth.RevokeUser(ctx, userID); err != nil {
		return a.storeError(w, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
