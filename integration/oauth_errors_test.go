package integration

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
)

// trustLoopbackProxy makes Caddy take the client IP from X-Forwarded-For,
// so that each case can come from an address of its own.
const trustLoopbackProxy = `servers {
		trusted_proxies static 127.0.0.1/32
	}`

const formType = "application/x-www-form-urlencoded"

func startOAuthGateway(t *testing.T) *gateway {
	return startGatewayWith(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients, trustLoopbackProxy)
}

// TestOAuthRequestErrors: method, size, media type, duplicate and query
// parameters (docs/reference.md).
func TestOAuthRequestErrors(t *testing.T) {
	g := startOAuthGateway(t)
	basic := basicAuth("home-app", homeSecret)
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect"} {
		r := do(t, "GET", g.base+path, "")
		expectOAuthError(t, r, 405, "invalid_request")
		if r.header.Get("Allow") != "POST" {
			t.Errorf("%s: Allow %q", path, r.header.Get("Allow"))
		}
		big := "token=" + strings.Repeat("a", 64<<10)
		expectOAuthError(t, do(t, "POST", g.base+path, big, append(basic, "Content-Type", formType)...), 413, "invalid_request")
		expectOAuthError(t, do(t, "POST", g.base+path, "token=a&token=b", append(basic, "Content-Type", formType)...), 400, "invalid_request")
		expectOAuthError(t, do(t, "POST", g.base+path, `{"token":"a","token":"b"}`, append(basic, "Content-Type", "application/json")...), 400, "invalid_request")
		expectOAuthError(t, do(t, "POST", g.base+path, "token=a", append(basic, "Content-Type", "text/plain")...), 400, "invalid_request")
	}
	// Only the body counts: grant_type in the query is ignored.
	r := do(t, "POST", g.base+"/oauth/token?grant_type=refresh_token", "refresh_token=x", append(basic, "Content-Type", formType)...)
	expectOAuthError(t, r, 400, "invalid_request")
	if d := r.decode(t)["error_description"]; d != "grant_type is required" {
		t.Errorf("description %v", d)
	}
	// ... and so are client credentials there.
	r = do(t, "POST", g.base+"/oauth/token?client_id=home-app&client_secret="+homeSecret, "grant_type=refresh_token",
		"Content-Type", formType, "X-Forwarded-For", "198.51.100.200")
	expectOAuthError(t, r, 401, "invalid_client")

	expectOAuthError(t, tokenRequest(t, g, url.Values{"grant_type": {"password"}}, basic...), 400, "unsupported_grant_type")
	expectOAuthError(t, tokenRequest(t, g, url.Values{}, basic...), 400, "invalid_request")
	// A grant this client's grant types leave out (RFC 6749 5.2).
	r = do(t, "POST", g.base+"/oauth/token", `{"grant_type":"client_credentials"}`, append(basic, "Content-Type", "application/json")...)
	expectOAuthError(t, r, 400, "unauthorized_client")
}

