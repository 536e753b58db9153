package module

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

const (
	limitUserSecret   = "body-limit-test-user-jwt-secret-0123456789"
	limitClientID     = "home-app"
	limitClientSecret = "home-app-secret"
	limitRedirectURI  = "https://home.example.com/callback"
	limitScope        = "chargers:read sessions:read"
	limitUser         = "user-body-limit"
)

// newLimitEndpoints returns the endpoints over a fresh SQLite store, with
// one confidential client and HS256 user JWTs, as Provision would set them up.
func newLimitEndpoints(t *testing.T) *Endpoints {
	t.Helper()
	app := &App{
		Issuer:   "https://api.example.com",
		Scopes:   []ScopeConfig{{Name: "chargers:read"}, {Name: "sessions:read"}},
		Clients:  []ClientConfig{{ID: limitClientID, Secret: limitClientSecret, RedirectURIs: []string{limitRedirectURI}}},
		stateKey: "body-limit:" + t.Name(),
		metrics:  tokengateMetrics(),
		logger:   zap.NewNop(),
		Users:    &UsersConfig{},

		PersonalTokenScopes: []string{"chargers:read", "sessions:read"},
	}
	startOnTestStore(t, app)
	var err error
	if app.users, err = oauth.NewUserVerifier(oauth.UserVerifierConfig{HS256Secret: []byte(limitUserSecret)}); err != nil {
		t.Fatal(err)
	}
	return &Endpoints{
		Authorize:   "/oauth/authorize",
		Token:       "/oauth/token",
		Revoke:      "/oauth/revoke",
		Introspect:  "/oauth/introspect",
		APIToken:    "/api-token",
		app:         app,
		logger:      zap.NewNop(),
		consentPage: defaultConsentTemplate,
	}
}

func limitUserJWT(t *testing.T) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": limitUser, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(limitUserSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// chunkedRequest builds a request whose body has no declared length, as a
// chunked HTTP/1.1 body arrives: Content-Length -1 and a reader that does
// not reveal its size.
func chunkedRequest(method, target, body string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader(body)))
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

// padChunk is the most padding one parameter carries: every value must
// stay within the 8 KiB a parameter may have.
const padChunk = 8000

// padForm returns the form-encoded params followed by pad parameters
// (pad0, pad1, ...) making the body exactly size bytes long.
func padForm(t *testing.T, params url.Values, size int) string {
	t.Helper()
	s := params.Encode()
	for i := 0; len(s) < size; i++ {
		s += "&pad" + strconv.Itoa(i) + "="
		s += strings.Repeat("x", max(0, min(padChunk, size-len(s))))
	}
	if len(s) != size {
		t.Fatalf("form of %d bytes does not fit in %d", len(s), size)
	}
	return s
}

// padJSON returns a JSON object of params with pad members making it
// exactly size bytes long.
func padJSON(t *testing.T, params map[string]string, size int) string {
	t.Helper()
	b, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b[:len(b)-1])
	for i := 0; ; i++ {
		s += `,"pad` + strconv.Itoa(i) + `":"`
		if room := size - len(s) - 2; room <= padChunk {
			if room < 0 {
				t.Fatalf("object does not fit in %d bytes", size)
			}
			return s + strings.Repeat("x", room) + `"}`
		}
		s += strings.Repeat("x", padChunk) + `"`
	}
}

// limitEnv is what one case starts from: a personal token and an access
// token of limitUser, and a fresh authorization code with its verifier.
type limitEnv struct {
	e                *Endpoints
	userJWT          string
	personal, access string
	code, verifier   string
	csrf             string
}

func newLimitEnv(t *testing.T) *limitEnv {
	t.Helper()
	ctx := context.Background()
	env := &limitEnv{e: newLimitEndpoints(t), userJWT: limitUserJWT(t)}
	var err error
	if env.personal, _, err = env.e.app.personal.Issue(ctx, limitUser); err != nil {
		t.Fatal(err)
	}
	client, err := env.e.app.registry.Authenticate(ctx, limitClientID, limitClientSecret, true)
	if err != nil {
		t.Fatal(err)
	}
	code, verifier := env.authorize(t)
	resp, oerr := env.e.app.auth.Exchange(ctx, client, code, limitRedirectURI, verifier)
	if oerr != nil {
		t.Fatal(oerr)
	}
	env.access = resp.AccessToken
	env.code, env.verifier = env.authorize(t)
	key, err := env.e.app.auth.DeriveKey(ctx, consentKeyPurpose)
	if err != nil {
		t.Fatal(err)
	}
	env.csrf = consentCSRFToken(key, limitUser, env.consentParams(), time.Now().Add(consentCSRFTTL))
	return env
}

