package module

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestUserCodeLimiter(t *testing.T) {
	clk := &testClock{t: time.Unix(1_800_000_000, 0)}
	l := newUserCodeLimiter(clk.now, 100)
	for i := range maxWrongUserCodes {
		if _, blocked := l.blocked("alice"); blocked {
			t.Fatalf("blocked after %d wrong codes, want %d allowed", i, maxWrongUserCodes)
		}
		l.miss("alice")
		clk.advance(time.Second)
	}
	wait, blocked := l.blocked("alice")
	if !blocked {
		t.Fatalf("not blocked after %d wrong codes in a minute", maxWrongUserCodes)
	}
	// The first miss was 5 s ago: it leaves the window in 55 s.
	if wait != 55*time.Second {
		t.Errorf("wait %v, want 55s", wait)
	}
	// Per user: another user is not slowed down.
	if _, blocked := l.blocked("bob"); blocked {
		t.Error("another user is blocked")
	}
	clk.advance(55 * time.Second)
	if _, blocked := l.blocked("alice"); blocked {
		t.Error("still blocked once the first miss left the window")
	}
	l.miss("alice")
	if _, blocked := l.blocked("alice"); !blocked {
		t.Error("a miss right after the window opened again is not counted")
	}
}

func TestUserCodeLimiterBounded(t *testing.T) {
	clk := &testClock{t: time.Unix(1_800_000_000, 0)}
	l := newUserCodeLimiter(clk.now, 3)
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		l.miss(u)
	}
	if n := len(l.misses); n > 3 {
		t.Errorf("%d users counted, want at most 3", n)
	}
	// Stale users go first.
	clk.advance(2 * wrongUserCodeWindow)
	l.miss("f")
	if _, kept := l.misses["f"]; !kept || len(l.misses) > 3 {
		t.Errorf("after eviction: %v", l.misses)
	}
}

