package integration

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// browserFlowCaddyfile is a gateway whose users block has the browser flow's
// cookie and, when %[3]s is set, login_url (docs/reference.md). The clients'
// loopback redirect URIs match any port (RFC 8252 7.3).
const browserFlowCaddyfile = `{
	admin off
	persist_config off
	storage file_system {$TEST_DATA_DIR}
	default_bind 127.0.0.1
	skip_install_trust
	tokengate {
		issuer http://127.0.0.1:%[1]d
		database %[2]s
		users {
			jwt_secret {env.TEST_USER_JWT_SECRET}
			audience authenticated
			cookie sb-access-token
			%[3]s
		}
		scope chargers:read "Charger status and active sessions"
		scope sessions:read "Charging session history"
		scope energy:read "Energy statistics and aggregates"
		scope chargers:write "Register new chargers"
		client home-app {
			name "Home Energy App"
			secret home-app-secret
			redirect_uri http://127.0.0.1/callback
		}
	}
}

http://127.0.0.1:%[1]d {
	tokengate_endpoints
	respond "not found" 404
}
`

const (
	browserLoginURL   = "https://app.example.com/login"
	browserUserCookie = "sb-access-token"
)

// browserFlow is a running Caddy for the browser flow.
type browserFlow struct {
	base string
}

