package oauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/caddy-tokengate/oauth"
	"github.com/tokengate/caddy-tokengate/oauth/sqlstore"
)

const oidcIssuer = "https://api.example.com"

// newOIDCE2E is newE2E with the OpenID Connect scopes and an ID token
// signer on a key ring of alg in the same store.
func newOIDCE2E(t *testing.T, alg string) (*e2e, *oauth.KeyRing) {
	t.Helper()
	var ring *oauth.KeyRing
	e := newE2E(t, func(s *oauth.AuthServer) {
		s.Scopes = append(s.Scopes, oauth.Scope{Name: "openid"}, oauth.Scope{Name: "profile"},
			oauth.Scope{Name: "email"}, oauth.Scope{Name: "offline_access"})
	})
	ring, err := oauth.NewKeyRing(e.store, alg, 720*time.Hour, time.Hour, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.OpenID = &oauth.OpenIDProvider{Ring: ring, Issuer: oidcIssuer, IDTokenTTL: 10 * time.Minute}
	return e, ring
}

// userClaimsJSON are the IdP claims the authorizations below keep.
var userClaimsJSON = []byte(`{"email":"alice@example.com","email_verified":true,"name":"Alice","sub":"forged","iss":"forged"}`)

func (e *e2e) authorizeOIDC(t *testing.T, scope, nonce string) string {
	t.Helper()
	code, oerr, _ := e.srv.Authorize(context.Background(), oauth.AuthorizeRequest{
		ClientID: "app", RedirectURI: redirect, ResponseType: "code", Scope: scope,
		State: "st", CodeChallenge: challenge, CodeChallengeMethod: "S256", UserID: "alice",
		Nonce: nonce, Claims: userClaimsJSON,
	})
	if oerr != nil {
		t.Fatalf("Authorize: %v", oerr)
	}
	return code
}

// verifyIDToken checks an ID token as a relying party holding only the
// JWKS would (OpenID Connect Core 3.1.3.7) and returns its header and
// claims.
func verifyIDToken(t *testing.T, ring *oauth.KeyRing, text string, now time.Time) (map[string]any, jwt.MapClaims) {
	t.Helper()
	return verifyIDTokenFor(t, ring, text, now, "app")
}

// verifyIDTokenFor is verifyIDToken for the client clientID.
func verifyIDTokenFor(t *testing.T, ring *oauth.KeyRing, text string, now time.Time, clientID string) (map[string]any, jwt.MapClaims) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(ring.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithIssuer(oidcIssuer),
		jwt.WithAudience(clientID), jwt.WithExpirationRequired(), jwt.WithValidMethods([]string{"RS256", "ES256"}),
	).ParseWithClaims(text, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		keys := set.Key(kid)
		if len(keys) != 1 {
			return nil, errors.New("kid not in the JWKS")
		}
		if keys[0].Algorithm != tok.Method.Alg() {
			return nil, errors.New("alg is not the key's")
		}
		return keys[0].Key, nil
	})
	if err != nil {
		t.Fatalf("ID token refused: %v", err)
	}
	return tok.Header, claims
}

// atHash is OpenID Connect Core 3.1.3.6 computed here: the left half of
// the SHA-256 of the access token's ASCII, base64url without padding.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// TestOpenIDCodeExchange: the ID token of a code exchange (OpenID Connect
// Core 2, 3.1.3.3, 3.1.3.6, 5.4) for both algorithms.
func TestOpenIDCodeExchange(t *testing.T) {
	for _, alg := range []string{oauth.AlgRS256, oauth.AlgES256} {
		t.Run(alg, func(t *testing.T) {
			e, ring := newOIDCE2E(t, alg)
			authTime := e.clk.Now()
			code := e.authorizeOIDC(t, "openid email offline_access chargers:read", "n-0S6_WzA2Mj")
			e.clk.Advance(3 * time.Second)
			tr, oerr := e.srv.Exchange(context.Background(), e.app, code, redirect, verifier)
			if oerr != nil {
				t.Fatal(oerr)
			}
			if tr.IDToken == "" || tr.RefreshToken == "" || tr.Scope != "openid email offline_access chargers:read" {
				t.Fatalf("token response %+v", tr)
			}
			header, c := verifyIDToken(t, ring, tr.IDToken, e.clk.Now())
			if header["typ"] != "JWT" || header["alg"] != alg || len(header["kid"].(string)) != 43 {
				t.Errorf("header %v", header)
			}
			now := e.clk.Now().Unix()
			want := map[string]any{
				"iss": oidcIssuer, "sub": "alice", "aud": "app", "azp": "app",
				"iat": float64(now), "exp": float64(now + 600), "auth_time": float64(authTime.Unix()),
				"nonce": "n-0S6_WzA2Mj", "at_hash": atHash(tr.AccessToken),
				"email": "alice@example.com", "email_verified": true,
			}
			for name, v := range want {
				if c[name] != v {
					t.Errorf("%s = %v (%T), want %v", name, c[name], c[name], v)
				}
			}
			// name is a profile claim, and profile was not asked for.
			if len(c) != len(want) {
				t.Errorf("claims %v, want exactly %v", c, want)
			}
			e.noSecretsLogged(t, tr.AccessToken, tr.RefreshToken, tr.IDToken, code)
		})
	}
}

