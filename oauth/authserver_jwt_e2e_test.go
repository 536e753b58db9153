package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

const (
	jwtIssuer   = "https://auth.example.com"
	jwtAudience = "https://api.example.com"
)

// switchableKeys is a SigningKeyStore that can be made to fail.
type switchableKeys struct {
	oauth.SigningKeyStore
	failing atomic.Bool
}

var errKeysDown = errors.New("signing keys: store down")

func (s *switchableKeys) InsertSigningKey(ctx context.Context, k oauth.StoredSigningKey) (bool, error) {
	if s.failing.Load() {
		return false, errKeysDown
	}
	return s.SigningKeyStore.InsertSigningKey(ctx, k)
}

func (s *switchableKeys) SigningKeys(ctx context.Context) ([]oauth.StoredSigningKey, error) {
	if s.failing.Load() {
		return nil, errKeysDown
	}
	return s.SigningKeyStore.SigningKeys(ctx)
}

// jwtE2E is the e2e harness issuing JWT access tokens signed with alg.
type jwtE2E struct {
	*e2e
	jwt  *oauth.JWTAccessTokens
	keys *switchableKeys
}

func newJWTE2E(t *testing.T, alg string, configure func(s *oauth.AuthServer)) *jwtE2E {
	t.Helper()
	e := newE2E(t, configure)
	keys := &switchableKeys{SigningKeyStore: e.store}
	ring, err := oauth.NewKeyRing(keys, alg, 24*time.Hour, 2*time.Hour, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	j, err := oauth.NewJWTAccessTokens(ring, jwtIssuer, jwtAudience)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.AccessTokenFormat, e.srv.JWTAccess = oauth.AccessTokenJWT, j
	return &jwtE2E{e2e: e, jwt: j, keys: keys}
}

func (e *jwtE2E) valid(t *testing.T, access string) oauth.Principal {
	t.Helper()
	p, err := e.val.ValidateWith(context.Background(), access, e.jwt)
	if err != nil {
		t.Fatalf("ValidateWith: %v", err)
	}
	return p
}

func (e *jwtE2E) refused(t *testing.T, what, access string) {
	t.Helper()
	if p, err := e.val.ValidateWith(context.Background(), access, e.jwt); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Fatalf("%s: ValidateWith = %+v, %v; want ErrInvalidToken", what, p, err)
	}
}

