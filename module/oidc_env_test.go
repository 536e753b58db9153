package module

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

const (
	oidcUserSecret  = "oidc-test-user-jwt-secret-0123456789abcdef"
	oidcClientID    = "rp"
	oidcSecret      = "rp-secret"
	oidcRedirectURI = "https://rp.example.com/callback"
	oidcUser        = "user-oidc"
	oidcIssuer      = "https://api.example.com"
)

// oidcEnv is the endpoints of an app with openid on, over a fresh SQLite
// store, with one confidential client and HS256 user JWTs.
type oidcEnv struct {
	e *Endpoints
}

func newOIDCEnv(t *testing.T, edit func(*App)) *oidcEnv {
	t.Helper()
	app := &App{
		Issuer:   oidcIssuer,
		Scopes:   []ScopeConfig{{Name: "chargers:read"}},
		Clients:  []ClientConfig{{ID: oidcClientID, Secret: oidcSecret, RedirectURIs: []string{oidcRedirectURI}}},
		OpenID:   &OpenIDConfig{},
		stateKey: "oidc:" + t.Name(),
		metrics:  tokengateMetrics(),
		logger:   zap.NewNop(),
		Users:    &UsersConfig{JWTSecret: oidcUserSecret},
	}
	if edit != nil {
		edit(app)
	}
	if err := app.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := app.provisionSigning(nil); err != nil {
		t.Fatal(err)
	}
	startOnTestStore(t, app)
	if app.needsSigningKeys() {
		alg, rotation, maxTTL := app.signingSettings()
		ring, err := oauth.NewKeyRing(app.state.store, alg, rotation, maxTTL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ring.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		app.keys = &sharedKeyRing{ring: ring}
		app.use(app.state) // again, with the ring
	}
	var err error
	if app.users, err = oauth.NewUserVerifier(oauth.UserVerifierConfig{HS256Secret: []byte(oidcUserSecret)}); err != nil {
		t.Fatal(err)
	}
	return &oidcEnv{e: &Endpoints{
		Authorize:   "/oauth/authorize",
		Token:       "/oauth/token",
		Revoke:      "/oauth/revoke",
		Introspect:  "/oauth/introspect",
		APIToken:    "/api-token",
		Userinfo:    "/oauth/userinfo",
		JWKS:        "/.well-known/jwks.json",
		app:         app,
		logger:      zap.NewNop(),
		consentPage: defaultConsentTemplate,
	}}
}

// userJWT is the IdP's JWT for user, with extra claims.
func (env *oidcEnv) userJWT(t *testing.T, user string, extra jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": user, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(oidcUserSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// oidcVerifier is the PKCE verifier of every request below.
var oidcVerifier = strings.Repeat("oidc-verifier-", 4)

// authorizeQuery is a browser-flow request for scope, with extra
// parameters given as name, value pairs.
func authorizeQuery(scope string, extra ...string) url.Values {
	sum := sha256.Sum256([]byte(oidcVerifier))
	q := url.Values{
		"client_id": {oidcClientID}, "redirect_uri": {oidcRedirectURI}, "response_type": {"code"},
		"scope": {scope}, "state": {"st"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// get runs a browser-flow GET with the user's JWT (none when userJWT is
// empty).
func (env *oidcEnv) get(t *testing.T, q url.Values, userJWT string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/oauth/authorize?"+q.Encode(), nil)
	if userJWT != "" {
		r.Header.Set("Authorization", "Bearer "+userJWT)
	}
	rec := httptest.NewRecorder()
	if err := env.e.serveAuthorizePage(rec, r); err != nil {
		t.Fatal(err)
	}
	return rec
}

// postJSON runs a dashboard-flow POST of the parameters of q.
func (env *oidcEnv) postJSON(t *testing.T, q url.Values, userJWT string) *httptest.ResponseRecorder {
	t.Helper()
	body := "{"
	for k := range q {
		if body != "{" {
			body += ","
		}
		body += `"` + k + `":"` + q.Get(k) + `"`
	}
	body += "}"
	r := httptest.NewRequest(http.MethodPost, "/oauth/authorize", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if userJWT != "" {
		r.Header.Set("Authorization", "Bearer "+userJWT)
	}
	rec := httptest.NewRecorder()
	if err := env.e.serveAuthorizeJSON(rec, r); err != nil {
		t.Fatal(err)
	}
	return rec
}

// redirectParams returns the query of a browser-flow 302 to the client.
func redirectParams(t *testing.T, rec *httptest.ResponseRecorder) url.Values {
	t.Helper()
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusFound || !strings.HasPrefix(loc, oidcRedirectURI+"?") {
		t.Fatalf("got %d Location %q, want a redirect to the client: %s", rec.Code, loc, rec.Body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// hiddenFields reads the consent form's hidden fields.
func hiddenFields(t *testing.T, page string) url.Values {
	t.Helper()
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if form.Get(csrfField) == "" {
		t.Fatalf("no consent form in %s", page)
	}
	return form
}

// post sends the consent form.
func (env *oidcEnv) post(t *testing.T, form url.Values, userJWT string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth/authorize", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", "Bearer "+userJWT)
	rec := httptest.NewRecorder()
	if err := env.e.serveConsentDecision(rec, r); err != nil {
		t.Fatal(err)
	}
	return rec
}

// approve posts Approve on the consent page and returns the code.
func (env *oidcEnv) approve(t *testing.T, page, userJWT string) string {
	t.Helper()
	form := hiddenFields(t, page)
	form.Set("decision", "approve")
	code := redirectParams(t, env.post(t, form, userJWT)).Get("code")
	if code == "" {
		t.Fatal("Approve gave no code")
	}
	return code
}

// issue runs the dashboard flow for scope with a user JWT carrying
// claims, then the code exchange, and returns the token response.
func (env *oidcEnv) issue(t *testing.T, scope string, claims jwt.MapClaims, extra ...string) oauth.TokenResponse {
	t.Helper()
	rec := env.postJSON(t, authorizeQuery(scope, extra...), env.userJWT(t, oidcUser, claims))
	var body struct {
		RedirectURL string `json:"redirect_url"`
	}
	if err := json.NewDecoder(rec.Body).Decode(&body); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("authorize: %d %v", rec.Code, err)
	}
	u, err := url.Parse(body.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	return env.exchange(t, u.Query().Get("code"))
}

// exchange redeems a code through the token endpoint's handler.
func (env *oidcEnv) exchange(t *testing.T, code string) oauth.TokenResponse {
	t.Helper()
	return env.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {oidcRedirectURI}, "code_verifier": {oidcVerifier}})
}

// token posts form to the token endpoint as the confidential client and
// returns the successful answer.
func (env *oidcEnv) token(t *testing.T, form url.Values) oauth.TokenResponse {
	t.Helper()
	form.Set("client_id", oidcClientID)
	form.Set("client_secret", oidcSecret)
	r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	if err := env.e.serveToken(rec, r); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("token endpoint: %d %s", rec.Code, rec.Body)
	}
	var resp oauth.TokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	// The JSON itself: no refresh_token member when there is none.
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if _, present := raw["refresh_token"]; present != (resp.RefreshToken != "") {
		t.Fatalf("refresh_token member present %v for %q", present, resp.RefreshToken)
	}
	return resp
}

// serve runs a request through the endpoints handler, with next
// answering 404 "next".
func (env *oidcEnv) serve(t *testing.T, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		http.Error(w, "next", http.StatusNotFound)
		return nil
	})
	if err := env.e.ServeHTTP(rec, r, next); err != nil {
		t.Fatal(err)
	}
	return rec
}