// TestOpenIDOfflineAccess: with OpenID Connect on, a refresh token only
// for a grant with offline_access (OpenID Connect Core 11), and an ID
// token only with openid; without it, always a refresh token.
func TestOpenIDOfflineAccess(t *testing.T) {
	e, _ := newOIDCE2E(t, oauth.AlgRS256)
	for _, c := range []struct {
		scope            string
		refresh, idToken bool
	}{
		{"openid email", false, true},
		{"openid offline_access", true, true},
		{"chargers:read", false, false},
		{"offline_access chargers:read", true, false},
	} {
		tr, oerr := e.srv.Exchange(context.Background(), e.app, e.authorizeOIDC(t, c.scope, ""), redirect, verifier)
		if oerr != nil {
			t.Fatal(oerr)
		}
		if (tr.RefreshToken != "") != c.refresh || (tr.IDToken != "") != c.idToken {
			t.Errorf("%q: refresh token %v, ID token %v; want %v, %v", c.scope, tr.RefreshToken != "", tr.IDToken != "", c.refresh, c.idToken)
		}
		e.valid(t, tr.AccessToken)
	}
	plain := newE2E(t, nil)
	if tr := plain.tokens(t, "chargers:read"); tr.RefreshToken == "" || tr.IDToken != "" {
		t.Errorf("without OpenID Connect: %+v", tr)
	}
}

// TestOpenIDRefresh: the ID token of a refresh (OpenID Connect Core 12.2):
// the same iss, sub, aud, azp and auth_time, a new iat, no nonce, at_hash
// of the new access token, and the claims the refreshed scopes release.
func TestOpenIDRefresh(t *testing.T) {
	e, ring := newOIDCE2E(t, oauth.AlgRS256)
	first, oerr := e.srv.Exchange(context.Background(), e.app,
		e.authorizeOIDC(t, "openid profile email offline_access", "nonce-1"), redirect, verifier)
	if oerr != nil {
		t.Fatal(oerr)
	}
	_, c1 := verifyIDToken(t, ring, first.IDToken, e.clk.Now())
	e.clk.Advance(time.Minute)
	second := e.refresh(t, first.RefreshToken, "")
	if second.IDToken == "" || second.RefreshToken == "" {
		t.Fatalf("refresh response %+v", second)
	}
	_, c2 := verifyIDToken(t, ring, second.IDToken, e.clk.Now())
	for _, name := range []string{"iss", "sub", "aud", "azp", "auth_time", "email", "name"} {
		if c2[name] != c1[name] || c2[name] == nil {
			t.Errorf("%s: %v after the refresh, %v before", name, c2[name], c1[name])
		}
	}
	if c2["iat"] != float64(e.clk.Now().Unix()) || c2["iat"] == c1["iat"] {
		t.Errorf("iat %v, want the refresh's time %d", c2["iat"], e.clk.Now().Unix())
	}
	if _, ok := c2["nonce"]; ok || c1["nonce"] != "nonce-1" {
		t.Errorf("nonce %v at the exchange, %v at the refresh (want none)", c1["nonce"], c2["nonce"])
	}
	if c2["at_hash"] != atHash(second.AccessToken) {
		t.Errorf("at_hash %v is not the new access token's", c2["at_hash"])
	}

	// Narrowed to openid and offline_access: no profile or email claims.
	third := e.refresh(t, second.RefreshToken, "openid offline_access")
	_, c3 := verifyIDToken(t, ring, third.IDToken, e.clk.Now())
	if _, ok := c3["email"]; ok {
		t.Errorf("email after narrowing to openid: %v", c3)
	}
	// Narrowed without offline_access: the last refresh token of the grant.
	fourth := e.refresh(t, third.RefreshToken, "openid")
	if fourth.RefreshToken != "" || fourth.IDToken == "" {
		t.Errorf("refresh narrowed to openid: %+v", fourth)
	}
}

