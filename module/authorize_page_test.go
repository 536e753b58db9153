package module

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

const evil = `<script>alert(1)</script>"'&`

func pageEndpoints() *Endpoints {
	return &Endpoints{
		Authorize: "/oauth/authorize",
		app: &App{
			Issuer: "https://api.example.com",
			auth: &oauth.AuthServer{Scopes: []oauth.Scope{
				{Name: "chargers:read", Description: "Charger status and active sessions"},
				{Name: "sessions:read", Description: "Charging session history " + evil},
			}},
		},
		logger:      zap.NewNop(),
		consentPage: defaultConsentTemplate,
	}
}

func checkPageHeaders(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	h := rec.Header()
	for name, want := range map[string]string{
		"Content-Type":    "text/html; charset=utf-8",
		"Cache-Control":   "no-store",
		"X-Frame-Options": "DENY",
		"Referrer-Policy": "no-referrer",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q lacks frame-ancestors 'none'", csp)
	}
}

func TestConsentPageEscapes(t *testing.T) {
	e := pageEndpoints()
	client := &oauth.Client{ID: "home" + evil, Name: "Home " + evil}
	p := testPageParams()
	p.State = evil
	p.ClientID = client.ID
	rec := httptest.NewRecorder()
	if err := e.writeConsentPage(rec, httptest.NewRequest("GET", "/oauth/authorize", nil), client, []string{"chargers:read", "sessions:read"}, "user"+evil, p, "csrf-token"); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	checkPageHeaders(t, rec)
	body := rec.Body.String()
	if strings.Contains(body, "<script") || strings.Contains(body, "alert(1)</") {
		t.Fatalf("unescaped request value in the page:\n%s", body)
	}
	for _, want := range []string{
		"Home &lt;script&gt;alert(1)&lt;/script&gt;",
		"Charger status and active sessions",
		"Charging session history &lt;script&gt;",
		`name="state" value="&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;"`,
		`name="csrf_token" value="csrf-token"`,
		`action="/oauth/authorize"`,
		`value="approve"`,
		`value="deny"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// The style element carries the nonce the CSP allows.
	csp := rec.Header().Get("Content-Security-Policy")
	nonce := strings.TrimSuffix(strings.SplitN(strings.SplitN(csp, "'nonce-", 2)[1], "'", 2)[0], "'")
	if !strings.Contains(body, `<style nonce="`+nonce+`">`) {
		t.Errorf("no <style> with the CSP nonce %q", nonce)
	}
}

func TestErrorPageEscapes(t *testing.T) {
	e := pageEndpoints()
	rec := httptest.NewRecorder()
	if err := e.pageAuthorizeFailed(rec, testPageParams(), oauth.ErrInvalidRequest.WithDescription(evil), false); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 400 || rec.Header().Get("Location") != "" {
		t.Fatalf("status %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
	checkPageHeaders(t, rec)
	if strings.Contains(rec.Body.String(), "<script") {
		t.Fatalf("unescaped value in the error page:\n%s", rec.Body.String())
	}
}

func TestPageRedirect(t *testing.T) {
	e := pageEndpoints()
	p := testPageParams()
	p.RedirectURI = "https://home.example.com/callback?tenant=a%20b"
	p.State = "s&t=1"
	rec := httptest.NewRecorder()
	if err := e.pageRedirectError(rec, p, oauth.ErrAccessDenied.WithDescription("denied")); err != nil {
		t.Fatal(err)
	}
	want := "https://home.example.com/callback?tenant=a%20b&error=access_denied&error_description=denied&state=s%26t%3D1&iss=https%3A%2F%2Fapi.example.com"
	if rec.Code != 302 || rec.Header().Get("Location") != want {
		t.Fatalf("%d %s, want 302 %s", rec.Code, rec.Header().Get("Location"), want)
	}
	for uri, want := range map[string]string{
		"https://a.example/cb":      "https://a.example/cb?k=v",
		"https://a.example/cb?":     "https://a.example/cb?k=v",
		"https://a.example/cb?x=1":  "https://a.example/cb?x=1&k=v",
		"https://a.example/cb#frag": "https://a.example/cb?k=v",
	} {
		if got := withQueryParams(uri, "k", "v"); got != want {
			t.Errorf("withQueryParams(%q) = %q, want %q", uri, got, want)
		}
	}
}

func TestConsentTemplateFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.html")
	bad := filepath.Join(dir, "bad.html")
	os.WriteFile(good, []byte(`<p>{{.ClientName}} asks for {{range .Scopes}}{{.Name}} {{end}}</p>`), 0o600)
	os.WriteFile(bad, []byte(`<p>{{.ClientName</p>`), 0o600)
	if _, err := loadConsentTemplate(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad template: error %v does not name %s", err, bad)
	}
	if _, err := loadConsentTemplate(filepath.Join(dir, "missing.html")); err == nil || !strings.Contains(err.Error(), "missing.html") {
		t.Fatalf("missing template: error %v does not name the file", err)
	}
	tmpl, err := loadConsentTemplate(good)
	if err != nil {
		t.Fatal(err)
	}
	e := pageEndpoints()
	e.consentPage = tmpl
	rec := httptest.NewRecorder()
	client := &oauth.Client{ID: "c", Name: "<b>Custom</b>"}
	if err := e.writeConsentPage(rec, httptest.NewRequest("GET", "/oauth/authorize", nil), client, []string{"chargers:read"}, "u", testPageParams(), "t"); err != nil {
		t.Fatal(err)
	}
	if got := rec.Body.String(); got != "<p>&lt;b&gt;Custom&lt;/b&gt; asks for chargers:read </p>" {
		t.Fatalf("custom page: %q", got)
	}
	checkPageHeaders(t, rec)
}

func TestLoginRedirectURL(t *testing.T) {
	e := pageEndpoints()
	r := httptest.NewRequest("GET", "/oauth/authorize?client_id=a&state=x%20y", nil)
	if _, ok := e.loginRedirectURL(r); ok {
		t.Fatal("a login redirect without login_url")
	}
	e.app.Users = &UsersConfig{LoginURL: "https://app.example.com/login?lang=en#/signin"}
	got, ok := e.loginRedirectURL(r)
	want := "https://app.example.com/login?lang=en&return_to=" +
		"https%3A%2F%2Fapi.example.com%2Foauth%2Fauthorize%3Fclient_id%3Da%26state%3Dx%2520y#/signin"
	if !ok || got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
