package module

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// serveLimit sends r to the endpoints and returns the recorded answer.
func serveLimit(t *testing.T, e *Endpoints, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := e.ServeHTTP(rec, r, nil); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	return rec
}

func oauthErrorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return body.Error
}

// TestParameterLimits: every parameter value the endpoints read is at
// most 8 KiB, and valid UTF-8; otherwise invalid_request, never a 5xx.
// A value of exactly 8 KiB passes the limit and is judged on its merits.
func TestParameterLimits(t *testing.T) {
	env := newLimitEnv(t)
	long := strings.Repeat("x", maxParamBytes+1)
	exact := strings.Repeat("x", maxParamBytes)
	form := func(extra url.Values) *http.Request {
		v := url.Values{"grant_type": {"refresh_token"}, "client_id": {limitClientID}, "client_secret": {limitClientSecret}}
		for k, vals := range extra {
			v[k] = vals
		}
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	jsonReq := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	for _, tc := range []struct {
		name   string
		req    *http.Request
		status int
		code   string
	}{
		{"form value above 8 KiB", form(url.Values{"refresh_token": {long}}), 400, "invalid_request"},
		{"form value of 8 KiB", form(url.Values{"refresh_token": {exact}}), 400, "invalid_grant"},
		{"form value not UTF-8", form(url.Values{"refresh_token": {"tgr_\xff\xfe"}}), 400, "invalid_request"},
		{"form name not UTF-8", form(url.Values{"x\xff": {"1"}}), 400, "invalid_request"},
		{"JSON value above 8 KiB", jsonReq(`{"grant_type":"refresh_token","client_id":"` + limitClientID +
			`","client_secret":"` + limitClientSecret + `","refresh_token":"` + long + `"}`), 400, "invalid_request"},
		{"JSON value not UTF-8", jsonReq("{\"grant_type\":\"refresh_token\",\"refresh_token\":\"\xff\"}"), 400, "invalid_request"},
		{"revoke token above 8 KiB", func() *http.Request {
			r := form(url.Values{"token": {long}})
			r.URL.Path = "/oauth/revoke"
			return r
		}(), 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serveLimit(t, env.e, tc.req)
			if rec.Code != tc.status || oauthErrorCode(t, rec) != tc.code {
				t.Errorf("got %d %s, want %d %s", rec.Code, rec.Body.String(), tc.status, tc.code)
			}
		})
	}
}

// TestScopeLimit: a scope parameter naming more than 64 scopes is
// invalid_scope, at authorize and at refresh; 64 is judged on the scopes
// themselves.
func TestScopeLimit(t *testing.T) {
	env := newLimitEnv(t)
	many := strings.TrimSpace(strings.Repeat("chargers:read ", 65))
	sixtyFour := strings.TrimSpace(strings.Repeat("chargers:read ", 64))

	authorize := func(scope string) (int, string) {
		body, _ := json.Marshal(map[string]string{
			"client_id": limitClientID, "redirect_uri": limitRedirectURI, "response_type": "code",
			"scope": scope, "state": "s", "code_challenge": strings.Repeat("a", 43), "code_challenge_method": "S256",
		})
		r := httptest.NewRequest(http.MethodPost, "/oauth/authorize", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+env.userJWT)
		rec := serveLimit(t, env.e, r)
		return rec.Code, oauthErrorCode(t, rec)
	}
	if status, code := authorize(many); status != 400 || code != "invalid_scope" {
		t.Errorf("authorize with 65 scopes: %d %s, want 400 invalid_scope", status, code)
	}
	if status, _ := authorize(sixtyFour); status != 200 {
		t.Errorf("authorize with 64 (repeated, allowed) scopes: %d, want 200", status)
	}

	client, err := env.e.app.registry.Authenticate(context.Background(), limitClientID, limitClientSecret, true)
	if err != nil {
		t.Fatal(err)
	}
	tokens, oerr := env.e.app.auth.Exchange(context.Background(), client, env.code, limitRedirectURI, env.verifier)
	if oerr != nil {
		t.Fatal(oerr)
	}
	refresh := func(scope string) *httptest.ResponseRecorder {
		v := url.Values{"grant_type": {"refresh_token"}, "client_id": {limitClientID}, "client_secret": {limitClientSecret},
			"refresh_token": {tokens.RefreshToken}, "scope": {scope}}
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return serveLimit(t, env.e, r)
	}
	if rec := refresh(many); rec.Code != 400 || oauthErrorCode(t, rec) != "invalid_scope" {
		t.Errorf("refresh with 65 scopes: %d %s, want 400 invalid_scope", rec.Code, rec.Body.String())
	}
	// The refused request consumed nothing.
	if rec := refresh("chargers:read"); rec.Code != 200 {
		t.Errorf("refresh after the refused one: %d %s, want 200", rec.Code, rec.Body.String())
	}
}

// TestAuthorizePageParameterLimits: the browser flow answers a value
// above 8 KiB or not UTF-8 with a 400 page, never a redirect.
func TestAuthorizePageParameterLimits(t *testing.T) {
	env := newLimitEnv(t)
	for name, q := range map[string]string{
		"state above 8 KiB": "client_id=" + limitClientID + "&state=" + strings.Repeat("s", maxParamBytes+1),
		"scope not UTF-8":   "client_id=" + limitClientID + "&scope=%FF",
	} {
		r := httptest.NewRequest(http.MethodGet, "/oauth/authorize?"+q, nil)
		r.Header.Set("Authorization", "Bearer "+env.userJWT)
		rec := serveLimit(t, env.e, r)
		if rec.Code != 400 || rec.Header().Get("Location") != "" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d, Location %q, type %q", name, rec.Code, rec.Header().Get("Location"), rec.Header().Get("Content-Type"))
		}
	}
}
