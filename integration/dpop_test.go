package integration

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/caddy-tokengate/internal/dpoptest"
)

// dpopClients registers a public client, a confidential one and one that
// must always send a proof (dpop required).
const dpopClients = `
		client dpop-mobile {
			redirect_uri http://127.0.0.1/callback
			scopes sessions:read chargers:read
		}
		client dpop-web {
			secret dpop-web-secret
			redirect_uri https://web.example.com/cb
		}
		client dpop-strict {
			redirect_uri http://127.0.0.1/strict
			dpop required
		}
		client dpop-machine {
			secret dpop-machine-secret
			grant_types client_credentials
		}`

const (
	dpopMobileRedirect = "http://127.0.0.1/callback"
	dpopWebRedirect    = "https://web.example.com/cb"
	dpopStrictRedirect = "http://127.0.0.1/strict"
	dpopWebSecret      = "dpop-web-secret"

	// The challenges of docs/reference.md, exactly.
	dpopProofChallenge = `DPoP algs="ES256 RS256 EdDSA", error="invalid_dpop_proof"`
	dpopTokenChallenge = `DPoP algs="ES256 RS256 EdDSA", error="invalid_token"`
)

// dpopPair is a token response's access and refresh token.
type dpopPair struct {
	access, refresh, tokenType string
}

// dpopTokenRequest posts form to the token endpoint with a DPoP header
// for each proof given.
func dpopTokenRequest(t *testing.T, g *gateway, form url.Values, auth []string, proofs ...string) response {
	t.Helper()
	headers := append([]string(nil), auth...)
	for _, p := range proofs {
		headers = append(headers, "DPoP", p)
	}
	return tokenRequest(t, g, form, headers...)
}

// dpopExchange runs the dashboard authorize step for user and exchanges
// the code with the given proofs, returning the answer.
func dpopExchange(t *testing.T, g *gateway, clientID, redirect string, auth []string, proofs ...string) response {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	code := authorizeJSON(t, g, "dpop-user", clientID, redirect, "sessions:read", verifier)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	if auth == nil {
		form.Set("client_id", clientID)
	}
	return dpopTokenRequest(t, g, form, auth, proofs...)
}

func pairOf(t *testing.T, r response) dpopPair {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("token request: %d %s", r.status, r.body)
	}
	var m struct {
		Access    string `json:"access_token"`
		Refresh   string `json:"refresh_token"`
		TokenType string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatal(err)
	}
	return dpopPair{m.Access, m.Refresh, m.TokenType}
}