// authorize issues a code for limitUser (which records the consent, so
// tests of consent use another scope set) and returns it with its verifier.
func (env *limitEnv) authorize(t *testing.T) (code, verifier string) {
	t.Helper()
	verifier = strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	code, oerr, _ := env.e.app.auth.Authorize(context.Background(), oauth.AuthorizeRequest{
		ClientID: limitClientID, RedirectURI: limitRedirectURI, ResponseType: "code",
		Scope: "chargers:read", State: "s", UserID: limitUser,
		CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), CodeChallengeMethod: "S256",
	})
	if oerr != nil {
		t.Fatal(oerr)
	}
	return code, verifier
}

// consentParams is an authorization request for a scope the user has not
// consented to yet.
func (env *limitEnv) consentParams() pageParams {
	sum := sha256.Sum256([]byte(strings.Repeat("c", 43)))
	return pageParams{
		ClientID: limitClientID, RedirectURI: limitRedirectURI, ResponseType: "code",
		Scope: limitScope, State: "st",
		CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), CodeChallengeMethod: "S256",
	}
}

func (env *limitEnv) tokenValid(t *testing.T, text string) bool {
	t.Helper()
	_, err := env.e.app.state.validator.Validate(context.Background(), text)
	return err == nil
}

func (env *limitEnv) needsConsent(t *testing.T) bool {
	t.Helper()
	need, err := env.e.app.auth.NeedsConsent(context.Background(), limitUser, limitClientID, strings.Fields(limitScope))
	if err != nil {
		t.Fatal(err)
	}
	return need
}