// TestOAuthClientAuthentication: client authentication failures, and the
// slow-down per remote address.
func TestOAuthClientAuthentication(t *testing.T) {
	g := startOAuthGateway(t)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	from := func(ip string, h ...string) []string { return append(h, "X-Forwarded-For", ip) }

	cases := []struct {
		name    string
		headers []string
		body    url.Values
		status  int
		code    string
		basic   bool
	}{
		{"basic wrong secret", basicAuth("home-app", "wrong"), nil, 401, "invalid_client", true},
		{"basic unknown client", basicAuth("nobody", "wrong"), nil, 401, "invalid_client", true},
		{"basic malformed", []string{"Authorization", "Basic %%%"}, nil, 401, "invalid_client", true},
		{"post wrong secret", nil, url.Values{"client_id": {"home-app"}, "client_secret": {"wrong"}}, 401, "invalid_client", false},
		{"post missing secret", nil, url.Values{"client_id": {"home-app"}}, 401, "invalid_client", false},
		{"no credentials", nil, nil, 401, "invalid_client", false},
		{"public client with secret", nil, url.Values{"client_id": {"mobile"}, "client_secret": {"x"}}, 401, "invalid_client", false},
		{"both methods", basicAuth("home-app", homeSecret), url.Values{"client_id": {"home-app"}, "client_secret": {homeSecret}}, 400, "invalid_request", false},
	}
	for i, c := range cases {
		body := maps.Clone(form)
		maps.Copy(body, c.body)
		r := tokenRequest(t, g, body, from("198.51.100."+strconv.Itoa(i+1), c.headers...)...)
		if r.status != c.status || r.decode(t)["error"] != c.code {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
			continue
		}
		checkNoStore(t, r)
		if c.code == "invalid_client" && r.body != `{"error":"invalid_client"}` {
			t.Errorf("%s: body %s", c.name, r.body)
		}
		if got, want := r.header.Get("WWW-Authenticate"), map[bool]string{true: `Basic realm="tokengate"`}[c.basic]; got != want {
			t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, got, want)
		}
	}

	// Ten failures from one address: the eleventh request gets 429, even
	// with good credentials of any client; another address still works.
	attacker := "203.0.113.66"
	for i := range 10 {
		r := tokenRequest(t, g, form, from(attacker, basicAuth("client-"+strconv.Itoa(i), "guess")...)...)
		expectOAuthError(t, r, 401, "invalid_client")
	}
	for _, h := range [][]string{basicAuth("home-app", homeSecret), basicAuth("other-app", "other-secret")} {
		r := tokenRequest(t, g, form, from(attacker, h...)...)
		if r.status != 429 {
			t.Fatalf("after 10 failures: %d %s", r.status, r.body)
		}
		checkNoStore(t, r)
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	r := tokenRequest(t, g, form, from("203.0.113.67", basicAuth("home-app", homeSecret)...)...)
	expectOAuthError(t, r, 400, "invalid_grant") // authenticated; the grant is bad

	// The counts live with the store, so a reload keeps them.
	loadCaddyfile(t, g.caddyfile)
	waitReady(t, g.base+"/")
	if r := tokenRequest(t, g, form, from(attacker, basicAuth("home-app", homeSecret)...)...); r.status != 429 {
		t.Errorf("after a reload: %d %s", r.status, r.body)
	}
}