// TestIDTokenNotBearer: an ID token is not an access token, whatever its
// signature.
func TestIDTokenNotBearer(t *testing.T) {
	e, _ := newOIDCE2E(t, oauth.AlgRS256)
	tr, oerr := e.srv.Exchange(context.Background(), e.app, e.authorizeOIDC(t, "openid email", ""), redirect, verifier)
	if oerr != nil {
		t.Fatal(oerr)
	}
	e.refused(t, "ID token as bearer", tr.IDToken)
}

// TestOpenIDNoSigningKey: without a key to sign with, the code exchange
// answers temporarily_unavailable and leaves the code unconsumed.
func TestOpenIDNoSigningKey(t *testing.T) {
	e, ring := newOIDCE2E(t, oauth.AlgRS256)
	code := e.authorizeOIDC(t, "openid", "")
	down, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "down.db"))
	if err != nil {
		t.Fatal(err)
	}
	down.Close()
	broken, err := oauth.NewKeyRing(down, oauth.AlgRS256, 720*time.Hour, time.Hour, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.OpenID.Ring = broken
	_, oerr := e.srv.Exchange(context.Background(), e.app, code, redirect, verifier)
	wantErr(t, "exchange without a signing key", oerr, "temporarily_unavailable")
	e.srv.OpenID.Ring = ring
	tr, oerr := e.srv.Exchange(context.Background(), e.app, code, redirect, verifier)
	if oerr != nil || tr.IDToken == "" {
		t.Fatalf("the same code once a key is there: %v %+v", oerr, tr)
	}
	if tr.Scope != "openid" {
		t.Errorf("scope %q", tr.Scope)
	}
}

// TestOpenIDDeviceGrant: with OpenID Connect on, the device grant follows
// the rules of the code exchange: an ID token with openid (with sub, and
// no claims, which a device authorization does not keep), and a refresh
// token only with offline_access (OpenID Connect Core 11).
func TestOpenIDDeviceGrant(t *testing.T) {
	e := newDeviceE2E(t, 0)
	e.grant.Auth.Scopes = append(e.grant.Auth.Scopes, oauth.Scope{Name: "openid"}, oauth.Scope{Name: "offline_access"})
	ring, err := oauth.NewKeyRing(e.store, oauth.AlgES256, 720*time.Hour, time.Hour, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	e.grant.Auth.OpenID = &oauth.OpenIDProvider{Ring: ring, Issuer: oidcIssuer}
	tv, err := oauth.NewClient(oauth.ClientOptions{ID: "oidc-tv", RedirectURIs: []string{redirect},
		GrantTypes: []string{oauth.GrantTypeDeviceCode, oauth.GrantTypeRefreshToken}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := oauth.NewClientRegistry(tv)
	if err != nil {
		t.Fatal(err)
	}
	e.grant.Auth.Clients = reg
	for _, c := range []struct {
		scope            string
		refresh, idToken bool
	}{
		{"openid chargers:read", false, true},
		{"openid offline_access", true, true},
		{"chargers:read", false, false},
	} {
		r, oerr := e.grant.Start(context.Background(), tv, c.scope, verificationURI)
		if oerr != nil {
			t.Fatal(oerr)
		}
		e.clk.Advance(6 * time.Second)
		e.decide(t, r.UserCode, "alice", true)
		tr, oerr := e.grant.Poll(context.Background(), tv, r.DeviceCode)
		if oerr != nil {
			t.Fatal(oerr)
		}
		if (tr.RefreshToken != "") != c.refresh || (tr.IDToken != "") != c.idToken {
			t.Errorf("%q: refresh token %v, ID token %v; want %v, %v", c.scope, tr.RefreshToken != "", tr.IDToken != "", c.refresh, c.idToken)
			continue
		}
		if tr.IDToken != "" {
			_, claims := verifyIDTokenFor(t, ring, tr.IDToken, e.clk.Now(), "oidc-tv")
			if claims["sub"] != "alice" || claims["aud"] != "oidc-tv" || claims["at_hash"] != atHash(tr.AccessToken) {
				t.Errorf("%q: ID token claims %v", c.scope, claims)
			}
		}
	}
}
