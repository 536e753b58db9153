package module

import (
	"errors"
	"net/http"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// serveGrants is the user's list of connected apps (docs/reference.md):
// GET <grants> lists the clients the user authorized, DELETE
// <grants>/<client_id> revokes one of them, with every code and token the
// user holds for it. Only DELETE changes anything, and a cross-site page
// can neither send it from a form nor, without a CORS preflight this
// handler never approves, from a script: the users.cookie cookie may
// authenticate it.
func (e *Endpoints) serveGrants(w http.ResponseWriter, r *http.Request) error {
	setNoStore(w)
	// No method takes a body, but an oversized one is refused all the
	// same, as the api_token endpoint does.
	if _, err := readBody(w, r); err != nil {
		return writeParamsError(w, err)
	}
	clientID, _ := e.grantPath(r)
	allow := http.MethodGet
	if clientID != "" {
		allow = http.MethodDelete
	}
	if r.Method != allow {
		w.Header().Set("Allow", allow)
		return writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "method not allowed; use " + allow})
	}
	userID, ok := e.authenticateSelfService(w, r)
	if !ok {
		return nil
	}
	if clientID == "" {
		grants, err := e.app.auth.ListGrants(r.Context(), userID)
		if err != nil {
			return e.storeUnavailable(w, err)
		}
		return writeJSON(w, http.StatusOK, grantObjects(grants))
	}
	// An unknown client, or one the user never authorized, is revoked
	// all the same: there is nothing of it left.
	if err := e.app.auth.RevokeGrant(r.Context(), userID, clientID); err != nil {
		return e.storeUnavailable(w, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// grantPath reports whether r is for the grants endpoint: the grants path
// itself (clientID empty), or a path one segment below it, which names a
// client. The segment is read as sent, so a client id holding a "/"
// arrives escaped (%2F) and comes out whole; a deeper path is not the
// endpoint's.
func (e *Endpoints) grantPath(r *http.Request) (clientID string, ok bool) {
	if r.URL.Path == e.Grants {
		return "", true
	}
	return segmentBelow(r, e.Grants, "")
}

// grantObject is a grant as the grants endpoint and the admin API show it
// (docs/reference.md).
type grantObject struct {
	ClientID   string   `json:"client_id"`
	ClientName string   `json:"client_name"`
	Scopes     []string `json:"scopes"`
	GrantedAt  string   `json:"granted_at"`
}

// grantObjects returns grants as JSON objects: an empty list is [], and
// times are RFC 3339 in UTC, to the second, as the api_token endpoint
// writes them.
func grantObjects(grants []oauth.UserGrant) []grantObject {
	out := make([]grantObject, 0, len(grants))
	for _, g := range grants {
		scopes := g.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		out = append(out, grantObject{
			ClientID:   g.ClientID,
			ClientName: g.ClientName,
			Scopes:     scopes,
			GrantedAt:  g.GrantedAt.UTC().Format(time.RFC3339),
		})
	}
	return out
}

// authenticateSelfService finds the user of a self-service request as the
// browser flow does (browserUser: the JWT in Authorization: Bearer, or
// else in the users.cookie cookie), and answers 401, or 503 when the
// identity provider's keys cannot be fetched, when there is none.
func (e *Endpoints) authenticateSelfService(w http.ResponseWriter, r *http.Request) (string, bool) {
	if e.app.users == nil {
		_ = writeJSON(w, http.StatusUnauthorized, oauthError{"unauthorized", "no users block is configured, so no user can sign in"})
		return "", false
	}
	userID, err := e.browserUser(r)
	switch {
	case err == nil:
		return userID, true
	case errors.Is(err, oauth.ErrUserKeysUnavailable):
		w.Header().Set("Retry-After", retryAfterSeconds)
		_ = writeJSON(w, http.StatusServiceUnavailable, oauthError{"temporarily_unavailable", "the identity provider's keys cannot be fetched"})
	case errors.Is(err, errNoBrowserUser):
		w.Header().Set("WWW-Authenticate", realm)
		how := "send the user's JWT as Authorization: Bearer <jwt>"
		if e.app.Users.Cookie != "" {
			how += " or in the " + e.app.Users.Cookie + " cookie"
		}
		_ = writeJSON(w, http.StatusUnauthorized, oauthError{"unauthorized", how})
	default:
		w.Header().Set("WWW-Authenticate", realm+`, error="invalid_token"`)
		_ = writeJSON(w, http.StatusUnauthorized, oauthError{"unauthorized", err.Error()})
	}
	return "", false
}