// TestOAuthGrantErrors: the token endpoint's invalid_grant and invalid_scope
// cases.
func TestOAuthGrantErrors(t *testing.T) {
	g := startOAuthGateway(t)
	basic := basicAuth("home-app", homeSecret)
	chargers := g.base + "/functions/v1/api/chargers"
	exchange := func(code, redirect, verifier string, h ...string) response {
		return tokenRequest(t, g, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {redirect}, "code_verifier": {verifier}}, h...)
	}

	verifier := oauth2.GenerateVerifier()
	code := authorizeJSON(t, g, "user-errors", "home-app", homeRedirect, "chargers:read sessions:read", verifier)
	expectOAuthError(t, exchange(code, homeRedirect, oauth2.GenerateVerifier(), basic...), 400, "invalid_grant")
	expectOAuthError(t, exchange(code, homeRedirect, "short", basic...), 400, "invalid_grant")
	expectOAuthError(t, exchange(code, "https://home.example.com/cb2", verifier, basic...), 400, "invalid_grant")
	expectOAuthError(t, exchange(code, homeRedirect, verifier, basicAuth("other-app", "other-secret")...), 400, "invalid_grant")
	// None of those consumed the code.
	access, refresh := exchangeCode(t, g, code, verifier)
	// A second exchange fails and revokes what the first one issued.
	expectOAuthError(t, exchange(code, homeRedirect, verifier, basic...), 400, "invalid_grant")
	if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+access); r.status != 401 {
		t.Errorf("token of a replayed code: %d", r.status)
	}
	expectOAuthError(t, tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, basic...), 400, "invalid_grant")

	verifier = oauth2.GenerateVerifier()
	code = authorizeJSON(t, g, "user-errors", "home-app", homeRedirect, "chargers:read sessions:read", verifier)
	access, refresh = exchangeCode(t, g, code, verifier)
	// Kinds are not interchangeable.
	if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+refresh); r.status != 401 {
		t.Errorf("refresh token as bearer: %d", r.status)
	}
	refreshWith := func(tok, scope string, h ...string) response {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}
		if scope != "" {
			v.Set("scope", scope)
		}
		return tokenRequest(t, g, v, h...)
	}
	expectOAuthError(t, refreshWith(access, "", basic...), 400, "invalid_grant")
	expectOAuthError(t, refreshWith(refresh, "", basicAuth("other-app", "other-secret")...), 400, "invalid_grant")
	expectOAuthError(t, refreshWith(refresh, "chargers:read energy:read", basic...), 400, "invalid_scope")
	expectOAuthError(t, refreshWith("tgr_garbage", "", basic...), 400, "invalid_grant")
	// Still usable, with a narrower scope.
	r := refreshWith(refresh, "chargers:read", basic...)
	if r.status != 200 || r.decode(t)["scope"] != "chargers:read" {
		t.Fatalf("narrower refresh: %d %s", r.status, r.body)
	}
	narrow := r.decode(t)["access_token"].(string)
	if r := do(t, "GET", g.base+"/functions/v1/api/sessions", "", "Authorization", "Bearer "+narrow); r.status != 403 {
		t.Errorf("narrowed token on a dropped scope: %d", r.status)
	}
}

// TestOAuthRevokeAndIntrospect: revocation and introspection between two
// clients.
func TestOAuthRevokeAndIntrospect(t *testing.T) {
	g := startOAuthGateway(t)
	basic := basicAuth("home-app", homeSecret)
	other := basicAuth("other-app", "other-secret")
	chargers := g.base + "/functions/v1/api/chargers"
	post := func(path string, v url.Values, h ...string) response {
		return do(t, "POST", g.base+path, v.Encode(), append(h, "Content-Type", formType)...)
	}

	verifier := oauth2.GenerateVerifier()
	code := authorizeJSON(t, g, "user-ri", "home-app", homeRedirect, "chargers:read", verifier)
	access, refresh := exchangeCode(t, g, code, verifier)

	r := post("/oauth/introspect", url.Values{"token": {access}}, basic...)
	m := r.decode(t)
	if r.status != 200 || m["active"] != true || m["client_id"] != "home-app" || m["sub"] != "user-ri" ||
		m["scope"] != "chargers:read" || m["token_type"] != "Bearer" || m["exp"] == nil || m["iat"] == nil {
		t.Fatalf("introspect own token: %d %s", r.status, r.body)
	}
	checkNoStore(t, r)
	if r := post("/oauth/introspect", url.Values{"token": {refresh}}, basic...); r.decode(t)["active"] != true {
		t.Errorf("introspect own refresh token: %s", r.body)
	}
	for _, c := range []struct {
		tok string
		h   []string
	}{{access, other}, {"tga_garbage", basic}, {"not-a-token", basic}} {
		if r := post("/oauth/introspect", url.Values{"token": {c.tok}}, c.h...); r.status != 200 || r.body != `{"active":false}` {
			t.Errorf("introspect: %d %s", r.status, r.body)
		}
	}
	expectOAuthError(t, post("/oauth/introspect", url.Values{}, basic...), 400, "invalid_request")

	// Another client's revocation is answered 200 and does nothing.
	if r := post("/oauth/revoke", url.Values{"token": {access}}, other...); r.status != 200 || r.body != "{}" {
		t.Fatalf("revoke by another client: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+access); r.status != 200 {
		t.Fatalf("token revoked by another client: %d", r.status)
	}
	if r := post("/oauth/revoke", url.Values{"token": {"tga_unknown"}}, basic...); r.status != 200 || r.body != "{}" {
		t.Errorf("revoke unknown token: %d %s", r.status, r.body)
	}
	expectOAuthError(t, post("/oauth/revoke", url.Values{"token_type_hint": {"access_token"}}, basic...), 400, "invalid_request")
	expectOAuthError(t, post("/oauth/revoke", url.Values{"token": {access}}, basicAuth("home-app", "wrong")...), 401, "invalid_client")

	if r := post("/oauth/revoke", url.Values{"token": {access}}, basic...); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+access); r.status != 401 {
		t.Errorf("revoked token: %d", r.status)
	}
	if r := post("/oauth/introspect", url.Values{"token": {access}}, basic...); r.body != `{"active":false}` {
		t.Errorf("introspect revoked token: %s", r.body)
	}
}

