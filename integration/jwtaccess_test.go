package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// jwtAccessOptions turns on RFC 9068 JWT access tokens in the gateway's
// tokengate block.
const jwtAccessOptions = "\n\t\taccess_token_format jwt\n"

// jwtParts decodes a JWT's header and payload without verifying it.
func jwtParts(t testing.TB, text string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(text, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", text)
	}
	for i, into := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// jtiOf returns the jti of a JWT access token, checking that it is a
// tgj_ id.
func jtiOf(t testing.TB, text string) string {
	t.Helper()
	_, claims := jwtParts(t, text)
	id, _ := claims["jti"].(string)
	if k, err := oauth.ParseToken(id); err != nil || k != oauth.KindJWTID {
		t.Fatalf("jti %q is not a tgj_ id", id)
	}
	return id
}

// verifyWithJWKS checks a JWT access token as a resource server that knows
// nothing of tokengate but its JWKS would: golang-jwt with the key set
// go-jose reads, RFC 9068 4.
func verifyWithJWKS(t *testing.T, g *gateway, text string) jwt.MapClaims {
	t.Helper()
	r := do(t, "GET", g.base+"/.well-known/jwks.json", "")
	if r.status != 200 {
		t.Fatalf("GET jwks.json: %d %s", r.status, r.body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(r.body), &set); err != nil {
		t.Fatalf("jwks.json: %v", err)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256", "ES256"}),
		jwt.WithIssuer(g.base),
		jwt.WithAudience(g.base),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	).ParseWithClaims(text, claims, func(tok *jwt.Token) (any, error) {
		if typ, _ := tok.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") {
			return nil, fmt.Errorf("typ %q, want at+jwt", typ)
		}
		kid, _ := tok.Header["kid"].(string)
		keys := set.Key(kid)
		if len(keys) != 1 || keys[0].Algorithm != tok.Method.Alg() || keys[0].Use != "sig" {
			return nil, fmt.Errorf("no signing key %q for %s in the JWKS", kid, tok.Method.Alg())
		}
		return keys[0].Key, nil
	})
	if err != nil {
		t.Fatalf("a resource server with the JWKS alone refuses the access token: %v", err)
	}
	return claims
}

func introspect(t *testing.T, g *gateway, clientID, secret, token string) map[string]any {
	t.Helper()
	r := do(t, "POST", g.base+"/oauth/introspect", url.Values{"token": {token}}.Encode(),
		append(basicAuth(clientID, secret), "Content-Type", "application/x-www-form-urlencoded")...)
	if r.status != 200 {
		t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	return r.decode(t)
}

func revoke(t *testing.T, g *gateway, clientID, secret, token string) {
	t.Helper()
	r := do(t, "POST", g.base+"/oauth/revoke", url.Values{"token": {token}}.Encode(),
		append(basicAuth(clientID, secret), "Content-Type", "application/x-www-form-urlencoded")...)
	if r.status != 200 || r.body != "{}" {
		t.Fatalf("revoke: %d %s, want 200 {}", r.status, r.body)
	}
}

// TestJWTAccessTokens: with access_token_format jwt the token endpoint
// hands out RFC 9068 JWTs; the guard takes them and tells the backend who
// called; a backend verifies them with the JWKS alone; introspection
// answers for them; the id inside is no token; revocation is refused on
// the next request. On SQLite and PostgreSQL.
func TestJWTAccessTokens(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, oauthClients+jwtAccessOptions)
		user := "jwt-user"
		app := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read sessions:read")
		if k, err := oauth.ParseToken(app.refresh); err != nil || k != oauth.KindRefresh {
			t.Errorf("refresh token %q is not an opaque tgr_ token", app.refresh)
		}
		header, _ := jwtParts(t, app.access)
		if header["typ"] != "at+jwt" || header["alg"] != "RS256" {
			t.Errorf("JWT header = %v, want typ at+jwt and the default RS256", header)
		}

		// The guard: the backend learns the caller, not the token.
		if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+app.access); r.status != 200 {
			t.Fatalf("guard with a JWT access token: %d %s", r.status, r.body)
		}
		seen := g.chargers.last(t)
		for h, want := range map[string]string{"X-Authenticated-Userid": user, "X-Authenticated-Client-Id": "home-app",
			"X-Authenticated-Scope": "chargers:read sessions:read", "X-Authenticated-Token-Type": "oauth", "Authorization": ""} {
			if got := seen.Header.Get(h); got != want {
				t.Errorf("backend got %s %q, want %q", h, got, want)
			}
		}
		if r := do(t, "POST", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+app.access); r.status != 403 {
			t.Errorf("JWT without chargers:write on POST: %d, want 403", r.status)
		}

		// A backend behind forward_authorization verifies it alone.
		if r := do(t, "GET", g.base+"/forward", "", "Authorization", "Bearer "+app.access); r.status != 200 {
			t.Fatalf("forward route: %d %s", r.status, r.body)
		}
		forwarded := strings.TrimPrefix(g.other.last(t).Header.Get("Authorization"), "Bearer ")
		claims := verifyWithJWKS(t, g, forwarded)
		for k, want := range map[string]any{"sub": user, "client_id": "home-app", "scope": "chargers:read sessions:read", "jti": jtiOf(t, app.access)} {
			if claims[k] != want {
				t.Errorf("claim %s = %v, want %v", k, claims[k], want)
			}
		}
		if _, ok := claims["auth_time"].(float64); !ok {
			t.Errorf("auth_time missing from %v", claims)
		}

		// RFC 7662: introspection as for an opaque token.
		info := introspect(t, g, "home-app", homeSecret, app.access)
		if info["active"] != true || info["sub"] != user || info["client_id"] != "home-app" ||
			info["scope"] != "chargers:read sessions:read" || info["token_type"] != "Bearer" ||
			info["exp"] != claims["exp"] || info["iat"] != claims["iat"] {
			t.Errorf("introspection = %v, claims %v", info, claims)
		}
		if info := introspect(t, g, "other-app", "other-secret", app.access); info["active"] != false {
			t.Errorf("another client introspects the JWT as %v, want inactive", info)
		}

		// What is not the token is refused: its jti, a tampered copy.
		parts := strings.Split(app.access, ".")
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(
			mustDecodeSegment(t, parts[1]), `"chargers:read sessions:read"`, `"chargers:read chargers:write sessions:read"`, 1))) + "." + parts[2]
		for what, bad := range map[string]string{"the tgj_ jti": jtiOf(t, app.access), "a tampered JWT": tampered} {
			r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+bad)
			if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%s at the guard: %d %q, want 401 invalid_token", what, r.status, r.header.Get("WWW-Authenticate"))
			}
		}
		if info := introspect(t, g, "home-app", homeSecret, jtiOf(t, app.access)); info["active"] != false {
			t.Errorf("introspection of the bare jti = %v, want inactive", info)
		}

		// RFC 7009: revoked through the endpoint, refused on the next request.
		revoke(t, g, "home-app", homeSecret, app.access)
		if s := app.guardStatus(t, g); s != 401 {
			t.Errorf("revoked JWT at the guard: %d, want 401", s)
		}
		if info := introspect(t, g, "home-app", homeSecret, app.access); info["active"] != false {
			t.Errorf("revoked JWT introspected as %v", info)
		}
		// Its refresh token still gives a new JWT.
		if r := app.refreshToken(t, g); r.status != 200 || app.guardStatus(t, g) != 200 {
			t.Fatalf("refresh after revoking the access token: %d %s", r.status, r.body)
		}
	})
}