// startBrowserFlow starts Caddy on database; login says whether login_url
// is set.
func startBrowserFlow(t *testing.T, database string, login bool) *browserFlow {
	t.Helper()
	loginLine := ""
	if login {
		loginLine = "login_url " + browserLoginURL
	}
	port := loadOnFreePort(t, func(port int) string {
		return fmt.Sprintf(browserFlowCaddyfile, port, database, loginLine)
	})
	t.Cleanup(func() { stopCaddy(t) })
	f := &browserFlow{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	waitReady(t, f.base+"/")
	return f
}

// browserNoRedirect is a client that returns redirects instead of following them.
var browserNoRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// browserPKCE returns a code verifier and its S256 challenge (RFC 7636 4.1, 4.2).
func browserPKCE(seed string) (verifier, challenge string) {
	verifier = strings.Repeat("v", 20) + base64.RawURLEncoding.EncodeToString([]byte(seed+"-verifier-padding-0123456789"))
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// browserAuthorizeQuery returns an authorization request's parameters for
// home-app, with overrides as name, value pairs ("" value: left out).
func browserAuthorizeQuery(redirectURI, scope, state, challenge string, overrides ...string) url.Values {
	q := url.Values{
		"client_id":             {"home-app"},
		"redirect_uri":          {redirectURI},
		"response_type":         {"code"},
		"scope":                 {scope},
		"state":                 {state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(overrides); i += 2 {
		if overrides[i+1] == "" {
			q.Del(overrides[i])
		} else {
			q.Set(overrides[i], overrides[i+1])
		}
	}
	return q
}

// checkHTMLPageHeaders checks the headers every HTML page must carry.
func checkHTMLPageHeaders(t *testing.T, r response) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Type":    "text/html; charset=utf-8",
		"Cache-Control":   "no-store",
		"X-Frame-Options": "DENY",
		"Referrer-Policy": "no-referrer",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q, want frame-ancestors 'none'", csp)
	}
	if !strings.HasPrefix(r.body, "<!DOCTYPE html>") {
		t.Errorf("body is not an HTML page: %.200s", r.body)
	}
}

// browserRedirectQuery checks that r is a 302 to the callback and returns its
// query.
func browserRedirectQuery(t *testing.T, r response, callback string) url.Values {
	t.Helper()
	loc := r.header.Get("Location")
	if r.status != http.StatusFound || !strings.HasPrefix(loc, callback+"?") {
		t.Fatalf("got %d Location %q, want 302 to %s: %.300s", r.status, loc, callback, r.body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

var consentHiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// consentForm returns the hidden fields of a consent page.
func consentForm(t *testing.T, body string) url.Values {
	t.Helper()
	form := url.Values{}
	for _, m := range consentHiddenInput.FindAllStringSubmatch(body, -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if form.Get("csrf_token") == "" {
		t.Fatalf("no csrf_token field in the consent page:\n%s", body)
	}
	return form
}

func TestAuthorizePage(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		f := startBrowserFlow(t, database, true)
		authorize := f.base + "/oauth/authorize"
		issuer := f.base
		callback := "http://127.0.0.1:4711/callback"
		verifier, challenge := browserPKCE("alice")
		aliceCookie := browserUserCookie + "=" + userJWT(t, "alice")
		get := func(q url.Values, headers ...string) response {
			t.Helper()
			r, err := send(browserNoRedirect, "GET", authorize+"?"+q.Encode(), "", headers...)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		post := func(form url.Values, headers ...string) response {
			t.Helper()
			headers = append(headers, "Content-Type", "application/x-www-form-urlencoded")
			r, err := send(browserNoRedirect, "POST", authorize, form.Encode(), headers...)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		read := "chargers:read sessions:read"

		t.Run("no user goes to login_url with return_to", func(t *testing.T) {
			q := browserAuthorizeQuery(callback, read, "st1", challenge)
			r := get(q)
			want := browserLoginURL + "?return_to=" + url.QueryEscape(authorize+"?"+q.Encode())
			if r.status != http.StatusFound || r.header.Get("Location") != want {
				t.Fatalf("got %d Location %q, want 302 %q", r.status, r.header.Get("Location"), want)
			}
			// An invalid or expired JWT is no user either.
			r = get(q, "Cookie", browserUserCookie+"="+expiredUserJWT(t, "alice"))
			if r.status != http.StatusFound || r.header.Get("Location") != want {
				t.Fatalf("expired JWT: got %d Location %q", r.status, r.header.Get("Location"))
			}
			r = get(q, "Authorization", "Bearer "+foreignJWT(t, "alice"))
			if r.status != http.StatusFound || r.header.Get("Location") != want {
				t.Fatalf("foreign JWT: got %d Location %q", r.status, r.header.Get("Location"))
			}
		})

		t.Run("bad client is a 400 page, never a redirect", func(t *testing.T) {
			for name, q := range map[string]url.Values{
				"unknown client":        browserAuthorizeQuery(callback, read, "st", challenge, "client_id", "nobody"),
				"missing client":        browserAuthorizeQuery(callback, read, "st", challenge, "client_id", ""),
				"unregistered redirect": browserAuthorizeQuery("https://evil.example/callback", read, "st", challenge),
				"other path":            browserAuthorizeQuery("http://127.0.0.1:4711/other", read, "st", challenge),
				"missing redirect":      browserAuthorizeQuery("", read, "st", challenge),
			} {
				r := get(q, "Cookie", aliceCookie)
				if r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
					t.Errorf("%s: got %d Location %q, want 400 and no Location", name, r.status, r.header.Get("Location"))
					continue
				}
				checkHTMLPageHeaders(t, r)
			}
			// client_id given twice cannot be trusted for a redirect either.
			r := get(url.Values{"client_id": {"home-app", "home-app"}, "redirect_uri": {callback}}, "Cookie", aliceCookie)
			if r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
				t.Errorf("client_id twice: got %d Location %q", r.status, r.header.Get("Location"))
			}
		})

		t.Run("other errors go to the client with state and iss", func(t *testing.T) {
			for name, c := range map[string]struct {
				q    url.Values
				code string
			}{
				"unknown scope":   {browserAuthorizeQuery(callback, "chargers:read nope:read", "st-<x>", challenge), "invalid_scope"},
				"response type":   {browserAuthorizeQuery(callback, read, "st-<x>", challenge, "response_type", "token"), "unsupported_response_type"},
				"no challenge":    {browserAuthorizeQuery(callback, read, "st-<x>", challenge, "code_challenge", "", "code_challenge_method", ""), "invalid_request"},
				"plain challenge": {browserAuthorizeQuery(callback, read, "st-<x>", challenge, "code_challenge_method", "plain"), "invalid_request"},
			} {
				q := browserRedirectQuery(t, get(c.q, "Cookie", aliceCookie), callback)
				if q.Get("error") != c.code || q.Get("error_description") == "" || q.Get("state") != "st-<x>" || q.Get("iss") != issuer {
					t.Errorf("%s: redirect query %v, want error=%s, a description, state and iss=%s", name, q, c.code, issuer)
				}
				if q.Get("code") != "" {
					t.Errorf("%s: a code came with an error", name)
				}
			}
			q := browserAuthorizeQuery(callback, read, "st", challenge)
			q.Add("state", "again")
			if got := browserRedirectQuery(t, get(q, "Cookie", aliceCookie), callback); got.Get("error") != "invalid_request" {
				t.Errorf("state twice: %v, want invalid_request", got)
			}
		})

		var page response
		t.Run("consent page", func(t *testing.T) {
			page = get(browserAuthorizeQuery(callback, read, "st-<script>alert(1)</script>", challenge), "Cookie", aliceCookie)
			if page.status != http.StatusOK {
				t.Fatalf("got %d %s, want the consent page", page.status, page.header.Get("Location"))
			}
			checkHTMLPageHeaders(t, page)
			for _, want := range []string{"Home Energy App", "Charger status and active sessions", "Charging session history", `value="approve"`, `value="deny"`, `action="/oauth/authorize"`} {
				if !strings.Contains(page.body, want) {
					t.Errorf("consent page lacks %q", want)
				}
			}
			if strings.Contains(page.body, "Energy statistics") {
				t.Error("consent page lists a scope that was not requested")
			}
			if strings.Contains(page.body, "<script>") {
				t.Error("the state is not escaped in the consent page")
			}
		})
		if t.Failed() {
			return
		}
		form := consentForm(t, page.body)

		t.Run("POST without or with a wrong CSRF token is 403", func(t *testing.T) {
			approve := func(f url.Values) url.Values {
				c := url.Values{}
				for k, v := range f {
					c[k] = append([]string(nil), v...)
				}
				c.Set("decision", "approve")
				return c
			}
			noCSRF := approve(form)
			noCSRF.Del("csrf_token")
			wrong := approve(form)
			wrong.Set("csrf_token", form.Get("csrf_token")+"x")
			moreScope := approve(form)
			moreScope.Set("scope", read+" energy:read")
			for name, c := range map[string]struct {
				form   url.Values
				cookie string
			}{
				"no token":      {noCSRF, aliceCookie},
				"wrong token":   {wrong, aliceCookie},
				"other user":    {approve(form), browserUserCookie + "=" + userJWT(t, "mallory")},
				"wider scope":   {moreScope, aliceCookie},
				"token twice":   {func() url.Values { v := approve(form); v.Add("csrf_token", v.Get("csrf_token")); return v }(), aliceCookie},
				"empty token":   {func() url.Values { v := approve(form); v.Set("csrf_token", ""); return v }(), aliceCookie},
				"changed state": {func() url.Values { v := approve(form); v.Set("state", "forged"); return v }(), aliceCookie},
			} {
				r := post(c.form, "Cookie", c.cookie)
				if r.status != http.StatusForbidden || r.header.Get("Location") != "" {
					t.Errorf("%s: got %d Location %q, want 403", name, r.status, r.header.Get("Location"))
					continue
				}
				checkHTMLPageHeaders(t, r)
			}
			// No user at all: the session is gone.
			if r := post(approve(form)); r.status != http.StatusUnauthorized {
				t.Errorf("no user: got %d, want 401", r.status)
			}
		})

		t.Run("form POST limits", func(t *testing.T) {
			big := url.Values{"scope": {strings.Repeat("x", 70<<10)}}
			if r := post(big, "Cookie", aliceCookie); r.status != http.StatusRequestEntityTooLarge {
				t.Errorf("a 70 KiB form: got %d, want 413", r.status)
			}
			r, err := send(browserNoRedirect, "POST", authorize, form.Encode(), "Content-Type", "text/plain", "Cookie", aliceCookie)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != http.StatusUnsupportedMediaType {
				t.Errorf("a text/plain POST: got %d, want 415", r.status)
			}
			checkHTMLPageHeaders(t, r)
		})

		t.Run("Deny", func(t *testing.T) {
			d := maps.Clone(form)
			d.Set("decision", "deny")
			q := browserRedirectQuery(t, post(d, "Cookie", aliceCookie), callback)
			if q.Get("error") != "access_denied" || q.Get("state") != form.Get("state") || q.Get("iss") != issuer || q.Get("code") != "" {
				t.Fatalf("deny: %v", q)
			}
		})

		t.Run("Approve, exchange, and consent remembered", func(t *testing.T) {
			a := maps.Clone(form)
			a.Set("decision", "approve")
			q := browserRedirectQuery(t, post(a, "Cookie", aliceCookie), callback)
			code := q.Get("code")
			if !strings.HasPrefix(code, "tgc_") || q.Get("state") != form.Get("state") || q.Get("iss") != issuer || q.Get("error") != "" {
				t.Fatalf("approve: %v", q)
			}
			browserExchangeCode(t, f.base, code, callback, verifier)

			// The same scopes again (or fewer): straight back with a code.
			for _, scope := range []string{read, "sessions:read"} {
				q = browserRedirectQuery(t, get(browserAuthorizeQuery(callback, scope, "again", challenge), "Cookie", aliceCookie), callback)
				if !strings.HasPrefix(q.Get("code"), "tgc_") || q.Get("state") != "again" || q.Get("iss") != issuer {
					t.Fatalf("consented scopes %q: %v", scope, q)
				}
			}
			// Through the Authorization header as well.
			q = browserRedirectQuery(t, get(browserAuthorizeQuery(callback, read, "hdr", challenge), "Authorization", "Bearer "+userJWT(t, "alice")), callback)
			if !strings.HasPrefix(q.Get("code"), "tgc_") {
				t.Fatalf("header user: %v", q)
			}
			// A new scope: the consent page again, naming it.
			r := get(browserAuthorizeQuery(callback, read+" energy:read", "more", challenge), "Cookie", aliceCookie)
			if r.status != http.StatusOK || !strings.Contains(r.body, "Energy statistics and aggregates") {
				t.Fatalf("new scope: got %d, want the consent page with the new scope", r.status)
			}
			if n := strings.Count(r.body, "Already allowed"); n != 2 {
				t.Errorf("new scope: %d scopes marked as already allowed, want the 2 consented to", n)
			}
			// Another user has consented to nothing.
			r = get(browserAuthorizeQuery(callback, read, "bob", challenge), "Authorization", "Bearer "+userJWT(t, "bob"))
			if r.status != http.StatusOK {
				t.Fatalf("other user: got %d, want the consent page", r.status)
			}
		})
	})
}

// browserExchangeCode redeems code at the token endpoint (docs/reference.md),
// when this build serves it.
func browserExchangeCode(t *testing.T, base, code, redirectURI, verifier string) {
	t.Helper()
	body := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
		"client_id":     {"home-app"},
		"client_secret": {"home-app-secret"},
	}
	r := do(t, "POST", base+"/oauth/token", body.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.status == http.StatusNotImplemented {
		t.Logf("token endpoint not served in this build (501); code format checked only")
		return
	}
	if r.status != http.StatusOK {
		t.Fatalf("exchanging the code: %d %s", r.status, r.body)
	}
	if tok, _ := r.decode(t)["access_token"].(string); !strings.HasPrefix(tok, "tga_") {
		t.Fatalf("no access token in %s", r.body)
	}
}

func TestAuthorizePageNoLoginURL(t *testing.T) {
	f := startBrowserFlow(t, "sqlite "+t.TempDir()+"/tg.db", false)
	_, challenge := browserPKCE("x")
	q := browserAuthorizeQuery("http://127.0.0.1:4711/callback", "chargers:read", "st", challenge)
	r, err := send(browserNoRedirect, "GET", f.base+"/oauth/authorize?"+q.Encode(), "")
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusUnauthorized || r.header.Get("Location") != "" {
		t.Fatalf("got %d Location %q, want a 401 page", r.status, r.header.Get("Location"))
	}
	checkHTMLPageHeaders(t, r)
}

// TestConsentTemplateOption replaces the consent page with a file
// (consent_template); a template that does not parse fails the
// config load with an error naming the file.
func TestConsentTemplateOption(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.html")
	good := filepath.Join(dir, "good.html")
	if err := os.WriteFile(bad, []byte("<p>{{.ClientName</p>"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte(`<!DOCTYPE html><style nonce="{{.Nonce}}">p{}</style><p>{{.ClientName}} ({{.ClientID}}) asks for{{range .Scopes}} {{.Name}}={{.Description}}{{end}}; state {{range .Hidden}}{{if eq .Name "state"}}{{.Value}}{{end}}{{end}}</p>`), 0o600); err != nil {
		t.Fatal(err)
	}
	caddyfile := func(port int, template string) string {
		c := fmt.Sprintf(browserFlowCaddyfile, port, "sqlite "+dir+"/tg.db", "")
		return strings.Replace(c, "\ttokengate_endpoints\n", "\ttokengate_endpoints {\n\t\tconsent_template "+template+"\n\t}\n", 1)
	}
	err := tryLoadCaddyfile(caddyfile(freePort(t), bad))
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("loading a broken consent_template: error %v does not name %s", err, bad)
	}
	port := loadOnFreePort(t, func(port int) string { return caddyfile(port, good) })
	t.Cleanup(func() { stopCaddy(t) })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, base+"/")
	_, challenge := browserPKCE("tmpl")
	q := browserAuthorizeQuery("http://127.0.0.1:4711/callback", "chargers:read", "<b>st</b>", challenge)
	r := do(t, "GET", base+"/oauth/authorize?"+q.Encode(), "", "Cookie", browserUserCookie+"="+userJWT(t, "tmpl-user"))
	if r.status != http.StatusOK {
		t.Fatalf("got %d, want the custom consent page", r.status)
	}
	checkHTMLPageHeaders(t, r)
	want := "<p>Home Energy App (home-app) asks for chargers:read=Charger status and active sessions; state &lt;b&gt;st&lt;/b&gt;</p>"
	if !strings.Contains(r.body, want) {
		t.Fatalf("custom page %q lacks %q", r.body, want)
	}
}

// TestAuthorizePageBehindHandlePath mounts the endpoints under a prefix that
// Caddy strips (handle_path): the login return_to and the consent form's
// action keep the prefix, so that both come back the same way.
func TestAuthorizePageBehindHandlePath(t *testing.T) {
	database := "sqlite " + t.TempDir() + "/tg.db"
	port := loadOnFreePort(t, func(port int) string {
		c := fmt.Sprintf(browserFlowCaddyfile, port, database, "login_url "+browserLoginURL)
		return strings.Replace(c, "\ttokengate_endpoints\n", "\thandle_path /auth/* {\n\t\ttokengate_endpoints\n\t}\n", 1)
	})
	t.Cleanup(func() { stopCaddy(t) })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, base+"/")
	_, challenge := browserPKCE("prefix")
	authorize := base + "/auth/oauth/authorize?" + browserAuthorizeQuery("http://127.0.0.1:4711/callback", "chargers:read", "st", challenge).Encode()

	r, err := send(browserNoRedirect, "GET", authorize, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := browserLoginURL + "?return_to=" + url.QueryEscape(authorize); r.status != http.StatusFound || r.header.Get("Location") != want {
		t.Fatalf("got %d Location %q, want 302 %q", r.status, r.header.Get("Location"), want)
	}
	cookie := browserUserCookie + "=" + userJWT(t, "prefix-user")
	r = do(t, "GET", authorize, "", "Cookie", cookie)
	if r.status != http.StatusOK || !strings.Contains(r.body, `action="/auth/oauth/authorize"`) {
		t.Fatalf("got %d, want the consent page posting to /auth/oauth/authorize:\n%s", r.status, r.body)
	}
	form := consentForm(t, r.body)
	form.Set("decision", "approve")
	r, err = send(browserNoRedirect, "POST", base+"/auth/oauth/authorize", form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Cookie", cookie)
	if err != nil {
		t.Fatal(err)
	}
	if q := browserRedirectQuery(t, r, "http://127.0.0.1:4711/callback"); !strings.HasPrefix(q.Get("code"), "tgc_") {
		t.Fatalf("approve: %v", q)
	}
}