// TestOAuthStoreOutage: with the store down the token endpoint answers 503
// temporarily_unavailable and revoke 503, never a false 200
// (docs/reference.md).
func TestOAuthStoreOutage(t *testing.T) {
	srv := pgtest.StartServer(t)
	g := startGateway(t, "postgres "+srv.DSN, oauthClients)
	basic := basicAuth("home-app", homeSecret)
	verifier := oauth2.GenerateVerifier()
	code := authorizeJSON(t, g, "user-outage", "home-app", homeRedirect, "chargers:read", verifier)
	access, refresh := exchangeCode(t, g, code, verifier)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	revoke := func() response {
		return do(t, "POST", g.base+"/oauth/revoke", url.Values{"token": {access}}.Encode(), append(basic, "Content-Type", formType)...)
	}
	r := revoke()
	expectOAuthError(t, r, 503, "temporarily_unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	r = tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, basic...)
	expectOAuthError(t, r, 503, "temporarily_unavailable")

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, recoveryTimeout, "revoke succeeds once the store is back", func() bool {
		return revoke().status == 200
	})
	if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+access); r.status != 401 {
		t.Errorf("revoked after the outage: %d", r.status)
	}
}

// TestOAuthMetadata: RFC 8414 metadata (docs/reference.md).
func TestOAuthMetadata(t *testing.T) {
	g := startOAuthGateway(t)
	r := do(t, "GET", g.base+"/.well-known/oauth-authorization-server", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("metadata: %d %s", r.status, r.body)
	}
	var m struct {
		Issuer        string   `json:"issuer"`
		Authorize     string   `json:"authorization_endpoint"`
		Token         string   `json:"token_endpoint"`
		Revoke        string   `json:"revocation_endpoint"`
		Introspect    string   `json:"introspection_endpoint"`
		Scopes        []string `json:"scopes_supported"`
		ResponseTypes []string `json:"response_types_supported"`
		Grants        []string `json:"grant_types_supported"`
		Challenge     []string `json:"code_challenge_methods_supported"`
		AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
		Iss           bool     `json:"authorization_response_iss_parameter_supported"`
	}
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(g.base, g.base+"/oauth/authorize", g.base+"/oauth/token", g.base+"/oauth/revoke", g.base+"/oauth/introspect",
		[]string{"chargers:read", "chargers:write", "sessions:read", "energy:read"}, []string{"code"},
		[]string{"authorization_code", "refresh_token"}, []string{"S256"},
		[]string{"client_secret_basic", "client_secret_post", "none"}, true)
	if got := fmt.Sprint(m.Issuer, m.Authorize, m.Token, m.Revoke, m.Introspect, m.Scopes, m.ResponseTypes, m.Grants, m.Challenge, m.AuthMethods, m.Iss); got != want {
		t.Errorf("metadata\n got %s\nwant %s", got, want)
	}
	r = do(t, "POST", g.base+"/.well-known/oauth-authorization-server", "")
	if r.status != 405 || !strings.Contains(r.header.Get("Allow"), "GET") {
		t.Errorf("POST metadata: %d Allow=%q", r.status, r.header.Get("Allow"))
	}
}