func mustDecodeSegment(t *testing.T, s string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestJWTAccessTokensReuseAndUserRevocation: reuse detection (RFC 9700
// 4.14.2) and the admin API's sign-out everywhere cover JWT access tokens
// the guard has cached.
func TestJWTAccessTokensReuseAndUserRevocation(t *testing.T) {
	g, adminURL := startGatewayWithAdmin(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients+jwtAccessOptions)
	user := "jwt-reuse-user"
	app := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read")
	first, firstRefresh := app.access, app.refresh
	if r := app.refreshToken(t, g); r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	for _, tok := range []string{first, app.access} {
		if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+tok); r.status != 200 {
			t.Fatalf("before reuse: %d %s", r.status, r.body)
		}
	}
	r := tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {firstRefresh}}, basicAuth("home-app", homeSecret)...)
	expectOAuthError(t, r, 400, "invalid_grant")
	for what, tok := range map[string]string{"first JWT": first, "rotated JWT": app.access} {
		if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+tok); r.status != 401 {
			t.Errorf("%s after reuse: %d, want 401", what, r.status)
		}
	}

	other := connect(t, g, user, "other-app", "other-secret", "https://other.example.com/cb", "chargers:read")
	if s := other.guardStatus(t, g); s != 200 {
		t.Fatalf("other app's JWT: %d", s)
	}
	if r := (adminAPI{base: adminURL}).call(t, "DELETE", "/tokengate/users/"+user, ""); r.status != 204 {
		t.Fatalf("DELETE user: %d %s", r.status, r.body)
	}
	if s := other.guardStatus(t, g); s != 401 {
		t.Errorf("JWT after the user's revocation: %d, want 401", s)
	}
}