// TestDPoP runs RFC 9449 through a real Caddy: a public client binds its
// tokens with a proof at the code exchange, uses the access token through
// the guard with a proof per request, and refreshes with proofs of the
// same key; each way a proof or the binding can fail is refused, at the
// token endpoint with 400 and at the guard with 401 and the DPoP
// challenge, and nothing refused reaches the upstream.
func TestDPoP(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g, admin := startGatewayWithAdmin(t, database, dpopClients)
		token := g.base + "/oauth/token"
		api := g.base + "/functions/v1/api/sessions"
		key, other := dpoptest.NewKey("ES256"), dpoptest.NewKey("EdDSA")
		mobile := func(proofs ...string) response {
			return dpopExchange(t, g, "dpop-mobile", dpopMobileRedirect, nil, proofs...)
		}

		// RFC 9449 5.1: the metadata names the algorithms.
		m := do(t, "GET", g.base+"/.well-known/oauth-authorization-server", "").decode(t)
		if algs, _ := json.Marshal(m["dpop_signing_alg_values_supported"]); string(algs) != `["ES256","RS256","EdDSA"]` {
			t.Errorf("dpop_signing_alg_values_supported %s", algs)
		}

		// RFC 9449 5: a bad proof at the token endpoint; the code is not
		// consumed by it (a later exchange of a fresh code shows the flow).
		for name, proofs := range map[string][]string{
			"token endpoint, RFC 9449 4.3 step 1 two DPoP headers": {key.Proof("POST", token, ""), key.Proof("POST", token, "")},
			"token endpoint, RFC 9449 4.3 step 8 wrong htm":        {key.Proof("GET", token, "")},
			"token endpoint, RFC 9449 4.3 step 9 wrong htu":        {key.Proof("POST", g.base+"/oauth/revoke", "")},
			"token endpoint, RFC 9449 4.3 step 11 stale iat":       {key.Proof("POST", token, "", dpoptest.IATOffset(-5*time.Minute))},
			"token endpoint, RFC 9449 4.3 step 4 typ":              {key.Proof("POST", token, "", dpoptest.Typ("JWT"))},
		} {
			t.Run(name, func(t *testing.T) { expectOAuthError(t, mobile(proofs...), 400, "invalid_dpop_proof") })
		}

		exchanged := key.Proof("POST", token, "")
		first := pairOf(t, mobile(exchanged))
		if first.tokenType != "DPoP" {
			t.Fatalf("token_type %q, want DPoP", first.tokenType)
		}
		t.Run("token endpoint, RFC 9449 4.3 step 11 replayed proof", func(t *testing.T) {
			expectOAuthError(t, mobile(exchanged), 400, "invalid_dpop_proof")
		})

		// RFC 9449 7.1: the guard takes the bound token with a proof.
		seen := g.sessions.count()
		good := key.Proof("GET", api, first.access)
		r := do(t, "GET", api+"?page=2", "", "Authorization", "DPoP "+first.access, "DPoP", good)
		if r.status != 200 {
			t.Fatalf("guard with a proof: %d %s %s", r.status, r.header.Get("WWW-Authenticate"), r.body)
		}
		up := g.sessions.last(t)
		if up.Header.Get("X-Authenticated-Userid") != "dpop-user" || up.Header.Get("Authorization") != "" || up.Header.Get("DPoP") != "" {
			t.Errorf("upstream got user %q, Authorization %q, DPoP %q", up.Header.Get("X-Authenticated-Userid"),
				up.Header.Get("Authorization"), up.Header.Get("DPoP"))
		}

		for _, c := range []struct {
			name      string
			headers   []string
			challenge string
		}{
			{"guard, RFC 9449 7.1 no proof", []string{"Authorization", "DPoP " + first.access}, dpopProofChallenge},
			{"guard, RFC 9449 4.3 step 11 stale iat", []string{"Authorization", "DPoP " + first.access,
				"DPoP", key.Proof("GET", api, first.access, dpoptest.IATOffset(-61*time.Second))}, dpopProofChallenge},
			{"guard, RFC 9449 4.3 step 11 iat in the future", []string{"Authorization", "DPoP " + first.access,
				"DPoP", key.Proof("GET", api, first.access, dpoptest.IATOffset(90*time.Second))}, dpopProofChallenge},
			{"guard, RFC 9449 4.3 step 11 replayed jti", []string{"Authorization", "DPoP " + first.access, "DPoP", good}, dpopProofChallenge},
			{"guard, RFC 9449 4.3 step 8 wrong htm", []string{"Authorization", "DPoP " + first.access,
				"DPoP", key.Proof("POST", api, first.access)}, dpopProofChallenge},
			{"guard, RFC 9449 4.3 step 9 wrong htu", []string{"Authorization", "DPoP " + first.access,
				"DPoP", key.Proof("GET", g.base+"/functions/v1/api/chargers", first.access)}, dpopProofChallenge},
			{"guard, RFC 9449 4.3 step 12 wrong ath", []string{"Authorization", "DPoP " + first.access,
				"DPoP", key.Proof("GET", api, first.access, dpoptest.ATHOf(first.refresh))}, dpopProofChallenge},
			{"guard, RFC 9449 4.3 step 12 foreign key", []string{"Authorization", "DPoP " + first.access,
				"DPoP", other.Proof("GET", api, first.access)}, dpopProofChallenge},
			{"guard, RFC 9449 4.3 step 7 private key in jwk", []string{"Authorization", "DPoP " + first.access,
				"DPoP", key.Proof("GET", api, first.access, dpoptest.PrivateJWK())}, dpopProofChallenge},
			{"guard, RFC 9449 7.2 bound token as Bearer", []string{"Authorization", "Bearer " + first.access,
				"DPoP", key.Proof("GET", api, first.access)}, dpopTokenChallenge},
			{"guard, RFC 9449 7.1 DPoP scheme with a refresh token", []string{"Authorization", "DPoP " + first.refresh,
				"DPoP", key.Proof("GET", api, first.refresh)}, dpopTokenChallenge},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := do(t, "GET", api, "", c.headers...)
				if r.status != 401 || r.header.Get("WWW-Authenticate") != c.challenge {
					t.Fatalf("%d WWW-Authenticate %q, want 401 %q (%s)", r.status, r.header.Get("WWW-Authenticate"), c.challenge, r.body)
				}
				if got := r.decode(t)["error"]; got != "Missing or invalid API token" {
					t.Errorf("body %s", r.body)
				}
			})
		}
		if n := g.sessions.count() - seen; n != 1 {
			t.Errorf("the upstream got %d requests, want the one with a good proof", n)
		}
		// Without a token the answer stays the bearer one.
		if r := do(t, "GET", api, "", "DPoP", key.Proof("GET", api, "")); r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="tokengate"` {
			t.Errorf("no token: %d %q", r.status, r.header.Get("WWW-Authenticate"))
		}

		// Cached validation: each further request pays for its proof
		// and asks the store nothing (docs/dpop.md).
		before := scrapeMetrics(t, admin)
		for i := range 5 {
			if r := do(t, "GET", api, "", "Authorization", "DPoP "+first.access, "DPoP", key.Proof("GET", api, first.access)); r.status != 200 {
				t.Fatalf("request %d: %d %s", i, r.status, r.body)
			}
		}
		after := scrapeMetrics(t, admin)
		const lookups, hits = `caddy_tokengate_store_duration_seconds{op="validate"}`, "caddy_tokengate_cache_hits_total"
		if d := after[lookups] - before[lookups]; d != 0 {
			t.Errorf("%v store look-ups for a cached bound token, want 0", d)
		}
		if d := after[hits] - before[hits]; d != 5 {
			t.Errorf("%v cache hits, want 5", d)
		}

		// RFC 9449 6.2: introspection names the key.
		in := tokenRequestTo(t, g, "/oauth/introspect", url.Values{"token": {first.access}, "client_id": {"dpop-mobile"}}).decode(t)
		if in["active"] != true || in["token_type"] != "DPoP" || !jktIs(in["cnf"], key.Thumbprint()) {
			t.Errorf("introspection: %v", in)
		}

		// RFC 9449 5: the public client's refresh token is bound to the key.
		refresh := func(proofs ...string) response {
			return dpopTokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.refresh},
				"client_id": {"dpop-mobile"}}, nil, proofs...)
		}
		t.Run("RFC 9449 5 refresh without a proof", func(t *testing.T) { expectOAuthError(t, refresh(), 400, "invalid_grant") })
		t.Run("RFC 9449 5 refresh with another key", func(t *testing.T) {
			expectOAuthError(t, refresh(other.Proof("POST", token, "")), 400, "invalid_grant")
		})
		t.Run("RFC 9449 5 refresh with a bad proof", func(t *testing.T) {
			expectOAuthError(t, refresh(key.Proof("POST", api, "")), 400, "invalid_dpop_proof")
		})
		second := pairOf(t, refresh(key.Proof("POST", token, "")))
		if second.tokenType != "DPoP" || second.access == first.access {
			t.Fatalf("refresh: token_type %q, new access token %v", second.tokenType, second.access != first.access)
		}
		if r := do(t, "GET", api, "", "Authorization", "DPoP "+second.access, "DPoP", key.Proof("GET", api, second.access)); r.status != 200 {
			t.Errorf("refreshed token with a proof: %d %s", r.status, r.body)
		}
		// The refusals before did not count as reuse: the first access
		// token is still good.
		if r := do(t, "GET", api, "", "Authorization", "DPoP "+first.access, "DPoP", key.Proof("GET", api, first.access)); r.status != 200 {
			t.Errorf("first access token after the refused refreshes: %d", r.status)
		}
	})
}

// TestDPoPClients: a confidential client's refresh tokens stay unbound
// (RFC 9449 5); a client with dpop required (in the Caddyfile or through
// the admin API, RFC 9449 5.2) gets nothing without a proof.
func TestDPoPClients(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g, admin := startGatewayWithAdmin(t, database, dpopClients)
		token := g.base + "/oauth/token"
		api := g.base + "/functions/v1/api/sessions"
		key := dpoptest.NewKey("RS256")
		web := basicAuth("dpop-web", dpopWebSecret)

		bound := pairOf(t, dpopExchange(t, g, "dpop-web", dpopWebRedirect, web, key.Proof("POST", token, "")))
		if bound.tokenType != "DPoP" {
			t.Fatalf("confidential client with a proof: token_type %q", bound.tokenType)
		}
		unbound := pairOf(t, dpopTokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bound.refresh}}, web))
		if unbound.tokenType != "Bearer" {
			t.Fatalf("confidential client's refresh without a proof: token_type %q, want Bearer", unbound.tokenType)
		}
		if r := do(t, "GET", api, "", "Authorization", "Bearer "+unbound.access); r.status != 200 {
			t.Errorf("unbound token as Bearer: %d %s", r.status, r.body)
		}
		t.Run("unbound token with the DPoP scheme", func(t *testing.T) {
			r := do(t, "GET", api, "", "Authorization", "DPoP "+unbound.access, "DPoP", key.Proof("GET", api, unbound.access))
			if r.status != 401 || r.header.Get("WWW-Authenticate") != dpopTokenChallenge {
				t.Errorf("%d %q", r.status, r.header.Get("WWW-Authenticate"))
			}
		})
		if in := tokenRequestTo(t, g, "/oauth/introspect", url.Values{"token": {unbound.access}}, web...).decode(t); in["token_type"] != "Bearer" || in["cnf"] != nil {
			t.Errorf("introspection of an unbound token: %v", in)
		}

		t.Run("RFC 9449 5 client_credentials", func(t *testing.T) {
			machine := basicAuth("dpop-machine", "dpop-machine-secret")
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"sessions:read"}}
			p := pairOf(t, dpopTokenRequest(t, g, form, machine, key.Proof("POST", token, "")))
			if p.tokenType != "DPoP" || p.refresh != "" {
				t.Fatalf("token_type %q, refresh token %v", p.tokenType, p.refresh != "")
			}
			r := do(t, "GET", api, "", "Authorization", "DPoP "+p.access, "DPoP", key.Proof("GET", api, p.access))
			if r.status != 200 || g.sessions.last(t).Header.Get("X-Authenticated-Token-Type") != "client" {
				t.Errorf("client token with a proof: %d %s", r.status, r.body)
			}
			if r := do(t, "GET", api, "", "Authorization", "Bearer "+p.access); r.status != 401 || r.header.Get("WWW-Authenticate") != dpopTokenChallenge {
				t.Errorf("bound client token as Bearer: %d %q", r.status, r.header.Get("WWW-Authenticate"))
			}
		})
		t.Run("RFC 9449 5.2 dpop required in the Caddyfile", func(t *testing.T) {
			expectOAuthError(t, dpopExchange(t, g, "dpop-strict", dpopStrictRedirect, nil), 400, "invalid_dpop_proof")
			if p := pairOf(t, dpopExchange(t, g, "dpop-strict", dpopStrictRedirect, nil, key.Proof("POST", token, ""))); p.tokenType != "DPoP" {
				t.Errorf("token_type %q", p.tokenType)
			}
		})
		t.Run("RFC 9449 5.2 dpop_bound_access_tokens through the admin API", func(t *testing.T) {
			a := adminAPI{base: admin}
			const id = "stored-strict"
			a.addClient(t, `{"client_id":"`+id+`","name":"Stored strict","redirect_uris":["http://127.0.0.1/stored"],"public":true,"dpop_bound_access_tokens":true}`)
			got := a.call(t, "GET", "/tokengate/clients/"+id, "").decode(t)
			if got["dpop_bound_access_tokens"] != true {
				t.Errorf("client object %v", got)
			}
			expectOAuthError(t, dpopExchange(t, g, id, "http://127.0.0.1/stored", nil), 400, "invalid_dpop_proof")
			pairOf(t, dpopExchange(t, g, id, "http://127.0.0.1/stored", nil, key.Proof("POST", token, "")))
		})
	})
}

// tokenRequestTo posts a form to one of the endpoints.
func tokenRequestTo(t *testing.T, g *gateway, path string, form url.Values, headers ...string) response {
	t.Helper()
	return do(t, "POST", g.base+path, form.Encode(), append(headers, "Content-Type", "application/x-www-form-urlencoded")...)
}

// jktIs reports whether cnf is {"jkt": want}.
func jktIs(cnf any, want string) bool {
	m, ok := cnf.(map[string]any)
	return ok && len(m) == 1 && m["jkt"] == want
}
