package module

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestReadPrompt: the prompt values of OpenID Connect Core 3.1.2.1.
func TestReadPrompt(t *testing.T) {
	on := &App{OpenID: &OpenIDConfig{}}
	for _, c := range []struct {
		values []string
		want   prompt
		err    string
	}{
		{nil, prompt{}, ""},
		{[]string{"none"}, prompt{none: true}, ""},
		{[]string{"consent"}, prompt{consent: true}, ""},
		{[]string{"login"}, prompt{consent: true}, ""},
		{[]string{"login consent"}, prompt{consent: true}, ""},
		{[]string{"select_account"}, prompt{}, ""},
		{[]string{"unheard-of"}, prompt{}, ""},
		{[]string{""}, prompt{}, ""},
		{[]string{"none consent"}, prompt{}, "prompt none cannot be combined with other values"},
		{[]string{"none select_account"}, prompt{}, "prompt none cannot be combined with other values"},
		{[]string{"none", "none"}, prompt{}, "prompt is given more than once"},
	} {
		got, err := on.readPrompt(c.values)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.values, err)
		case c.err != "" && (err == nil || err.Code != "invalid_request" || err.Description != c.err):
			t.Errorf("%q: error %v, want invalid_request %q", c.values, err, c.err)
		case got != c.want:
			t.Errorf("%q: %+v, want %+v", c.values, got, c.want)
		}
	}
	// Without openid the parameter is not one tokengate reads.
	if got, err := (&App{}).readPrompt([]string{"none consent"}); err != nil || got != (prompt{}) {
		t.Errorf("openid off: %+v %v", got, err)
	}
}

// TestPromptBrowserFlow: prompt on the browser flow's GET (OpenID Connect
// Core 3.1.2.1, 3.1.2.6).
func TestPromptBrowserFlow(t *testing.T) {
	env := newOIDCEnv(t, nil)
	user := env.userJWT(t, oidcUser, nil)
	scope := "openid chargers:read"

	// No consent yet: prompt=none may not show the page.
	q := redirectParams(t, env.get(t, authorizeQuery(scope, "prompt", "none"), user))
	if q.Get("error") != "consent_required" || q.Get("state") != "st" || q.Get("code") != "" {
		t.Errorf("prompt=none without consent: %v", q)
	}
	// No user: login_required, not the login page.
	q = redirectParams(t, env.get(t, authorizeQuery(scope, "prompt", "none"), ""))
	if q.Get("error") != "login_required" || q.Get("code") != "" {
		t.Errorf("prompt=none without a user: %v", q)
	}
	// ... but a bad client is never redirected to.
	bad := authorizeQuery(scope, "prompt", "none")
	bad.Set("redirect_uri", "https://evil.example.com/cb")
	if rec := env.get(t, bad, ""); rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
		t.Errorf("prompt=none, unregistered redirect_uri: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	// none with another value.
	q = redirectParams(t, env.get(t, authorizeQuery(scope, "prompt", "none consent"), user))
	if q.Get("error") != "invalid_request" {
		t.Errorf("prompt=none consent: %v", q)
	}

	// The consent page, then Approve.
	rec := env.get(t, authorizeQuery(scope), user)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Confirm who you are") {
		t.Fatalf("consent page: %d %s", rec.Code, rec.Body)
	}
	env.approve(t, rec.Body.String(), user)

	// Consent given: no page, with or without prompt=none.
	for _, p := range []string{"", "none", "select_account"} {
		q = redirectParams(t, env.get(t, authorizeQuery(scope, "prompt", p), user))
		if q.Get("code") == "" {
			t.Errorf("prompt=%q after consent: %v", p, q)
		}
	}
	// prompt=consent and prompt=login show the page all the same.
	for _, p := range []string{"consent", "login"} {
		if rec := env.get(t, authorizeQuery(scope, "prompt", p), user); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `name="csrf_token"`) {
			t.Errorf("prompt=%s after consent: %d %s", p, rec.Code, rec.Header().Get("Location"))
		}
	}
}

// TestNonceInConsentForm: the consent form carries the nonce, and its CSRF
// token covers it, so the POST cannot swap it.
func TestNonceInConsentForm(t *testing.T) {
	env := newOIDCEnv(t, nil)
	user := env.userJWT(t, oidcUser, nil)
	rec := env.get(t, authorizeQuery("openid", "nonce", "n-0S6_WzA2Mj"), user)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `name="nonce" value="n-0S6_WzA2Mj"`) {
		t.Fatalf("consent page: %d %s", rec.Code, rec.Body)
	}
	form := hiddenFields(t, rec.Body.String())
	form.Set("nonce", "another")
	form.Set("decision", "approve")
	if got := env.post(t, form, user); got.Code != http.StatusForbidden {
		t.Errorf("swapped nonce: %d, want 403", got.Code)
	}
}

// TestPromptDashboardFlow: prompt=none on the dashboard flow, whose POST
// is otherwise the user's consent.
func TestPromptDashboardFlow(t *testing.T) {
	env := newOIDCEnv(t, nil)
	user := env.userJWT(t, oidcUser, nil)
	scope := "openid chargers:read"
	answer := func(rec interface{ Result() *http.Response }) (int, url.Values) {
		t.Helper()
		resp := rec.Result()
		var body struct {
			Error       string `json:"error"`
			RedirectURL string `json:"redirect_url"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(body.RedirectURL)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, u.Query()
	}
	if status, q := answer(env.postJSON(t, authorizeQuery(scope, "prompt", "none"), user)); status != 400 || q.Get("error") != "consent_required" {
		t.Errorf("prompt=none without consent: %d %v", status, q)
	}
	if status, q := answer(env.postJSON(t, authorizeQuery(scope, "prompt", "none"), "")); status != 400 || q.Get("error") != "login_required" || q.Get("state") != "st" {
		t.Errorf("prompt=none without a user: %d %v", status, q)
	}
	// Without prompt=none, no user is the 401 it always was.
	if rec := env.postJSON(t, authorizeQuery(scope), ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("no user: %d", rec.Code)
	}
	if status, q := answer(env.postJSON(t, authorizeQuery(scope), user)); status != 200 || q.Get("code") == "" {
		t.Errorf("consenting post: %d %v", status, q)
	}
	if status, q := answer(env.postJSON(t, authorizeQuery(scope, "prompt", "none"), user)); status != 200 || q.Get("code") == "" {
		t.Errorf("prompt=none after consent: %d %v", status, q)
	}
}