func TestDeviceCSRF(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	tok := deviceCSRFToken(key, "alice", "BCDF-GHJK", now.Add(consentCSRFTTL))
	if !checkDeviceCSRF(key, "alice", "BCDF-GHJK", tok, now) {
		t.Fatal("a fresh token is refused")
	}
	for _, tc := range []struct {
		name, user, code, token string
		now                     time.Time
	}{
		{"other user", "bob", "BCDF-GHJK", tok, now},
		{"other code", "alice", "BCDF-GHJL", tok, now},
		{"expired", "alice", "BCDF-GHJK", tok, now.Add(consentCSRFTTL)},
		{"empty", "alice", "BCDF-GHJK", "", now},
		// The authorization endpoint's consent token is not this form's.
		{"consent form's token", "alice", "BCDF-GHJK", consentCSRFToken(key, "alice", pageParams{}, now.Add(consentCSRFTTL)), now},
	} {
		if checkDeviceCSRF(key, tc.user, tc.code, tc.token, tc.now) {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// deviceEnv is the endpoints over a fresh SQLite store with a public
// client that may use the device grant.
type deviceEnv struct {
	e       *Endpoints
	userJWT string
}

func newDeviceEnv(t *testing.T) *deviceEnv {
	t.Helper()
	app := &App{
		Issuer: "https://api.example.com",
		Scopes: []ScopeConfig{{Name: "chargers:read", Description: "Charger status"}, {Name: "sessions:read"}},
		Clients: []ClientConfig{
			{ID: "display", Name: "Charger <display>", RedirectURIs: []string{limitRedirectURI},
				GrantTypes: []string{oauth.GrantTypeDeviceCode, oauth.GrantTypeRefreshToken}},
			{ID: limitClientID, Secret: limitClientSecret, RedirectURIs: []string{limitRedirectURI}},
		},
		stateKey: "device:" + t.Name(),
		metrics:  tokengateMetrics(),
		logger:   zap.NewNop(),
		Users:    &UsersConfig{},
	}
	startOnTestStore(t, app)
	var err error
	if app.users, err = oauth.NewUserVerifier(oauth.UserVerifierConfig{HS256Secret: []byte(limitUserSecret)}); err != nil {
		t.Fatal(err)
	}
	// Each test counts its own wrong codes.
	saved := userCodeMisses
	userCodeMisses = newUserCodeLimiter(time.Now, maxCountedUsers)
	t.Cleanup(func() { userCodeMisses = saved })
	return &deviceEnv{
		e: &Endpoints{
			Token: "/oauth/token", DeviceAuthorization: "/oauth/device_authorization", Device: "/oauth/device",
			app: app, logger: zap.NewNop(), consentPage: defaultConsentTemplate,
		},
		userJWT: limitUserJWT(t),
	}
}

func (env *deviceEnv) serve(t *testing.T, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	if err := env.e.ServeHTTP(rec, r, nil); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return rec
}

func (env *deviceEnv) start(t *testing.T) oauth.DeviceAuthorizationResponse {
	t.Helper()
	rec := env.serve(t, "POST", "/oauth/device_authorization", "client_id=display&scope=chargers:read")
	if rec.Code != 200 {
		t.Fatalf("device authorization: %d %s", rec.Code, rec.Body)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var resp oauth.DeviceAuthorizationResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestDeviceAuthorizationEndpoint(t *testing.T) {
	env := newDeviceEnv(t)
	resp := env.start(t)
	if resp.VerificationURI != "https://api.example.com/oauth/device" || resp.ExpiresIn != 600 || resp.Interval != 5 {
		t.Errorf("response %+v", resp)
	}
	for _, tc := range []struct {
		name, method, body string
		status             int
		code               string
	}{
		{"RFC 8628 3.1 POST only", "GET", "", 405, "invalid_request"},
		{"client without the device grant", "POST", "client_id=" + limitClientID + "&client_secret=" + limitClientSecret, 400, "unauthorized_client"},
		{"RFC 6749 2.3.1 wrong secret", "POST", "client_id=" + limitClientID + "&client_secret=wrong", 401, "invalid_client"},
		{"unknown client", "POST", "client_id=nobody", 401, "invalid_client"},
		{"public client sending a secret", "POST", "client_id=display&client_secret=x", 401, "invalid_client"},
		{"scope not allowed", "POST", "client_id=display&scope=energy:read", 400, "invalid_scope"},
		{"RFC 6749 3.1 parameter twice", "POST", "client_id=display&scope=a&scope=b", 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := env.serve(t, tc.method, "/oauth/device_authorization", tc.body)
			var body struct{ Error string }
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tc.status || body.Error != tc.code {
				t.Errorf("%d %s, want %d %s", rec.Code, rec.Body, tc.status, tc.code)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
}

func TestDevicePage(t *testing.T) {
	env := newDeviceEnv(t)
	resp := env.start(t)
	cookie := []string{"Authorization", "Bearer " + env.userJWT}

	// No user and no login_url: 401, as the browser flow.
	if rec := env.serve(t, "GET", "/oauth/device", ""); rec.Code != 401 {
		t.Errorf("no user: %d, want 401", rec.Code)
	}
	rec := env.serve(t, "GET", "/oauth/device", "", cookie...)
	checkPageHeaders(t, rec)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `name="user_code"`) {
		t.Fatalf("code form: %d %s", rec.Code, rec.Body)
	}

	// The code typed in lower case without the dash: the consent page,
	// its client name escaped, showing the code as the device does.
	typed := strings.ToLower(strings.ReplaceAll(resp.UserCode, "-", ""))
	rec = env.serve(t, "POST", "/oauth/device", "user_code="+typed, cookie...)
	checkPageHeaders(t, rec)
	page := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(page, "Charger &lt;display&gt;") || !strings.Contains(page, resp.UserCode) ||
		!strings.Contains(page, "Charger status") || !strings.Contains(page, `action="/oauth/device"`) {
		t.Fatalf("consent page: %d %s", rec.Code, page)
	}
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	if form.Get("user_code") != resp.UserCode || form.Get(csrfField) == "" {
		t.Fatalf("hidden fields %v", form)
	}

	// Approve with a wrong CSRF token: 403, nothing decided.
	bad := url.Values{"user_code": {resp.UserCode}, csrfField: {"1.x"}, "decision": {"approve"}}
	if rec := env.serve(t, "POST", "/oauth/device", bad.Encode(), cookie...); rec.Code != 403 {
		t.Errorf("bad CSRF token: %d, want 403", rec.Code)
	}
	poll := "grant_type=" + url.QueryEscape(oauth.GrantTypeDeviceCode) + "&client_id=display&device_code=" + resp.DeviceCode
	if rec := env.serve(t, "POST", "/oauth/token", poll); !strings.Contains(rec.Body.String(), "authorization_pending") {
		t.Fatalf("poll after a refused form: %d %s", rec.Code, rec.Body)
	}

	form.Set("decision", "approve")
	rec = env.serve(t, "POST", "/oauth/device", form.Encode(), cookie...)
	checkPageHeaders(t, rec)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "Device connected") {
		t.Fatalf("after approval: %d %s", rec.Code, rec.Body)
	}
	// The same form again: the code is used.
	if rec := env.serve(t, "POST", "/oauth/device", form.Encode(), cookie...); rec.Code != 400 {
		t.Errorf("approving twice: %d, want 400", rec.Code)
	}
	rec = env.serve(t, "POST", "/oauth/token", poll)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"access_token":"tga_`) {
		t.Fatalf("poll after approval: %d %s", rec.Code, rec.Body)
	}
}

// A user gets maxWrongUserCodes wrong codes a minute, then 429 with
// Retry-After, even for a right code; the query parameter counts as the
// form does.
func TestDevicePageWrongCodes(t *testing.T) {
	env := newDeviceEnv(t)
	resp := env.start(t)
	cookie := []string{"Authorization", "Bearer " + env.userJWT}
	for i := range maxWrongUserCodes {
		rec := env.serve(t, "GET", "/oauth/device?user_code=BBBB-BBBB", "", cookie...)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "not valid") || !strings.Contains(rec.Body.String(), `value="BBBB-BBBB"`) {
			t.Fatalf("wrong code %d: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	rec := env.serve(t, "POST", "/oauth/device", "user_code="+resp.UserCode, cookie...)
	checkPageHeaders(t, rec)
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("after %d wrong codes: %d (Retry-After %q), want 429", maxWrongUserCodes, rec.Code, rec.Header().Get("Retry-After"))
	}
	// Another user is not slowed down.
	other := []string{"Authorization", "Bearer " + otherUserJWT(t)}
	if rec := env.serve(t, "GET", "/oauth/device?user_code="+resp.UserCode, "", other...); rec.Code != 200 {
		t.Errorf("another user: %d, want the consent page", rec.Code)
	}
}

func otherUserJWT(t *testing.T) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "someone-else", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(limitUserSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// TestDevicePageBeforeStart: before the store is open the verification
// page answers with an HTML 503 page, as the browser flow does.
func TestDevicePageBeforeStart(t *testing.T) {
	a, _, e := notStartedHandlers(t)
	a.startWait = time.Millisecond
	e.Device = "/oauth/device"
	r := httptest.NewRequest("GET", "/oauth/device", nil).WithContext(context.Background())
	rec := httptest.NewRecorder()
	if err := e.ServeHTTP(rec, r, nil); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 503 || !strings.HasPrefix(rec.Body.String(), "<!DOCTYPE html>") {
		t.Errorf("before start: %d %.100s, want an HTML 503 page", rec.Code, rec.Body)
	}
}

// The verification page keeps the input limits of every endpoint: a value
// above 8 KiB or not valid UTF-8 gets a 400 page, before anything is
// looked up or counted as a wrong code.
func TestDevicePageInputLimits(t *testing.T) {
	env := newDeviceEnv(t)
	auth := []string{"Authorization", "Bearer " + env.userJWT}
	long := strings.Repeat("B", maxParamBytes+1)
	for _, tc := range []struct{ name, method, target, body string }{
		{"query not UTF-8", "GET", "/oauth/device?user_code=%ff", ""},
		{"query above 8 KiB", "GET", "/oauth/device?user_code=" + long, ""},
		{"form not UTF-8", "POST", "/oauth/device", "user_code=%ff"},
		{"form above 8 KiB", "POST", "/oauth/device", "user_code=" + long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := env.serve(t, tc.method, tc.target, tc.body, auth...)
			checkPageHeaders(t, rec)
			if rec.Code != 400 || !strings.Contains(rec.Body.String(), "Invalid request") {
				t.Errorf("%d %.200s, want the 400 page", rec.Code, rec.Body)
			}
		})
	}
	if _, blocked := userCodeMisses.blocked(limitUser); blocked || len(userCodeMisses.misses) != 0 {
		t.Errorf("refused input counted as wrong codes: %v", userCodeMisses.misses)
	}
}
