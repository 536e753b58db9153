package module

import (
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// clientObject is a client as every client route answers it: never its
// secret or a hash of it.
type clientObject struct {
	ClientID     string   `json:"client_id"`
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirect_uris"`
	Scopes       []string `json:"scopes"`
	Public       bool     `json:"public"`
	PKCE         string   `json:"pkce"`
	GrantTypes   []string `json:"grant_types"`
	Source       string   `json:"source"`
	CreatedAt    *string  `json:"created_at"`
	// Owner is the user who registered the client through the clients
	// endpoint; absent for every other client.
	Owner string `json:"owner,omitempty"`
	// DPoPBoundAccessTokens is present, true, for a client whose token
	// requests must carry a DPoP proof (RFC 9449 5.2).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
}

func newClientObject(l oauth.ListedClient) clientObject {
	c := l.Client
	o := clientObject{
		ClientID:     c.ID,
		Name:         c.Name,
		RedirectURIs: append([]string{}, c.RedirectURIs...),
		Scopes:       append([]string{}, c.Scopes...),
		Public:       !c.Confidential(),
		PKCE:         "required",
		GrantTypes:   append([]string{}, c.GrantTypes...),
		Source:       string(c.Source),

		DPoPBoundAccessTokens: c.DPoPBoundAccessTokens,
	}
	if len(o.GrantTypes) == 0 {
		o.GrantTypes = oauth.DefaultGrantTypes()
	}
	if !c.PKCERequired {
		o.PKCE = "optional"
	}
	if l.Stored != nil {
		created := l.Stored.CreatedAt.UTC().Format(time.RFC3339)
		o.CreatedAt = &created
		o.Owner = l.Stored.OwnerUserID
	}
	return o
}

// clientBody is the body of POST /tokengate/clients; PUT takes the same
// fields but client_id and public, which it only checks.
type clientBody struct {
	ClientID     *string  `json:"client_id"`
	Name         *string  `json:"name"`
	RedirectURIs []string `json:"redirect_uris"`
	Scopes       []string `json:"scopes"`
	Public       *bool    `json:"public"`
	PKCE         *string  `json:"pkce"`
	// GrantTypes default to authorization_code and refresh_token.
	GrantTypes []string `json:"grant_types"`
	// DPoPBoundAccessTokens absent is false, also in a PUT.
	DPoPBoundAccessTokens *bool `json:"dpop_bound_access_tokens"`
}

// clientUpdateBody is the body of PUT /tokengate/clients/<id>. It may be
// a client object as GET answers it: source, created_at and owner are
// ignored.
type clientUpdateBody struct {
	clientBody
	Source    any `json:"source"`
	CreatedAt any `json:"created_at"`
	Owner     any `json:"owner"`
}

// serveClients is GET (every client) and POST (add one) on
// /tokengate/clients.
func (a *AdminAPI) serveClients(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := allowMethods(w, r, http.MethodGet, http.MethodPost); err != nil {
		return err
	}
	if r.Method == http.MethodGet {
		if err := skipBody(w, r); err != nil {
			return err
		}
		list, err := app.registry.List(r.Context())
		if err != nil {
			return a.storeError(w, err)
		}
		out := make([]clientObject, 0, len(list))
		for _, l := range list {
			out = append(out, newClientObject(l))
		}
		return answer(w, http.StatusOK, out)
	}
	var body clientBody
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	spec := oauth.ClientSpec{Public: body.Public != nil && *body.Public}
	if body.ClientID != nil {
		if err := checkClientID(*body.ClientID); err != nil {
			return apiError(http.StatusBadRequest, err)
		}
		spec.ID = *body.ClientID
	}
	if err := app.fillClientSpec(&spec, body); err != nil {
		return apiError(http.StatusBadRequest, err)
	}
	rec, secret, err := app.admin.Create(r.Context(), spec)
	switch {
	case errors.Is(err, oauth.ErrStaticClient):
		return staticConflict(spec.ID)
	case errors.Is(err, oauth.ErrClientExists):
		return apiError(http.StatusConflict, fmt.Errorf("client %s already exists", spec.ID))
	case err != nil:
		return a.storeError(w, err)
	}
	return answer(w, http.StatusCreated, struct {
		clientObject
		ClientSecret string `json:"client_secret,omitempty"`
	}{storedClientObject(rec), secret})
}

// serveClient is GET, PUT and DELETE on /tokengate/clients/<id>.
func (a *AdminAPI) serveClient(w http.ResponseWriter, r *http.Request, app *App, id string) error {
	if err := allowMethods(w, r, http.MethodGet, http.MethodPut, http.MethodDelete); err != nil {
		return err
	}
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet:
		if err := skipBody(w, r); err != nil {
			return err
		}
		l, err := app.registry.Get(ctx, id)
		if err != nil {
			return a.clientError(w, id, err)
		}
		return answer(w, http.StatusOK, newClientObject(l))
	case http.MethodPut:
		var body clientUpdateBody
		if err := decodeBody(w, r, &body); err != nil {
			return err
		}
		if err := checkSameClientID(id, body.clientBody); err != nil {
			return apiError(http.StatusBadRequest, err)
		}
		if app.clients[id] != nil {
			return staticConflict(id)
		}
		current, err := app.registry.Get(ctx, id)
		if err != nil {
			return a.clientError(w, id, err)
		}
		spec, err := app.updatedClientSpec(id, !current.Client.Confidential(), body.clientBody)
		if err != nil {
			return apiError(http.StatusBadRequest, err)
		}
		rec, err := app.admin.Update(ctx, id, spec)
		if err != nil {
			return a.clientError(w, id, err)
		}
		return answer(w, http.StatusOK, storedClientObject(rec))
	default: // DELETE
		if err := skipBody(w, r); err != nil {
			return err
		}
		if err := app.admin.Delete(ctx, id); err != nil {
			return a.clientError(w, id, err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// serveClientSecret is POST /tokengate/clients/<id>/secret.
func (a *AdminAPI) serveClientSecret(w http.ResponseWriter, r *http.Request, app *App, id string) error {
	if err := allowMethods(w, r, http.MethodPost); err != nil {
		return err
	}
	if err := skipBody(w, r); err != nil {
		return err
	}
	secret, err := app.admin.RotateSecret(r.Context(), id)
	if errors.Is(err, oauth.ErrPublicClient) {
		return apiError(http.StatusConflict, fmt.Errorf("client %s is public and has no secret", id))
	}
	if err != nil {
		return a.clientError(w, id, err)
	}
	return answer(w, http.StatusOK, struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}{id, secret})
}

// clientError answers the errors that any route on one client may meet.
func (a *AdminAPI) clientError(w http.ResponseWriter, id string, err error) error {
	switch {
	case errors.Is(err, oauth.ErrStaticClient):
		return staticConflict(id)
	case errors.Is(err, oauth.ErrNotFound):
		return apiError(http.StatusNotFound, fmt.Errorf("client %s not found", id))
	}
	return a.storeError(w, err)
}

func staticConflict(id string) error {
	return apiError(http.StatusConflict, fmt.Errorf("client %s is defined in the Caddyfile", id))
}

func storedClientObject(rec oauth.StoredClient) clientObject {
	return newClientObject(oauth.ListedClient{Client: rec.Client(), Stored: &rec})
}

// checkSameClientID refuses a PUT body that names a client other than
// id, the client of the path.
func checkSameClientID(id string, body clientBody) error {
	if body.ClientID != nil && *body.ClientID != id {
		return fmt.Errorf("client_id %q differs from the client %q of the path; a client's id cannot change", *body.ClientID, id)
	}
	return nil
}

// updatedClientSpec is what a PUT body says of the client id, which is
// public or not and stays so.
func (a *App) updatedClientSpec(id string, public bool, body clientBody) (oauth.ClientSpec, error) {
	spec := oauth.ClientSpec{ID: id, Public: public}
	if body.Public != nil && *body.Public != spec.Public {
		return oauth.ClientSpec{}, fmt.Errorf("client %q: public cannot change; add a new client instead", id)
	}
	if err := a.fillClientSpec(&spec, body); err != nil {
		return oauth.ClientSpec{}, err
	}
	return spec, nil
}

// fillClientSpec completes spec from body with the defaults of docs/
// operations.md and applies the rules every client keeps, the config's
// included, with the same messages.
func (a *App) fillClientSpec(spec *oauth.ClientSpec, body clientBody) error {
	where := "the new client"
	if spec.ID != "" {
		where = fmt.Sprintf("client %q", spec.ID)
	}
	if body.Name == nil || *body.Name == "" {
		return fmt.Errorf("%s has no name", where)
	}
	if err := checkClientName(*body.Name); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	pkce := ""
	if body.PKCE != nil {
		pkce = *body.PKCE
	}
	rules := clientRules{where: where, public: spec.Public, redirectURIs: body.RedirectURIs, scopes: body.Scopes, pkce: pkce,
		grantTypes: body.GrantTypes}
	if err := a.checkClientRules(rules); err != nil {
		return err
	}
	spec.Name, spec.RedirectURIs, spec.PKCEOptional = *body.Name, body.RedirectURIs, pkce == "optional"
	spec.GrantTypes = dedupe(body.GrantTypes)
	spec.DPoPBoundAccessTokens = body.DPoPBoundAccessTokens != nil && *body.DPoPBoundAccessTokens
	spec.Scopes = dedupe(body.Scopes)
	if len(spec.Scopes) == 0 {
		spec.Scopes = a.scopeNames()
	}
	return nil
}

// Limits of what the admin API stores of a client.
const (
	maxClientIDLen   = 128
	maxClientNameLen = 200
)

// checkClientID accepts 1 to 128 printable ASCII characters without space
// (RFC 6749 A.1 allows the space, but a command line and a log would not
// keep it apart).
func checkClientID(id string) error {
	bad := id == "" || len(id) > maxClientIDLen
	for i := 0; i < len(id) && !bad; i++ {
		bad = id[i] < 0x21 || id[i] > 0x7e
	}
	if bad {
		return fmt.Errorf("client_id must be 1 to %d printable ASCII characters without spaces", maxClientIDLen)
	}
	return nil
}

// checkClientName accepts what the consent page can show as it is.
func checkClientName(name string) error {
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxClientNameLen {
		return fmt.Errorf("name must be valid UTF-8 of at most %d characters", maxClientNameLen)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return errors.New("name must not contain control characters")
		}
	}
	return nil
}

func dedupe(in []string) []string {
	var out []string
	seen := make(map[string]bool, len(in))
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
