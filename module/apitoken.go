package module

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// maxBodyBytes is the largest request body any endpoint reads
// (docs/reference.md).
const maxBodyBytes = 64 << 10

// serveAPIToken is the personal API token self-service (docs/reference.md):
// GET shows, POST activates or rotates, DELETE deactivates.
func (e *Endpoints) serveAPIToken(w http.ResponseWriter, r *http.Request) error {
	setNoStore(w)
	// No method takes a body, but an oversized one is refused before the
	// token changes, whether or not its length was declared.
	if _, err := readBody(w, r); err != nil {
		return writeParamsError(w, err)
	}
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		return writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "method not allowed"})
	}
	userID, ok := e.authenticateUser(w, r)
	if !ok {
		return nil
	}
	pt := e.app.personal
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet:
		rec, active, err := pt.Status(ctx, userID)
		if err != nil {
			return e.storeUnavailable(w, err)
		}
		if !active {
			return writeJSON(w, http.StatusOK, struct {
				Active bool `json:"active"`
			}{false})
		}
		var lastUsed *string
		if !rec.LastUsedAt.IsZero() {
			s := rec.LastUsedAt.UTC().Format(time.RFC3339)
			lastUsed = &s
		}
		return writeJSON(w, http.StatusOK, struct {
			Active     bool    `json:"active"`
			CreatedAt  string  `json:"created_at"`
			LastUsedAt *string `json:"last_used_at"`
			Hint       string  `json:"hint"`
		}{true, rec.CreatedAt.UTC().Format(time.RFC3339), lastUsed, rec.Hint})
	case http.MethodPost:
		text, rec, err := pt.Issue(ctx, userID)
		if err != nil {
			return e.storeUnavailable(w, err)
		}
		return writeJSON(w, http.StatusCreated, struct {
			Token     string `json:"token"`
			CreatedAt string `json:"created_at"`
		}{text, rec.CreatedAt.UTC().Format(time.RFC3339)})
	default: // DELETE
		if _, err := pt.Deactivate(ctx, userID); err != nil {
			return e.storeUnavailable(w, err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// authenticateUser verifies the user JWT in the Authorization header and
// answers 401 (or 503 when the identity provider's keys cannot be fetched)
// when it is missing or invalid.
func (e *Endpoints) authenticateUser(w http.ResponseWriter, r *http.Request) (string, bool) {
	u, err := e.verifyUserJWT(r)
	if err != nil {
		writeUserJWTError(w, err)
		return "", false
	}
	return u.ID, true
}

// errNoUsersBlock is a user JWT with no users block to verify it.
var errNoUsersBlock = errors.New("no users block is configured, so no user can sign in")

// errNoUserJWT is a request without Authorization: Bearer.
var errNoUserJWT = errors.New("send the user's JWT as Authorization: Bearer <jwt>")

// verifyUserJWT verifies the user JWT in the Authorization header, with
// the errors authenticateUser answers.
func (e *Endpoints) verifyUserJWT(r *http.Request) (oauth.VerifiedUser, error) {
	if e.app.users == nil {
		return oauth.VerifiedUser{}, errNoUsersBlock
	}
	jwtText, err := oauth.BearerToken(r.Header["Authorization"])
	if err != nil {
		return oauth.VerifiedUser{}, errNoUserJWT
	}
	return e.app.users.VerifyUser(r.Context(), jwtText)
}

// writeUserJWTError answers a request whose user JWT verifyUserJWT
// refused.
func writeUserJWTError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errNoUsersBlock):
		_ = writeJSON(w, http.StatusUnauthorized, oauthError{"unauthorized", err.Error()})
	case errors.Is(err, errNoUserJWT):
		w.Header().Set("WWW-Authenticate", realm)
		_ = writeJSON(w, http.StatusUnauthorized, oauthError{"unauthorized", err.Error()})
	case errors.Is(err, oauth.ErrUserKeysUnavailable):
		w.Header().Set("Retry-After", retryAfterSeconds)
		_ = writeJSON(w, http.StatusServiceUnavailable, oauthError{"temporarily_unavailable", "the identity provider's keys cannot be fetched"})
	default:
		w.Header().Set("WWW-Authenticate", realm+`, error="invalid_token"`)
		_ = writeJSON(w, http.StatusUnauthorized, oauthError{"unauthorized", err.Error()})
	}
}

func (e *Endpoints) storeUnavailable(w http.ResponseWriter, err error) error {
	e.logger.Error("token store unavailable", zap.Error(err))
	w.Header().Set("Retry-After", retryAfterSeconds)
	return writeJSON(w, http.StatusServiceUnavailable, oauthError{"temporarily_unavailable", "the token store cannot be reached"})
}

// oauthError is the RFC 6749 5.2 error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func setNoStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(body)
	return err
}