// TestOAuthAuthorizeJSONErrors: the dashboard flow's error answers
// (docs/decisions.md).
func TestOAuthAuthorizeJSONErrors(t *testing.T) {
	g := startOAuthGateway(t)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	good := func() map[string]string {
		return map[string]string{"client_id": "home-app", "redirect_uri": homeRedirect, "response_type": "code",
			"scope": "chargers:read", "state": "xyz", "code_challenge": challenge, "code_challenge_method": "S256"}
	}
	post := func(body map[string]string, jwt string) response {
		return do(t, "POST", g.base+"/oauth/authorize", jsonBody(t, body), "Authorization", "Bearer "+jwt, "Content-Type", "application/json")
	}
	jwt := userJWT(t, "user-az")

	for _, bad := range []string{"", expiredUserJWT(t, "user-az"), foreignJWT(t, "user-az")} {
		r := post(good(), bad)
		if r.status != 401 || r.decode(t)["error"] != "unauthorized" {
			t.Errorf("bad user JWT: %d %s", r.status, r.body)
		}
	}
	for name, edit := range map[string]func(map[string]string){
		"unknown client":   func(b map[string]string) { b["client_id"] = "nobody" },
		"other redirect":   func(b map[string]string) { b["redirect_uri"] = "https://evil.example/cb" },
		"redirect prefix":  func(b map[string]string) { b["redirect_uri"] = "https://home.example.com/callback" },
		"missing redirect": func(b map[string]string) { delete(b, "redirect_uri") },
	} {
		b := good()
		edit(b)
		r := post(b, jwt)
		m := r.decode(t)
		if r.status != 400 || m["error"] != "invalid_request" || m["redirect_url"] != nil {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	for name, c := range map[string]struct {
		edit func(map[string]string)
		code string
	}{
		"response type":    {func(b map[string]string) { b["response_type"] = "token" }, "unsupported_response_type"},
		"unknown scope":    {func(b map[string]string) { b["scope"] = "admin" }, "invalid_scope"},
		"disallowed scope": {func(b map[string]string) { b["scope"] = "energy:read" }, "invalid_scope"},
		"no challenge":     {func(b map[string]string) { delete(b, "code_challenge"); delete(b, "code_challenge_method") }, "invalid_request"},
		"plain method":     {func(b map[string]string) { b["code_challenge_method"] = "plain" }, "invalid_request"},
		"short challenge":  {func(b map[string]string) { b["code_challenge"] = "abc" }, "invalid_request"},
	} {
		b := good()
		c.edit(b)
		r := post(b, jwt)
		m := r.decode(t)
		if r.status != 400 || m["error"] != c.code {
			t.Errorf("%s: %d %s", name, r.status, r.body)
			continue
		}
		u, err := url.Parse(fmt.Sprint(m["redirect_url"]))
		if err != nil || !strings.HasPrefix(u.String(), homeRedirect+"&") {
			t.Errorf("%s: redirect_url %v", name, m["redirect_url"])
			continue
		}
		q := u.Query()
		if q.Get("error") != c.code || q.Get("state") != "xyz" || q.Get("iss") != g.base || q.Get("src") != "tg" || q.Get("code") != "" {
			t.Errorf("%s: redirect_url %s", name, u)
		}
	}
	big := `{"client_id":"` + strings.Repeat("a", 64<<10) + `"}`
	if r := do(t, "POST", g.base+"/oauth/authorize", big, "Authorization", "Bearer "+jwt, "Content-Type", "application/json"); r.status != 413 {
		t.Errorf("large authorize body: %d", r.status)
	}
	r := do(t, "POST", g.base+"/oauth/authorize", `{"client_id":"home-app","client_id":"x"}`, "Authorization", "Bearer "+jwt, "Content-Type", "application/json")
	if r.status != 400 || r.decode(t)["error"] != "invalid_request" {
		t.Errorf("duplicate JSON key: %d %s", r.status, r.body)
	}
}
