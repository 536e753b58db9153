package module

import (
	"context"
	"errors"
	"net/http"
	"time"
	"unicode"
)

// servePersonalToken is POST (issue or rotate) and DELETE (deactivate) on
// /tokengate/users/<id>/personal-token, as the api_token endpoint's POST
// and DELETE do for the signed-in user.
func (a *AdminAPI) servePersonalToken(w http.ResponseWriter, r *http.Request, app *App, userID string) error {
	if err := allowMethods(w, r, http.MethodPost, http.MethodDelete); err != nil {
		return err
	}
	if err := skipBody(w, r); err != nil {
		return err
	}
	if err := checkUserID(userID); err != nil {
		return apiError(http.StatusBadRequest, err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminStoreTimeout)
	defer cancel()
	if r.Method == http.MethodDelete {
		if _, err := app.personal.Deactivate(ctx, userID); err != nil {
			return a.storeError(w, err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	text, rec, err := app.personal.Issue(ctx, userID)
	if err != nil {
		return a.storeError(w, err)
	}
	return answer(w, http.StatusCreated, struct {
		Token     string `json:"token"`
		CreatedAt string `json:"created_at"`
	}{text, rec.CreatedAt.UTC().Format(time.RFC3339)})
}

// adminStoreTimeout bounds the store calls of a personal-token route.
const adminStoreTimeout = 5 * time.Second

// checkUserID refuses a user id that no user JWT could carry: the
// verifier refuses control characters in it too.
func checkUserID(id string) error {
	for _, r := range id {
		if unicode.IsControl(r) {
			return errors.New("the user id must not contain control characters")
		}
	}
	return nil
}
