package integration

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The guard's answers (docs/reference.md), byte for byte.
const (
	bodyInvalid    = `{"error":"Missing or invalid API token"}`
	bodyInURL      = `{"error":"Missing or invalid API token","error_description":"Tokens in the URL are not accepted; send Authorization: Bearer <token>"}`
	challengeBare  = `Bearer realm="tokengate"`
	challengeToken = `Bearer realm="tokengate", error="invalid_token"`
	challengeURL   = `Bearer realm="tokengate", error="invalid_request"`
)

// TestGuardTable checks every row of the guard's answers table
// (docs/reference.md) through a real Caddy,
// and that the backend is never called on a denial.
func TestGuardTable(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", "")
	tok := g.personalToken(t, "user-table")
	chargers := g.base + "/functions/v1/api/chargers"
	// A well-formed token that was never issued, and one with a bad checksum.
	unknown := "tgp_" + strings.Repeat("A", 43) + "AAAAAA"
	mangled := tok[:10] + flip(tok[10]) + tok[11:]

	cases := []struct {
		name      string
		method    string
		url       string
		headers   []string
		status    int
		body      string
		challenge string
	}{
		{"no Authorization header", "GET", chargers, nil, 401, bodyInvalid, challengeBare},
		{"unknown token", "GET", chargers, []string{"Authorization", "Bearer " + unknown}, 401, bodyInvalid, challengeToken},
		{"malformed token (checksum)", "GET", chargers, []string{"Authorization", "Bearer " + mangled}, 401, bodyInvalid, challengeToken},
		{"truncated token", "GET", chargers, []string{"Authorization", "Bearer " + tok[:len(tok)-1]}, 401, bodyInvalid, challengeToken},
		{"wrong scheme", "GET", chargers, []string{"Authorization", "Basic " + tok}, 401, bodyInvalid, challengeToken},
		{"scheme only", "GET", chargers, []string{"Authorization", "Bearer"}, 401, bodyInvalid, challengeToken},
		{"two Authorization headers", "GET", chargers, []string{"Authorization", "Bearer " + tok, "Authorization", "Bearer " + tok}, 401, bodyInvalid, challengeToken},
		{"user JWT is not an API token", "GET", chargers, []string{"Authorization", "Bearer " + userJWT(t, "user-table")}, 401, bodyInvalid, challengeToken},
		{"token query parameter", "GET", chargers + "?token=" + tok, nil, 401, bodyInURL, challengeURL},
		{"access_token query parameter with header", "GET", chargers + "?access_token=x", []string{"Authorization", "Bearer " + tok}, 401, bodyInURL, challengeURL},
		{"empty token query parameter", "GET", chargers + "?a=1&token", []string{"Authorization", "Bearer " + tok}, 401, bodyInURL, challengeURL},
		{"missing scope", "POST", chargers, []string{"Authorization", "Bearer " + tok}, 403,
			`{"error":"Insufficient scope","required_scope":"chargers:write"}`,
			`Bearer realm="tokengate", error="insufficient_scope", scope="chargers:write"`},
		{"first missing scope in configured order", "GET", g.base + "/both", []string{"Authorization", "Bearer " + tok}, 403,
			`{"error":"Insufficient scope","required_scope":"chargers:write"}`,
			`Bearer realm="tokengate", error="insufficient_scope", scope="chargers:write"`},
		{"method with no line", "DELETE", chargers, []string{"Authorization", "Bearer " + tok}, 403,
			`{"error":"Insufficient scope"}`, `Bearer realm="tokengate", error="insufficient_scope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := g.chargers.count() + g.other.count()
			r := do(t, c.method, c.url, "", c.headers...)
			if r.status != c.status || r.body != c.body {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, c.status, c.body)
			}
			if got := r.header.Get("WWW-Authenticate"); got != c.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if after := g.chargers.count() + g.other.count(); after != before {
				t.Errorf("the upstream was called on a denial")
			}
		})
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestGuardPassesIdentity checks what the backend receives on success
// (docs/reference.md): identity headers, spoofed copies removed,
// Authorization removed.
func TestGuardPassesIdentity(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", "")
	tok := g.personalToken(t, "user-identity")

	r := do(t, "GET", g.base+"/functions/v1/api/chargers/42", "",
		"authorization", "bEaReR    "+tok, // RFC 6750 2.1 / RFC 9110 11.1: any case, several spaces
		"X-Authenticated-Userid", "admin",
		"x-authenticated-scope", "everything",
		"X_Authenticated_Client_Id", "evil",
		"X-AUTHENTICATED-TOKEN-TYPE", "oauth",
	)
	if r.status != 200 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	seen := g.chargers.last(t)
	want := map[string]string{
		"X-Authenticated-Userid":     "user-identity",
		"X-Authenticated-Scope":      "chargers:read sessions:read energy:read",
		"X-Authenticated-Client-Id":  "",
		"X-Authenticated-Token-Type": "personal",
	}
	for name, v := range want {
		if got := seen.Header.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("backend saw %s = %q, want exactly %q", name, got, v)
		}
	}
	for name := range seen.Header {
		n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if strings.HasPrefix(n, "x-authenticated-") {
			if _, ok := want[name]; !ok {
				t.Errorf("spoofed header %s reached the backend", name)
			}
		}
	}
	if a := seen.Header.Get("Authorization"); a != "" {
		t.Errorf("Authorization reached the backend: %q", a)
	}
	if seen.URL.Path != "/functions/v1/api/chargers/42" {
		t.Errorf("backend saw path %s", seen.URL.Path)
	}
}

// TestGuardStripsSpoofedHeadersWithoutToken: the guard removes client copies
// of the identity headers on every request, including ones that pass
// without a token (CORS preflight).
func TestGuardStripsSpoofedHeadersWithoutToken(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", "")
	r := do(t, "OPTIONS", g.base+"/functions/v1/api/sessions", "",
		"Origin", "https://app.example.com",
		"Access-Control-Request-Method", "GET",
		"X-Authenticated-Userid", "admin")
	if r.status != 200 {
		t.Fatalf("preflight: got %d %s, want it passed to the backend", r.status, r.body)
	}
	seen := g.sessions.last(t)
	if v := seen.Header.Get("X-Authenticated-Userid"); v != "" {
		t.Errorf("spoofed X-Authenticated-Userid reached the backend: %q", v)
	}
	// OPTIONS without the preflight headers is an ordinary request.
	r = do(t, "OPTIONS", g.base+"/functions/v1/api/sessions", "", "Origin", "https://app.example.com")
	if r.status != 401 {
		t.Errorf("OPTIONS without Access-Control-Request-Method: got %d, want 401", r.status)
	}
}

// TestGuardMethodLines checks the method lines' order: own method, HEAD→GET, *.
func TestGuardMethodLines(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", "")
	tok := g.personalToken(t, "user-methods")
	auth := []string{"Authorization", "Bearer " + tok}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/functions/v1/api/chargers", 200},
		{"HEAD", "/functions/v1/api/chargers", 200}, // falls back to GET's line
		{"POST", "/functions/v1/api/chargers", 403},
		{"GET", "/functions/v1/api/sessions", 200}, // one scope for every method
		{"POST", "/functions/v1/api/sessions", 200},
		{"PATCH", "/functions/v1/api/energy", 200}, // * line
		{"DELETE", "/any/thing", 200},              // bare tokengate: any valid token
		{"POST", "/forward", 403},                  // only GET listed
	} {
		if r := do(t, c.method, g.base+c.path, "", auth...); r.status != c.status {
			t.Errorf("%s %s: got %d %s, want %d", c.method, c.path, r.status, r.body, c.status)
		}
	}
}

// TestGuardOptions checks forward_authorization, the placeholders and
// upstream_jwt (docs/reference.md).
func TestGuardOptions(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", "")
	tok := g.personalToken(t, "user-options")

	do(t, "GET", g.base+"/forward", "", "Authorization", "Bearer "+tok)
	if a := g.other.last(t).Header.Get("Authorization"); a != "Bearer "+tok {
		t.Errorf("forward_authorization: backend saw %q", a)
	}

	do(t, "GET", g.base+"/any", "", "Authorization", "Bearer "+tok)
	seen := g.other.last(t)
	for name, want := range map[string]string{
		"X-Placeholder-User":  "user-options",
		"X-Placeholder-Scope": "chargers:read sessions:read energy:read",
		"X-Placeholder-Type":  "personal",
	} {
		if got := seen.Header.Get(name); got != want {
			t.Errorf("placeholder header %s = %q, want %q", name, got, want)
		}
	}

	r := do(t, "GET", g.base+"/functions/v1/api/energy", "", "Authorization", "Bearer "+tok)
	if r.status != 200 {
		t.Fatalf("energy: %d %s", r.status, r.body)
	}
	auth := g.energy.last(t).Header.Get("Authorization")
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		t.Fatalf("upstream_jwt: backend saw Authorization %q", auth)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return []byte(userJWTSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuer(g.base))
	if err != nil {
		t.Fatalf("upstream JWT does not verify: %v", err)
	}
	if claims["sub"] != "user-options" || claims["role"] != "authenticated" ||
		claims["scope"] != "chargers:read sessions:read energy:read" || claims["client_id"] != "" {
		t.Errorf("upstream JWT claims: %v", claims)
	}
	exp, _ := claims.GetExpirationTime()
	iat, _ := claims.GetIssuedAt()
	if exp == nil || iat == nil || exp.Sub(iat.Time).Seconds() != 60 {
		t.Errorf("upstream JWT lifetime: iat %v exp %v, want 60s", iat, exp)
	}
}

// rawExchange writes request, exactly as given, on a new connection to the
// gateway and reads one response. Header names reach Caddy as written,
// underscores and letter case included.
func rawExchange(t *testing.T, g *gateway, request string) response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// TestGuardConnectionHeaderCannotDropIdentity: reverse_proxy drops the
// headers a Connection header names (RFC 9110 7.6.1); the contract says the
// identity headers reach the upstream whatever the client sent, and
// method override headers never do.
func TestGuardConnectionHeaderCannotDropIdentity(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", "")
	tok := g.personalToken(t, "user-connection")
	host := strings.TrimPrefix(g.base, "http://")

	r := rawExchange(t, g, "GET /functions/v1/api/chargers/7 HTTP/1.1\r\n"+
		"Host: "+host+"\r\n"+
		"Authorization: Bearer "+tok+"\r\n"+
		"Connection: close, X-Authenticated-Userid, x_authenticated_scope\r\n"+
		"Connection: X-AUTHENTICATED-CLIENT-ID,x-authenticated-token-type\r\n"+
		"X-HTTP-Method-Override: DELETE\r\n"+
		"x-http-method: PUT\r\n"+
		"X-Method-Override: PATCH\r\n"+
		"X_HTTP_Method_Override: DELETE\r\n"+
		"\r\n")
	if r.status != 200 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	seen := g.chargers.last(t)
	for name, want := range map[string]string{
		"X-Authenticated-Userid":     "user-connection",
		"X-Authenticated-Scope":      "chargers:read sessions:read energy:read",
		"X-Authenticated-Client-Id":  "",
		"X-Authenticated-Token-Type": "personal",
	} {
		if got := seen.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("backend saw %s = %q, want exactly %q", name, got, want)
		}
	}
	if seen.Method != "GET" {
		t.Errorf("backend saw method %s", seen.Method)
	}
	for name := range seen.Header {
		n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if strings.Contains(n, "method") {
			t.Errorf("backend saw %s: %q", name, seen.Header[name])
		}
	}

	// forward_authorization and upstream_jwt: Authorization is set for the
	// upstream, so naming it in Connection must not drop it either.
	r = rawExchange(t, g, "GET /forward HTTP/1.1\r\nHost: "+host+"\r\n"+
		"Authorization: Bearer "+tok+"\r\nConnection: close, Authorization\r\n\r\n")
	if r.status != 200 {
		t.Fatalf("forward: got %d %s", r.status, r.body)
	}
	if a := g.other.last(t).Header.Get("Authorization"); a != "Bearer "+tok {
		t.Errorf("forward_authorization with Connection: Authorization: backend saw %q", a)
	}
	r = rawExchange(t, g, "GET /functions/v1/api/energy HTTP/1.1\r\nHost: "+host+"\r\n"+
		"Authorization: Bearer "+tok+"\r\nConnection: authorization, close\r\n\r\n")
	if r.status != 200 {
		t.Fatalf("energy: got %d %s", r.status, r.body)
	}
	if a := g.energy.last(t).Header.Get("Authorization"); !strings.HasPrefix(a, "Bearer ey") {
		t.Errorf("upstream_jwt with Connection: authorization: backend saw Authorization %q", a)
	}
}