// jwtParts decodes a JWT's header and claims, without verifying it.
func jwtParts(t *testing.T, text string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(text, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWT", text)
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

func jtiOf(t *testing.T, text string) string {
	t.Helper()
	_, claims := jwtParts(t, text)
	id, _ := claims["jti"].(string)
	if k, err := oauth.ParseToken(id); err != nil || k != oauth.KindJWTID {
		t.Fatalf("jti %q is not a tgj_ id", id)
	}
	return id
}

func TestE2EJWTAccessTokenIssued(t *testing.T) {
	// RFC 9068 2: with access_token_format jwt the access token is a JWT
	// with iss, sub, aud, client_id, scope, jti, exp, iat and auth_time;
	// the refresh token stays opaque.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	authorizedAt := e.clk.Now()
	code := e.authorize(t, "chargers:read sessions:read")
	e.clk.Advance(3 * time.Second)
	tr, oerr := e.srv.Exchange(context.Background(), e.app, code, redirect, verifier)
	if oerr != nil {
		t.Fatalf("Exchange: %v", oerr)
	}
	if k, err := oauth.ParseToken(tr.RefreshToken); err != nil || k != oauth.KindRefresh {
		t.Errorf("refresh token %q is not an opaque tgr_ token", tr.RefreshToken)
	}
	if tr.TokenType != "Bearer" || tr.ExpiresIn != 3600 || tr.Scope != "chargers:read sessions:read" {
		t.Errorf("token response = %+v", tr)
	}
	header, claims := jwtParts(t, tr.AccessToken)
	if header["typ"] != "at+jwt" || header["alg"] != "ES256" || header["kid"] == nil {
		t.Errorf("header = %v", header)
	}
	now := e.clk.Now()
	for k, want := range map[string]any{
		"iss": jwtIssuer, "sub": "alice", "client_id": "app", "scope": "chargers:read sessions:read",
		"iat": float64(now.Unix()), "exp": float64(now.Add(time.Hour).Unix()), "auth_time": float64(authorizedAt.Unix()),
	} {
		if claims[k] != want {
			t.Errorf("claim %s = %v, want %v", k, claims[k], want)
		}
	}
	if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != jwtAudience {
		t.Errorf("aud = %v, want [%s]", claims["aud"], jwtAudience)
	}
	id := jtiOf(t, tr.AccessToken)

	p := e.valid(t, tr.AccessToken)
	if p.UserID != "alice" || p.ClientID != "app" || p.ScopeString() != "chargers:read sessions:read" {
		t.Errorf("principal = %+v", p)
	}
	// The jti names the stored token, and is no token by itself.
	e.refused(t, "the tgj_ id as bearer", id)
	if got, oerr := e.srv.Introspect(context.Background(), e.app, id); oerr != nil || got.Active {
		t.Errorf("introspecting the bare jti = %+v, %v; want inactive", got, oerr)
	}
	e.noSecretsLogged(t, tr.AccessToken, tr.RefreshToken, id, code)
}

func TestE2EJWTRefresh(t *testing.T) {
	// RFC 6749 6: a rotation gives a new JWT access token (of a jti
	// derived from the presented refresh token) and a new refresh token;
	// earlier access tokens stay valid until they expire.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	first := e.tokens(t, "chargers:read sessions:read")
	// Less than the 30 s of leeway on iat: the validator reads the wall
	// clock.
	e.clk.Advance(20 * time.Second)
	next := e.refresh(t, first.RefreshToken, "chargers:read")
	if jtiOf(t, next.AccessToken) == jtiOf(t, first.AccessToken) {
		t.Fatal("the rotation reused the jti of the first access token")
	}
	_, claims := jwtParts(t, next.AccessToken)
	if claims["scope"] != "chargers:read" || claims["iat"] != float64(e.clk.Now().Unix()) {
		t.Errorf("rotated claims = %v", claims)
	}
	if p := e.valid(t, next.AccessToken); p.ScopeString() != "chargers:read" {
		t.Errorf("narrowed principal = %+v", p)
	}
	e.valid(t, first.AccessToken)
}

func TestE2EJWTRefreshGraceReplay(t *testing.T) {
	// refresh_grace: presenting the rotated token again within the grace
	// returns the same pair. RS256 signs alike claims alike, so the JWT is
	// the same text; either way it names the same stored token.
	e := newJWTE2E(t, oauth.AlgRS256, func(s *oauth.AuthServer) { s.RefreshGrace = time.Minute })
	first := e.tokens(t, "chargers:read")
	e.clk.Advance(10 * time.Second)
	a := e.refresh(t, first.RefreshToken, "")
	e.clk.Advance(20 * time.Second)
	b := e.refresh(t, first.RefreshToken, "")
	if a.RefreshToken != b.RefreshToken || a.AccessToken != b.AccessToken {
		t.Fatalf("replay within the grace gave another pair:\n%s\n%s", a.AccessToken, b.AccessToken)
	}
	if a.ExpiresIn-b.ExpiresIn != 20 {
		t.Errorf("expires_in %d then %d; want the replay's 20 s less", a.ExpiresIn, b.ExpiresIn)
	}
	e.valid(t, b.AccessToken)
	// Revoking the replayed JWT revokes the one stored token.
	if oerr := e.srv.Revoke(context.Background(), e.app, b.AccessToken, ""); oerr != nil {
		t.Fatal(oerr)
	}
	e.refused(t, "revoked replay", a.AccessToken)
}

func TestE2EJWTRefreshGraceReplayES256(t *testing.T) {
	// ES256 signs afresh each time: another text, the same jti and row.
	e := newJWTE2E(t, oauth.AlgES256, func(s *oauth.AuthServer) { s.RefreshGrace = time.Minute })
	first := e.tokens(t, "chargers:read")
	a := e.refresh(t, first.RefreshToken, "")
	b := e.refresh(t, first.RefreshToken, "")
	if a.RefreshToken != b.RefreshToken || jtiOf(t, a.AccessToken) != jtiOf(t, b.AccessToken) {
		t.Fatal("replay within the grace named another token")
	}
	_, ca := jwtParts(t, a.AccessToken)
	_, cb := jwtParts(t, b.AccessToken)
	for _, k := range []string{"iat", "exp", "scope", "sub", "aud"} {
		if !jsonEqual(ca[k], cb[k]) {
			t.Errorf("claim %s: %v, then %v on replay", k, ca[k], cb[k])
		}
	}
	e.valid(t, a.AccessToken)
	e.valid(t, b.AccessToken)
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestE2EJWTReuseDetectionRevokesFamily(t *testing.T) {
	// RFC 9700 4.14.2: reuse revokes the family, JWT access tokens
	// included, and the validator forgets them at once.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	first := e.tokens(t, "chargers:read")
	next := e.refresh(t, first.RefreshToken, "")
	e.valid(t, first.AccessToken)
	e.valid(t, next.AccessToken)
	_, oerr := e.srv.Refresh(context.Background(), e.app, first.RefreshToken, "")
	wantErr(t, "reuse", oerr, "invalid_grant")
	e.refused(t, "first access token after reuse", first.AccessToken)
	e.refused(t, "rotated access token after reuse", next.AccessToken)
}

func TestE2EJWTUserRevocation(t *testing.T) {
	// Sign out everywhere covers JWT access tokens.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	tr := e.tokens(t, "chargers:read")
	e.valid(t, tr.AccessToken)
	if err := e.srv.RevokeUser(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	e.refused(t, "after user revocation", tr.AccessToken)
}

func TestE2EJWTRevoke(t *testing.T) {
	// RFC 7009 2.1: a JWT access token of ours is revoked by its jti;
	// one of another client is left alone; a foreign or malformed JWT is
	// unknown, answered 200 all the same.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	ctx := context.Background()
	tr := e.tokens(t, "chargers:read")
	e.valid(t, tr.AccessToken)
	if oerr := e.srv.Revoke(ctx, e.other, tr.AccessToken, "access_token"); oerr != nil {
		t.Fatal(oerr)
	}
	e.valid(t, tr.AccessToken)

	parts := strings.Split(tr.AccessToken, ".")
	for name, bad := range map[string]string{
		"tampered payload": parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"jti":"`+jtiOf(t, tr.AccessToken)+`"}`)) + "." + parts[2],
		"bare jti":         jtiOf(t, tr.AccessToken),
		"not a JWT":        "a.b.c",
	} {
		if oerr := e.srv.Revoke(ctx, e.app, bad, ""); oerr != nil {
			t.Fatalf("revoking %s: %v, want 200", name, oerr)
		}
	}
	e.valid(t, tr.AccessToken)

	if oerr := e.srv.Revoke(ctx, e.app, tr.AccessToken, "access_token"); oerr != nil {
		t.Fatal(oerr)
	}
	e.refused(t, "revoked", tr.AccessToken)
	// The refresh token is not part of an access token's revocation.
	e.refresh(t, tr.RefreshToken, "")
}

func TestE2EJWTRevokeExpired(t *testing.T) {
	// Expiry does not keep a JWT of ours from being revoked: its stored
	// token is marked revoked all the same.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	tr := e.tokens(t, "chargers:read")
	h := oauth.HashToken(jtiOf(t, tr.AccessToken))
	e.clk.Advance(2 * time.Hour)
	if oerr := e.srv.Revoke(context.Background(), e.app, tr.AccessToken, ""); oerr != nil {
		t.Fatal(oerr)
	}
	if info, err := e.store.IntrospectToken(context.Background(), h); !errors.Is(err, oauth.ErrNotFound) {
		t.Fatalf("expired JWT after revocation: %+v, %v; want it revoked", info, err)
	}
}

func TestE2EJWTRevokeKeysUnavailable(t *testing.T) {
	// A JWT whose key this instance cannot read while the store is down:
	// 503, never a false 200.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	tr := e.tokens(t, "chargers:read")
	// A ring that has loaded nothing yet, as on an instance just started.
	ring, err := oauth.NewKeyRing(e.keys, oauth.AlgES256, 24*time.Hour, 2*time.Hour, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.JWTAccess, _ = oauth.NewJWTAccessTokens(ring, jwtIssuer, jwtAudience)
	e.keys.failing.Store(true)
	wantErr(t, "revoke while the keys cannot be read", e.srv.Revoke(context.Background(), e.app, tr.AccessToken, ""), "temporarily_unavailable")
	_, oerr := e.srv.Introspect(context.Background(), e.app, tr.AccessToken)
	wantErr(t, "introspect while the keys cannot be read", oerr, "temporarily_unavailable")
}

func TestE2EJWTIntrospect(t *testing.T) {
	// RFC 7662 2.2: introspection answers for JWT access tokens as for
	// opaque ones; a client sees only its own.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	ctx := context.Background()
	tr := e.tokens(t, "chargers:read sessions:read")
	got, oerr := e.srv.Introspect(ctx, e.app, tr.AccessToken)
	if oerr != nil {
		t.Fatal(oerr)
	}
	_, claims := jwtParts(t, tr.AccessToken)
	want := oauth.Introspection{Active: true, Scope: "chargers:read sessions:read", ClientID: "app", Sub: "alice",
		Exp: int64(claims["exp"].(float64)), Iat: int64(claims["iat"].(float64)), TokenType: "Bearer"}
	if got != want {
		t.Errorf("introspection = %+v, want %+v", got, want)
	}
	if got, _ := e.srv.Introspect(ctx, e.other, tr.AccessToken); got.Active {
		t.Error("another client sees the JWT as active")
	}
	if got, oerr := e.srv.Introspect(ctx, e.app, "a.b.c"); oerr != nil || got.Active {
		t.Errorf("malformed JWT = %+v, %v; want inactive", got, oerr)
	}
	if oerr := e.srv.Revoke(ctx, e.app, tr.AccessToken, ""); oerr != nil {
		t.Fatal(oerr)
	}
	if got, _ := e.srv.Introspect(ctx, e.app, tr.AccessToken); got.Active {
		t.Error("revoked JWT introspected as active")
	}
}

func TestE2EJWTIntrospectOtherIssuer(t *testing.T) {
	// A JWT of another issuer, even one signed with these keys, is not
	// ours: inactive, and revoking it does nothing.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	tr := e.tokens(t, "chargers:read")
	stranger := newJWTE2E(t, oauth.AlgES256, nil)
	theirs := stranger.tokens(t, "chargers:read")
	if got, _ := e.srv.Introspect(context.Background(), e.app, theirs.AccessToken); got.Active {
		t.Error("another deployment's JWT introspected as active")
	}
	ring, _ := oauth.NewKeyRing(e.keys, oauth.AlgES256, 24*time.Hour, 2*time.Hour, e.clk.Now)
	elsewhere, _ := oauth.NewJWTAccessTokens(ring, "https://elsewhere.example", jwtAudience)
	e.srv.JWTAccess = elsewhere
	if got, _ := e.srv.Introspect(context.Background(), e.app, tr.AccessToken); got.Active {
		t.Error("a JWT of another iss introspected as active")
	}
}

func TestE2EJWTExchangeWaitsForSigningKeys(t *testing.T) {
	// When the key cannot be loaded the code is not spent: the exchange
	// answers temporarily_unavailable and succeeds once the keys are back.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	code := e.authorize(t, "chargers:read")
	e.keys.failing.Store(true)
	_, oerr := e.srv.Exchange(context.Background(), e.app, code, redirect, verifier)
	wantErr(t, "exchange without signing keys", oerr, "temporarily_unavailable")
	e.keys.failing.Store(false)
	e.clk.Advance(2 * time.Second)
	tr, oerr := e.srv.Exchange(context.Background(), e.app, code, redirect, verifier)
	if oerr != nil {
		t.Fatalf("exchange once the keys are back: %v", oerr)
	}
	e.valid(t, tr.AccessToken)
}

func TestE2EOpaqueFormatStillReadsJWTs(t *testing.T) {
	// Back to access_token_format opaque: new tokens are tga_, and the
	// JWTs issued before keep working, can be revoked and introspected.
	e := newJWTE2E(t, oauth.AlgES256, nil)
	old := e.tokens(t, "chargers:read")
	e.srv.AccessTokenFormat = oauth.AccessTokenOpaque
	fresh := e.tokens(t, "chargers:read")
	if k, err := oauth.ParseToken(fresh.AccessToken); err != nil || k != oauth.KindAccess {
		t.Fatalf("opaque format issued %q", fresh.AccessToken)
	}
	e.valid(t, fresh.AccessToken)
	e.valid(t, old.AccessToken)
	if got, _ := e.srv.Introspect(context.Background(), e.app, old.AccessToken); !got.Active {
		t.Error("JWT issued before the switch introspected as inactive")
	}
	if oerr := e.srv.Revoke(context.Background(), e.app, old.AccessToken, ""); oerr != nil {
		t.Fatal(oerr)
	}
	e.refused(t, "revoked after the switch", old.AccessToken)
}

func TestE2EJWTClientCredentials(t *testing.T) {
	// RFC 9068 2.2: a client token as a JWT has the client as sub, and no
	// auth_time, there being no user.
	m := newMachineE2E(t)
	ring, err := oauth.NewKeyRing(m.store, oauth.AlgES256, 24*time.Hour, 2*time.Hour, m.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	j, err := oauth.NewJWTAccessTokens(ring, jwtIssuer, jwtAudience)
	if err != nil {
		t.Fatal(err)
	}
	m.srv.AccessTokenFormat, m.srv.JWTAccess = oauth.AccessTokenJWT, j
	tr := m.clientToken(t, "energy:read")
	_, claims := jwtParts(t, tr.AccessToken)
	if claims["sub"] != "machine" || claims["client_id"] != "machine" || claims["scope"] != "energy:read" || claims["auth_time"] != nil {
		t.Errorf("client token claims = %v", claims)
	}
	if n := m.metrics.count(oauth.GrantClientCredentials); n != 1 {
		t.Errorf("TokenIssued(client_credentials) counted %d times, want 1", n)
	}
	p, err := m.val.ValidateWith(context.Background(), tr.AccessToken, j)
	if err != nil || p.UserID != "" || p.ClientID != "machine" || p.TokenType() != oauth.TokenTypeClient {
		t.Fatalf("ValidateWith = %+v, %v; want the client's own token", p, err)
	}
	if info, oerr := m.srv.Introspect(context.Background(), m.machine, tr.AccessToken); oerr != nil || !info.Active || info.Sub != "machine" {
		t.Errorf("Introspect = %+v, %v", info, oerr)
	}
	if oerr := m.srv.Revoke(context.Background(), m.machine, tr.AccessToken, ""); oerr != nil {
		t.Fatal(oerr)
	}
	if _, err := m.val.ValidateWith(context.Background(), tr.AccessToken, j); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Errorf("revoked client JWT: %v, want ErrInvalidToken", err)
	}
}

func TestE2EJWTDeviceGrant(t *testing.T) {
	// RFC 8628 3.5 with JWT access tokens: the approved poll answers a JWT
	// whose auth_time is the user's approval, revocable as any other.
	e := newDeviceE2E(t, 0)
	ring, err := oauth.NewKeyRing(e.store, oauth.AlgES256, 24*time.Hour, 2*time.Hour, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	j, err := oauth.NewJWTAccessTokens(ring, jwtIssuer, jwtAudience)
	if err != nil {
		t.Fatal(err)
	}
	e.grant.Auth.AccessTokenFormat, e.grant.Auth.JWTAccess = oauth.AccessTokenJWT, j
	r := e.start(t, "energy:read")
	approvedAt := e.clk.Now()
	e.decide(t, r.UserCode, "alice", true)
	tr, oerr := e.grant.Poll(context.Background(), e.tv, r.DeviceCode)
	if oerr != nil {
		t.Fatalf("Poll: %v", oerr)
	}
	_, claims := jwtParts(t, tr.AccessToken)
	if claims["sub"] != "alice" || claims["client_id"] != "tv" || claims["scope"] != "energy:read" ||
		claims["auth_time"] != float64(approvedAt.Unix()) {
		t.Errorf("device JWT claims = %v", claims)
	}
	if k, err := oauth.ParseToken(tr.RefreshToken); err != nil || k != oauth.KindRefresh {
		t.Errorf("refresh token %q is not opaque", tr.RefreshToken)
	}
	if p, err := e.val.ValidateWith(context.Background(), tr.AccessToken, j); err != nil || p.UserID != "alice" {
		t.Fatalf("ValidateWith = %+v, %v", p, err)
	}
	if oerr := e.grant.Auth.Revoke(context.Background(), e.tv, tr.AccessToken, ""); oerr != nil {
		t.Fatal(oerr)
	}
	if _, err := e.val.ValidateWith(context.Background(), tr.AccessToken, j); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Errorf("revoked device JWT: %v, want ErrInvalidToken", err)
	}
}
