package module

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// selfClientBody is the body of POST <clients>: what a user says of a
// client of their own. Its id is always generated.
type selfClientBody struct {
	Name         *string  `json:"name"`
	RedirectURIs []string `json:"redirect_uris"`
	Scopes       []string `json:"scopes"`
	Public       *bool    `json:"public"`
	PKCE         *string  `json:"pkce"`
	GrantTypes   []string `json:"grant_types"`

	DPoPBoundAccessTokens *bool `json:"dpop_bound_access_tokens"`
}

// serveSelfClients is the clients endpoint (docs/reference.md), where a
// user registers OAuth clients of their own and manages them as the
// admin API's client routes do, with the same client object, rules and
// messages: GET and POST on <clients>, GET, PUT and DELETE on
// <clients>/<id>, POST on <clients>/<id>/secret. Another user's client,
// or one of the config, is not found. A cross-site page can send none of
// the changing requests with the users.cookie cookie: their bodies are
// JSON, which no form posts, and no CORS preflight is approved here.
func (e *Endpoints) serveSelfClients(w http.ResponseWriter, r *http.Request) error {
	setNoStore(w)
	body, err := readBody(w, r)
	if err != nil {
		return writeParamsError(w, err)
	}
	id, secretPath, _ := e.clientsPath(r)
	allow := []string{http.MethodGet, http.MethodPost}
	switch {
	case secretPath:
		allow = []string{http.MethodPost}
	case id != "":
		allow = []string{http.MethodGet, http.MethodPut, http.MethodDelete}
	}
	if !slices.Contains(allow, r.Method) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return writeClientError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method not allowed: %s", r.Method))
	}
	userID, ok := e.authenticateSelfService(w, r)
	if !ok {
		return nil
	}
	app := e.app
	ctx := r.Context()
	switch {
	case secretPath:
		secret, err := app.admin.RotateOwnedSecret(ctx, userID, id)
		if errors.Is(err, oauth.ErrPublicClient) {
			return writeClientError(w, http.StatusConflict, fmt.Sprintf("client %s is public and has no secret", id))
		}
		if err != nil {
			return e.selfClientError(w, id, err)
		}
		return writeJSON(w, http.StatusOK, struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}{id, secret})
	case id == "" && r.Method == http.MethodGet:
		recs, err := app.admin.ListOwned(ctx, userID)
		if err != nil {
			return e.storeUnavailable(w, err)
		}
		out := make([]clientObject, 0, len(recs))
		for _, rec := range recs {
			out = append(out, storedClientObject(rec))
		}
		return writeJSON(w, http.StatusOK, out)
	case id == "":
		var b selfClientBody
		if err := decodeJSON(body, &b); err != nil {
			return writeClientError(w, http.StatusBadRequest, err.Error())
		}
		spec := oauth.ClientSpec{Public: b.Public != nil && *b.Public}
		fields := clientBody{Name: b.Name, RedirectURIs: b.RedirectURIs, Scopes: b.Scopes, Public: b.Public, PKCE: b.PKCE,
			GrantTypes: b.GrantTypes, DPoPBoundAccessTokens: b.DPoPBoundAccessTokens}
		if err := app.fillClientSpec(&spec, fields); err != nil {
			return writeClientError(w, http.StatusBadRequest, err.Error())
		}
		rec, secret, err := app.admin.CreateOwned(ctx, userID, app.MaxClientsPerUser, spec)
		if errors.Is(err, oauth.ErrClientLimit) {
			return writeClientError(w, http.StatusForbidden, "client limit reached")
		}
		if err != nil {
			return e.storeUnavailable(w, err)
		}
		return writeJSON(w, http.StatusCreated, struct {
			clientObject
			ClientSecret string `json:"client_secret,omitempty"`
		}{storedClientObject(rec), secret})
	case r.Method == http.MethodGet:
		rec, err := app.admin.GetOwned(ctx, userID, id)
		if err != nil {
			return e.selfClientError(w, id, err)
		}
		return writeJSON(w, http.StatusOK, storedClientObject(rec))
	case r.Method == http.MethodPut:
		var b clientUpdateBody
		if err := decodeJSON(body, &b); err != nil {
			return writeClientError(w, http.StatusBadRequest, err.Error())
		}
		if err := checkSameClientID(id, b.clientBody); err != nil {
			return writeClientError(w, http.StatusBadRequest, err.Error())
		}
		current, err := app.admin.GetOwned(ctx, userID, id)
		if err != nil {
			return e.selfClientError(w, id, err)
		}
		spec, err := app.updatedClientSpec(id, current.Public(), b.clientBody)
		if err != nil {
			return writeClientError(w, http.StatusBadRequest, err.Error())
		}
		rec, err := app.admin.UpdateOwned(ctx, userID, id, spec)
		if err != nil {
			return e.selfClientError(w, id, err)
		}
		return writeJSON(w, http.StatusOK, storedClientObject(rec))
	default: // DELETE
		if err := app.admin.DeleteOwned(ctx, userID, id); err != nil {
			return e.selfClientError(w, id, err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// clientsPath reports whether r is for the clients endpoint, which is
// off while its path is empty: the path itself (id empty), a path one
// segment below it, which names a client, or that followed by /secret.
// The segment is read as sent, as grantPath reads it.
func (e *Endpoints) clientsPath(r *http.Request) (id string, secret, ok bool) {
	if e.Clients == "" {
		return "", false, false
	}
	if r.URL.Path == e.Clients {
		return "", false, true
	}
	if id, ok := segmentBelow(r, e.Clients, "/secret"); ok {
		return id, true, true
	}
	id, ok = segmentBelow(r, e.Clients, "")
	return id, false, ok
}

// segmentBelow returns the one path segment of r between base and
// suffix, unescaped, when r's path is exactly base/<segment><suffix>.
func segmentBelow(r *http.Request, base, suffix string) (string, bool) {
	if !strings.HasPrefix(r.URL.Path, base+"/") {
		return "", false
	}
	escaped, found := strings.CutSuffix(r.URL.EscapedPath(), suffix)
	if !found {
		return "", false
	}
	segment, err := url.PathUnescape(escaped[strings.LastIndexByte(escaped, '/')+1:])
	if err != nil || segment == "" || r.URL.Path != base+"/"+segment+suffix {
		return "", false
	}
	return segment, true
}

// selfClientError answers the errors that a request on one of the user's
// clients may meet: a client that is not theirs is not found.
func (e *Endpoints) selfClientError(w http.ResponseWriter, id string, err error) error {
	if errors.Is(err, oauth.ErrNotFound) {
		return writeClientError(w, http.StatusNotFound, fmt.Sprintf("client %s not found", id))
	}
	return e.storeUnavailable(w, err)
}

// writeClientError answers as the admin API does: {"error":"<message>"}.
func writeClientError(w http.ResponseWriter, status int, msg string) error {
	return writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