// TestBodyLimitChunked: the contract limits every body the endpoints read
// to 64 KiB. A body sent without Content-Length (chunked) one byte above
// it gets 413 and changes nothing; the same request at exactly the limit
// is served, which shows the refused one would otherwise have acted.
func TestBodyLimitChunked(t *testing.T) {
	clientAuth := []string{"Content-Type", "application/x-www-form-urlencoded"}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(limitClientID+":"+limitClientSecret))
	cases := []struct {
		name string
		// request is the case's request with a body of size bytes.
		request func(t *testing.T, env *limitEnv, size int) *http.Request
		// served is the status of the request at the limit.
		served int
		// acted reports whether the request had its effect; nil when
		// the request at the limit being served is the proof.
		acted func(t *testing.T, env *limitEnv) bool
	}{
		{
			name: "api_token POST does not rotate",
			request: func(t *testing.T, env *limitEnv, size int) *http.Request {
				return chunkedRequest("POST", "/api-token", strings.Repeat("x", size), "Authorization", "Bearer "+env.userJWT)
			},
			served: http.StatusCreated,
			acted:  func(t *testing.T, env *limitEnv) bool { return !env.tokenValid(t, env.personal) },
		},
		{
			name: "api_token DELETE does not deactivate",
			request: func(t *testing.T, env *limitEnv, size int) *http.Request {
				return chunkedRequest("DELETE", "/api-token", strings.Repeat("x", size), "Authorization", "Bearer "+env.userJWT)
			},
			served: http.StatusNoContent,
			acted:  func(t *testing.T, env *limitEnv) bool { return !env.tokenValid(t, env.personal) },
		},
		{
			name: "token does not consume the code",
			request: func(t *testing.T, env *limitEnv, size int) *http.Request {
				body := padForm(t, url.Values{
					"grant_type": {"authorization_code"}, "code": {env.code},
					"redirect_uri": {limitRedirectURI}, "code_verifier": {env.verifier},
				}, size)
				return chunkedRequest("POST", "/oauth/token", body, append(clientAuth, "Authorization", basic)...)
			},
			// A consumed code would get invalid_grant: the exchange at the
			// limit succeeding shows the refused one left the code alone.
			served: http.StatusOK,
		},
		{
			name: "revoke leaves the token valid",
			request: func(t *testing.T, env *limitEnv, size int) *http.Request {
				body := padForm(t, url.Values{
					"token": {env.access}, "client_id": {limitClientID}, "client_secret": {limitClientSecret},
				}, size)
				return chunkedRequest("POST", "/oauth/revoke", body, clientAuth...)
			},
			served: http.StatusOK,
			acted:  func(t *testing.T, env *limitEnv) bool { return !env.tokenValid(t, env.access) },
		},
		{
			name: "introspect",
			request: func(t *testing.T, env *limitEnv, size int) *http.Request {
				body := padForm(t, url.Values{"token": {env.access}}, size)
				return chunkedRequest("POST", "/oauth/introspect", body, append(clientAuth, "Authorization", basic)...)
			},
			served: http.StatusOK,
		},
		{
			name: "authorize JSON records no consent",
			request: func(t *testing.T, env *limitEnv, size int) *http.Request {
				p := env.consentParams()
				body := padJSON(t, map[string]string{
					"client_id": p.ClientID, "redirect_uri": p.RedirectURI, "response_type": p.ResponseType,
					"scope": p.Scope, "state": p.State,
					"code_challenge": p.CodeChallenge, "code_challenge_method": p.CodeChallengeMethod,
				}, size)
				return chunkedRequest("POST", "/oauth/authorize", body,
					"Content-Type", "application/json", "Authorization", "Bearer "+env.userJWT)
			},
			served: http.StatusOK,
			acted:  func(t *testing.T, env *limitEnv) bool { return !env.needsConsent(t) },
		},
		{
			name: "consent form Approve records no consent",
			request: func(t *testing.T, env *limitEnv, size int) *http.Request {
				form := url.Values{csrfField: {env.csrf}, "decision": {"approve"}}
				p := env.consentParams()
				for i, v := range p.values() {
					form.Set(pageParamNames[i], v)
				}
				return chunkedRequest("POST", "/oauth/authorize", padForm(t, form, size),
					"Content-Type", "application/x-www-form-urlencoded", "Authorization", "Bearer "+env.userJWT)
			},
			served: http.StatusFound,
			acted:  func(t *testing.T, env *limitEnv) bool { return !env.needsConsent(t) },
		},
	}
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Error("an endpoint request reached the next handler")
		return nil
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newLimitEnv(t)
			w := httptest.NewRecorder()
			if err := env.e.ServeHTTP(w, c.request(t, env, maxBodyBytes+1), next); err != nil {
				t.Fatal(err)
			}
			if w.Code != http.StatusRequestEntityTooLarge {
				// The body is not shown: it could hold a new token.
				t.Fatalf("one byte over the limit: %d, want 413", w.Code)
			}
			if want := `{"error":"invalid_request","error_description":"request body too large"}`; w.Header().Get("Content-Type") == "application/json" && w.Body.String() != want {
				t.Errorf("body %s, want %s", w.Body, want)
			}
			if c.acted != nil && c.acted(t, env) {
				t.Fatal("the refused request changed state")
			}
			if !env.tokenValid(t, env.personal) || !env.tokenValid(t, env.access) {
				t.Fatal("a token stopped working after a refused request")
			}

			w = httptest.NewRecorder()
			if err := env.e.ServeHTTP(w, c.request(t, env, maxBodyBytes), next); err != nil {
				t.Fatal(err)
			}
			if w.Code != c.served {
				t.Fatalf("at the limit: %d, want %d", w.Code, c.served)
			}
			if c.acted != nil && !c.acted(t, env) {
				t.Fatal("the request at the limit had no effect, so the refusal proves nothing")
			}
		})
	}
}

// TestAPITokenDeclaredLengthOverLimit: a declared Content-Length above the
// limit is refused before the body is read, as before.
func TestAPITokenDeclaredLengthOverLimit(t *testing.T) {
	env := newLimitEnv(t)
	r := httptest.NewRequest("POST", "/api-token", strings.NewReader(strings.Repeat("x", maxBodyBytes+1)))
	r.Header.Set("Authorization", "Bearer "+env.userJWT)
	w := httptest.NewRecorder()
	if err := env.e.serveAPIToken(w, r); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusRequestEntityTooLarge || !env.tokenValid(t, env.personal) {
		t.Fatalf("got %d, token still valid %v; want 413 and the old token", w.Code, env.tokenValid(t, env.personal))
	}
}