// TestJWTRevocationAcrossInstances: two instances share PostgreSQL. A JWT
// access token cached by both and revoked through one is refused by the
// other within 1 s, in either direction.
func TestJWTRevocationAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	g := startGateway(t, "postgres "+dsn, oauthClients+jwtAccessOptions)
	other := startOtherInstance(t, dsn)
	ring, err := oauth.NewKeyRing(other.store, oauth.AlgRS256, 720*time.Hour, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The same issuer and audience as the gateway's config.
	settings, err := oauth.NewJWTAccessTokens(ring, g.base, g.base)
	if err != nil {
		t.Fatal(err)
	}
	other.auth.JWTAccess = settings
	accepts := func(tok string) bool {
		_, err := other.validator.ValidateWith(context.Background(), tok, settings)
		if err != nil && !errors.Is(err, oauth.ErrInvalidToken) {
			t.Fatalf("validating at the other instance: %v", err)
		}
		return err == nil
	}
	user := "jwt-instances-user"

	a := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read")
	if s := a.guardStatus(t, g); s != 200 || !accepts(a.access) {
		t.Fatalf("a live JWT: %d here, accepted there: %v", s, accepts(a.access))
	}
	revoke(t, g, "home-app", homeSecret, a.access)
	eventually(t, time.Second, "a JWT revoked here refused by the other instance", func() bool {
		return !accepts(a.access)
	})

	b := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read")
	if s := b.guardStatus(t, g); s != 200 || !accepts(b.access) {
		t.Fatal("a second live JWT is refused")
	}
	home, err := other.auth.Clients.FindClient(context.Background(), "home-app")
	if err != nil {
		t.Fatal(err)
	}
	if oerr := other.auth.Revoke(context.Background(), home, b.access, ""); oerr != nil {
		t.Fatalf("revoking at the other instance: %v", oerr)
	}
	eventually(t, time.Second, "a JWT revoked at the other instance refused here", func() bool {
		return b.guardStatus(t, g) == 401
	})
}

// TestKillJWTRevocationSurvives: on SQLite, a JWT access token revoked
// before a caddy process is killed with SIGKILL stays refused by the next
// process, and one that was not revoked keeps working, verified with the
// signing keys the store kept.
func TestKillJWTRevocationSurvives(t *testing.T) {
	// The second process serves on another port but keeps the first's
	// issuer, as a restarted server keeps its name: the tokens of the
	// first must be its own.
	issuer := ""
	fixedIssuer := func(c string) string {
		if issuer == "" {
			return c
		}
		return issuerLine.ReplaceAllString(c, "issuer "+issuer)
	}
	g := newGateway(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients+jwtAccessOptions, "", fixedIssuer)
	start := func() *caddyProcess {
		p := startCaddyProcess(t, func(port, adminPort int) string {
			return strings.Replace(g.config(port), "admin off", fmt.Sprintf("admin 127.0.0.1:%d", adminPort), 1)
		})
		g.base = p.base
		return p
	}
	p := start()
	issuer = p.base
	user := "jwt-kill-user"
	kept := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read")
	revoked := connect(t, g, user, "home-app", homeSecret, homeRedirect, "chargers:read")
	for _, a := range []*connectedApp{kept, revoked} {
		if s := a.guardStatus(t, g); s != 200 {
			t.Fatalf("before the kill: %d", s)
		}
	}
	revoke(t, g, "home-app", homeSecret, revoked.access)
	if s := revoked.guardStatus(t, g); s != 401 {
		t.Fatalf("revoked JWT before the kill: %d, want 401", s)
	}
	p.kill(t)
	start()

	if s := revoked.guardStatus(t, g); s != 401 {
		t.Errorf("after the kill, the revoked JWT: %d, want 401", s)
	}
	if s := kept.guardStatus(t, g); s != 200 {
		t.Errorf("after the kill, the JWT not revoked: %d, want 200", s)
	}
}

// issuerLine is the issuer option of gatewayCaddyfile.
var issuerLine = regexp.MustCompile(`issuer http://127\.0\.0\.1:\d+`)

// TestJWTAccessTokensWithOpenID: with openid on too, a JWT access token
// reaches userinfo like an opaque one, and the ID token's at_hash is that
// of the JWT's text (OpenID Connect Core 3.1.3.6).
func TestJWTAccessTokensWithOpenID(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", oauthClients+"\n\t\topenid"+jwtAccessOptions)
	user := "jwt-openid-user"
	verifier := oauth2.GenerateVerifier()
	code := authorizeJSON(t, g, user, "other-app", "https://other.example.com/cb", "openid chargers:read", verifier)
	r := tokenRequest(t, g, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://other.example.com/cb"}, "code_verifier": {verifier}}, basicAuth("other-app", "other-secret")...)
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	m := r.decode(t)
	access, _ := m["access_token"].(string)
	idToken, _ := m["id_token"].(string)
	jtiOf(t, access)
	_, idClaims := jwtParts(t, idToken)
	if want := oauth.AtHash(access); idClaims["at_hash"] != want {
		t.Errorf("at_hash %v, want %s, the hash of the JWT access token", idClaims["at_hash"], want)
	}
	if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+access); r.status != 200 {
		t.Errorf("the guard with the JWT access token: %d %s", r.status, r.body)
	}
	u := do(t, "GET", g.base+"/oauth/userinfo", "", "Authorization", "Bearer "+access)
	if u.status != 200 || u.decode(t)["sub"] != user {
		t.Errorf("userinfo with a JWT access token: %d %s", u.status, u.body)
	}
	// The ID token is no access token.
	if u := do(t, "GET", g.base+"/oauth/userinfo", "", "Authorization", "Bearer "+idToken); u.status != 401 {
		t.Errorf("userinfo with the ID token: %d, want 401", u.status)
	}
	if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+idToken); r.status != 401 {
		t.Errorf("the guard with the ID token: %d, want 401", r.status)
	}
}
