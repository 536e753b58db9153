package module

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

const (
	audChargers = "https://api.example.com/chargers"
	audEnergy   = "https://api.example.com/energy"
)

// audienceEnv is the endpoints and two guards of resources, and one of
// none, over the clients endpoint's test app (newSelfEnv): home-app is
// confidential, with chargers:read.
type audienceEnv struct {
	*selfEnv
	chargers, energy, plain *Guard
}

func newAudienceEnv(t *testing.T) *audienceEnv {
	t.Helper()
	env := newSelfEnv(t)
	env.endpoints.Authorize, env.endpoints.Token, env.endpoints.Introspect = "/oauth/authorize", "/oauth/token", "/oauth/introspect"
	env.endpoints.consentPage = defaultConsentTemplate
	rules := map[string][]string{"GET": {"chargers:read"}}
	return &audienceEnv{
		selfEnv:  env,
		chargers: guardFor(t, env.app, audChargers, rules),
		energy:   guardFor(t, env.app, audEnergy, rules),
		plain:    guardFor(t, env.app, "", rules),
	}
}

// post sends a form or JSON body to the endpoints.
func (e *audienceEnv) post(t *testing.T, path, contentType, body string, headers ...string) adminAnswer {
	t.Helper()
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	if err := e.endpoints.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })); err != nil {
		t.Fatal(err)
	}
	return adminAnswer{w.Code, w.Header(), w.Body.String()}
}

// code runs the dashboard flow for home-app with the given resource
// value (a JSON string or array; "" for none) and returns the code.
func (e *audienceEnv) code(t *testing.T, resource string) (string, adminAnswer) {
	t.Helper()
	body := `{"client_id":"home-app","redirect_uri":"https://home.example.com/cb","response_type":"code","scope":"chargers:read",` +
		`"state":"s","code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","code_challenge_method":"S256"`
	if resource != "" {
		body += `,"resource":` + resource
	}
	got := e.post(t, "/oauth/authorize", "application/json", body+"}", "Authorization", "Bearer "+selfUserJWT(t, "alice"))
	var out struct {
		RedirectURL string `json:"redirect_url"`
	}
	_ = json.Unmarshal([]byte(got.body), &out)
	u, _ := url.Parse(out.RedirectURL)
	if u == nil {
		return "", got
	}
	return u.Query().Get("code"), got
}

// token exchanges code, with the form's extra parameters, as home-app.
func (e *audienceEnv) token(t *testing.T, form url.Values) adminAnswer {
	t.Helper()
	form.Set("client_id", "home-app")
	form.Set("client_secret", "home-secret")
	return e.post(t, "/oauth/token", "application/x-www-form-urlencoded", form.Encode())
}

func (e *audienceEnv) accessFor(t *testing.T, resource, tokenResource string) map[string]any {
	t.Helper()
	code, got := e.code(t, resource)
	if code == "" {
		t.Fatalf("authorize with resource %s: %d %s", resource, got.status, got.body)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://home.example.com/cb"},
		"code_verifier": {"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}}
	if tokenResource != "" {
		form.Set("resource", tokenResource)
	}
	tok := e.token(t, form)
	if tok.status != 200 {
		t.Fatalf("token with resource %s/%s: %d %s", resource, tokenResource, tok.status, tok.body)
	}
	return tok.object(t)
}

// guardAnswer is what g answers a GET with the access token.
func guardAnswer(t *testing.T, g *Guard, access string) (int, string) {
	t.Helper()
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+access)
	got := serve(t, g, r)
	if got.passed {
		return http.StatusOK, ""
	}
	return got.status, got.body
}

// TestGuardAudience: a guard of a resource takes only access tokens
// issued for it (RFC 8707), and personal tokens; other tokens are 401
// invalid_token with its resource_metadata; a guard of no resource takes
// every valid token.
func TestGuardAudience(t *testing.T) {
	env := newAudienceEnv(t)
	forChargers := env.accessFor(t, `"`+audChargers+`"`, "")["access_token"].(string)
	forEnergy := env.accessFor(t, `["`+audChargers+`","`+audEnergy+`"]`, audEnergy)["access_token"].(string)
	forNone := env.accessFor(t, "", "")["access_token"].(string)
	forIssuer := env.accessFor(t, `"https://api.example.com"`, "")["access_token"].(string)
	env.app.personal.Scopes = []string{"chargers:read"}
	personal, _, err := env.app.personal.Issue(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, token             string
		chargers, energy, plain int
	}{
		{"issued for chargers", forChargers, 200, 401, 200},
		{"issued for energy, chosen at the token endpoint", forEnergy, 401, 200, 200},
		{"issued for no resource", forNone, 401, 401, 200},
		{"issued for the issuer", forIssuer, 401, 401, 200},
		{"a personal token", personal, 200, 200, 200},
	} {
		for _, g := range []struct {
			guard *Guard
			want  int
		}{{env.chargers, c.chargers}, {env.energy, c.energy}, {env.plain, c.plain}} {
			status, body := guardAnswer(t, g.guard, c.token)
			if status != g.want || (status == 401 && body != bodyInvalidToken) {
				t.Errorf("%s at the guard of %q: %d %s, want %d", c.name, g.guard.Resource, status, body, g.want)
			}
		}
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+forNone)
	w := httptest.NewRecorder()
	_ = env.chargers.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Error("a token of no resource passed the guard of chargers")
		return nil
	}))
	if want := `Bearer realm="tokengate", error="invalid_token", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/chargers"`; w.Header().Get("WWW-Authenticate") != want {
		t.Errorf("challenge %q, want %q", w.Header().Get("WWW-Authenticate"), want)
	}

	// Introspection tells the audience (RFC 7662 2.2).
	for token, want := range map[string]string{forChargers: `"aud":"` + audChargers + `"`, forNone: ""} {
		got := env.post(t, "/oauth/introspect", "application/x-www-form-urlencoded",
			url.Values{"token": {token}, "client_id": {"home-app"}, "client_secret": {"home-secret"}}.Encode())
		if !strings.Contains(got.body, `"active":true`) || (want != "" && !strings.Contains(got.body, want)) || (want == "" && strings.Contains(got.body, `"aud"`)) {
			t.Errorf("introspection: %s, want %q", got.body, want)
		}
	}
}

// TestResourceParameters: authorize takes several resource parameters
// (RFC 8707 2), the exception to the rule on repeated parameters, and
// refuses an unknown one as invalid_target; the token endpoint takes one
// at most.
func TestResourceParameters(t *testing.T) {
	env := newAudienceEnv(t)
	if _, got := env.code(t, `"https://api.example.com/other"`); got.status != 400 || !strings.Contains(got.body, `"error":"invalid_target"`) || !strings.Contains(got.body, "redirect_url") {
		t.Errorf("an unknown resource: %d %s, want invalid_target with a redirect_url", got.status, got.body)
	}
	if _, got := env.code(t, `["`+audChargers+`",7]`); got.status != 400 || !strings.Contains(got.body, `"error":"invalid_request"`) {
		t.Errorf("a resource array with a number: %d %s", got.status, got.body)
	}
	code, _ := env.code(t, `["`+audChargers+`","`+audEnergy+`"]`)
	body := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://home.example.com/cb"},
		"code_verifier": {"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}, "client_id": {"home-app"}, "client_secret": {"home-secret"},
		"resource": {audChargers, audEnergy}}
	got := env.post(t, "/oauth/token", "application/x-www-form-urlencoded", body.Encode())
	if got.status != 400 || !strings.Contains(got.body, `"error":"invalid_request"`) || !strings.Contains(got.body, "resource is given more than once") {
		t.Errorf("two resources at the token endpoint: %d %s", got.status, got.body)
	}

	// The browser flow: the consent page carries each resource, under the
	// CSRF token, and the approval grants them.
	q := url.Values{"client_id": {"home-app"}, "redirect_uri": {"https://home.example.com/cb"}, "response_type": {"code"},
		"scope": {"chargers:read"}, "state": {"s"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
		"code_challenge_method": {"S256"}, "resource": {audChargers, audEnergy}}
	browser := func(method, target, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+selfUserJWT(t, "bob"))
		if body != "" {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		if err := env.endpoints.ServeHTTP(rec, r, nil); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	page := browser("GET", "/oauth/authorize?"+q.Encode(), "")
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(page.Body.String(), -1) {
		form.Add(m[1], html.UnescapeString(m[2]))
	}
	if page.Code != 200 || len(form["resource"]) != 2 || form.Get(csrfField) == "" {
		t.Fatalf("consent page: %d, hidden fields %v", page.Code, form)
	}
	form.Set("decision", "approve")
	changed := url.Values{}
	for k, v := range form {
		changed[k] = v
	}
	changed["resource"] = []string{audChargers}
	if rec := browser("POST", "/oauth/authorize", changed.Encode()); rec.Code != 403 {
		t.Errorf("approval with a resource left out: %d, want 403 (the CSRF token covers the resources)", rec.Code)
	}
	rec := browser("POST", "/oauth/authorize", form.Encode())
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != 302 || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("approval: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	tok := env.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"https://home.example.com/cb"}, "code_verifier": {"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"},
		"resource": {audEnergy}})
	if tok.status != 200 {
		t.Fatalf("token for energy on the browser grant: %d %s", tok.status, tok.body)
	}
	if status, _ := guardAnswer(t, env.energy, tok.object(t)["access_token"].(string)); status != 200 {
		t.Errorf("the energy guard: %d", status)
	}

	q.Set("resource", "https://api.example.com/other")
	rec = browser("GET", "/oauth/authorize?"+q.Encode(), "")
	if loc := rec.Header().Get("Location"); rec.Code != 302 || !strings.Contains(loc, "error=invalid_target") {
		t.Errorf("an unknown resource in the browser flow: %d %s", rec.Code, loc)
	}
}
