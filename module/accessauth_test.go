package module

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/dpoptest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// countingStore is a ValidatorStore holding access tokens, which counts
// the look-ups that reach it.
type countingStore struct {
	tokens  map[oauth.TokenHash]oauth.Principal
	lookups atomic.Int64
}

func (s *countingStore) LookupToken(_ context.Context, k oauth.Kind, h oauth.TokenHash) (oauth.Principal, error) {
	s.lookups.Add(1)
	p, ok := s.tokens[h]
	if !ok || k != oauth.KindAccess {
		return oauth.Principal{}, oauth.ErrNotFound
	}
	p.Scopes = append([]string(nil), p.Scopes...)
	return p, nil
}

func (s *countingStore) TouchPersonalToken(context.Context, oauth.TokenHash, time.Time) error {
	return nil
}

// dpopGuardEnv is a guard like `tokengate { GET sessions:read }` over a
// validator holding a token bound to key and an unbound one.
type dpopGuardEnv struct {
	guard          *Guard
	store          *countingStore
	key, other     *dpoptest.Key
	bound, unbound string
}

func newDPoPGuardEnv(t testing.TB) *dpopGuardEnv {
	t.Helper()
	env := &dpopGuardEnv{store: &countingStore{tokens: map[oauth.TokenHash]oauth.Principal{}},
		key: dpoptest.NewKey("ES256"), other: dpoptest.NewKey("ES256")}
	add := func(jkt string) string {
		text, h, err := oauth.NewToken(oauth.KindAccess)
		if err != nil {
			t.Fatal(err)
		}
		env.store.tokens[h] = oauth.Principal{UserID: "alice", ClientID: "mobile", Scopes: []string{"sessions:read"},
			Kind: oauth.KindAccess, ExpiresAt: time.Now().Add(time.Hour), DPoPKey: jkt}
		return text
	}
	env.bound, env.unbound = add(env.key.Thumbprint()), add("")
	v, err := oauth.NewValidator(env.store, oauth.CacheConfig{MaxEntries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	env.guard = &Guard{
		Methods: map[string][]string{"GET": {"sessions:read"}, "POST": {"chargers:write"}},
		app:     startedApp(&sharedState{validator: v, dpop: oauth.NewDPoPVerifier(oauth.DPoPConfig{})}),
		logger:  zap.NewNop(),
	}
	return env
}

// upstreamSeen is what the next handler received.
type upstreamSeen struct {
	called bool
	header http.Header
}

func (env *dpopGuardEnv) serve(t *testing.T, r *http.Request) (*httptest.ResponseRecorder, upstreamSeen) {
	t.Helper()
	var seen upstreamSeen
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = upstreamSeen{called: true, header: r.Header.Clone()}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	if err := env.guard.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	return w, seen
}

const guardURL = "http://api.example.com/functions/v1/api/sessions"

// request builds a request to url; headers are name, value pairs, a name
// may repeat.
func request(method, url string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

const (
	challengeProof = `DPoP algs="ES256 RS256 EdDSA", error="invalid_dpop_proof"`
	challengeToken = `DPoP algs="ES256 RS256 EdDSA", error="invalid_token"`
)

// TestGuardDPoP: RFC 9449 7.1, a bound token passes only with the DPoP
// scheme and a proof of its key for this very request; every refusal is
// 401 with the DPoP challenge of docs/reference.md, and nothing reaches
// the next handler.
func TestGuardDPoP(t *testing.T) {
	env := newDPoPGuardEnv(t)
	k, bound := env.key, env.bound
	replayed := k.Proof("GET", guardURL, bound)
	if w, seen := env.serve(t, request("GET", guardURL, "Authorization", "DPoP "+bound, "DPoP", replayed)); w.Code != 204 || !seen.called {
		t.Fatalf("a valid proof: %d %s", w.Code, w.Body)
	}
	cases := []struct {
		name      string
		r         *http.Request
		challenge string
	}{
		{"RFC 9449 7.1 no proof", request("GET", guardURL, "Authorization", "DPoP "+bound), challengeProof},
		{"RFC 9449 4.3 step 1 two DPoP headers", request("GET", guardURL, "Authorization", "DPoP "+bound,
			"DPoP", k.Proof("GET", guardURL, bound), "DPoP", k.Proof("GET", guardURL, bound)), challengeProof},
		{"RFC 9449 4.3 step 2 not a JWT", request("GET", guardURL, "Authorization", "DPoP "+bound, "DPoP", "not-a-jwt"), challengeProof},
		{"RFC 9449 4.3 step 8 wrong htm", request("GET", guardURL, "Authorization", "DPoP "+bound,
			"DPoP", k.Proof("POST", guardURL, bound)), challengeProof},
		{"RFC 9449 4.3 step 9 wrong htu path", request("GET", guardURL, "Authorization", "DPoP "+bound,
			"DPoP", k.Proof("GET", "http://api.example.com/functions/v1/api/chargers", bound)), challengeProof},
		{"RFC 9449 4.3 step 9 wrong htu host", request("GET", guardURL, "Authorization", "DPoP "+bound,
			"DPoP", k.Proof("GET", "http://evil.example.com/functions/v1/api/sessions", bound)), challengeProof},
		{"RFC 9449 4.3 step 9 wrong htu scheme", request("GET", guardURL, "Authorization", "DPoP "+bound,
			"DPoP", k.Proof("GET", "https://api.example.com/functions/v1/api/sessions", bound)), challengeProof},
		{"RFC 9449 4.3 step 11 stale iat", request("GET", guardURL, "Authorization", "DPoP "+bound,
			"DPoP", k.Proof("GET", guardURL, bound, dpoptest.IATOffset(-2*time.Minute))), challengeProof},
		{"RFC 9449 4.3 step 11 replayed jti", request("GET", guardURL, "Authorization", "DPoP "+bound, "DPoP", replayed), challengeProof},
		{"RFC 9449 4.3 step 12 no ath", request("GET", guardURL, "Authorization", "DPoP "+bound,
			"DPoP", k.Proof("GET", guardURL, bound, dpoptest.NoATH())), challengeProof},
		{"RFC 9449 4.3 step 12 ath of another token", request("GET", guardURL, "Authorization", "DPoP "+bound,
			"DPoP", k.Proof("GET", guardURL, bound, dpoptest.ATHOf(env.unbound))), challengeProof},
		{"RFC 9449 4.3 step 12 foreign key", request("GET", guardURL, "Authorization", "DPoP "+bound,
			"DPoP", env.other.Proof("GET", guardURL, bound)), challengeProof},
		{"RFC 9449 7.2 bound token as Bearer", request("GET", guardURL, "Authorization", "Bearer "+bound,
			"DPoP", k.Proof("GET", guardURL, bound)), challengeToken},
		{"RFC 9449 7.1 unbound token with the DPoP scheme", request("GET", guardURL, "Authorization", "DPoP "+env.unbound,
			"DPoP", k.Proof("GET", guardURL, env.unbound)), challengeToken},
		{"RFC 9449 7.1 unknown token with the DPoP scheme", request("GET", guardURL, "Authorization", "DPoP tga_unknown",
			"DPoP", k.Proof("GET", guardURL, "tga_unknown")), challengeToken},
		{"RFC 9449 7.1 DPoP scheme without a token", request("GET", guardURL, "Authorization", "DPoP"), challengeToken},
		{"RFC 9449 7.1 two Authorization headers", request("GET", guardURL, "Authorization", "DPoP "+bound,
			"Authorization", "DPoP "+bound, "DPoP", k.Proof("GET", guardURL, bound)), `Bearer realm="tokengate", error="invalid_token"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, seen := env.serve(t, c.r)
			if w.Code != 401 || seen.called {
				t.Fatalf("%d, next called %v; want 401", w.Code, seen.called)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != c.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
			if body := w.Body.String(); !strings.HasPrefix(body, `{"error":"Missing or invalid API token"`) || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("body %s", body)
			}
		})
	}
}

// TestGuardDPoPPasses: what a good DPoP request gives the next handler,
// and the answers that stay as for bearer tokens.
func TestGuardDPoPPasses(t *testing.T) {
	env := newDPoPGuardEnv(t)
	k, bound := env.key, env.bound

	// The proof names the URI without query and fragment (RFC 9449 4.3
	// step 9); the scheme is read in any letter case.
	w, seen := env.serve(t, request("GET", guardURL+"?from=2026-01-01", "Authorization", "dpop "+bound,
		"DPoP", k.Proof("GET", guardURL, bound)))
	if w.Code != 204 || seen.header.Get(headerUserID) != "alice" {
		t.Fatalf("%d %s, upstream user %q", w.Code, w.Body, seen.header.Get(headerUserID))
	}
	// The token and its proof stay here.
	if seen.header.Get("Authorization") != "" || seen.header.Get("DPoP") != "" {
		t.Errorf("upstream got Authorization %q, DPoP %q", seen.header.Get("Authorization"), seen.header.Get("DPoP"))
	}

	// An unbound token is a bearer token, a DPoP header or not.
	if w, seen := env.serve(t, request("GET", guardURL, "Authorization", "Bearer "+env.unbound, "DPoP", k.Proof("GET", guardURL, env.unbound))); w.Code != 204 || !seen.called {
		t.Errorf("unbound token as Bearer: %d %s", w.Code, w.Body)
	}

	// Without a token, the answer is the bearer one of docs/reference.md.
	w, _ = env.serve(t, request("GET", guardURL, "DPoP", k.Proof("GET", guardURL, "")))
	if got := w.Header().Get("WWW-Authenticate"); w.Code != 401 || got != `Bearer realm="tokengate"` || w.Body.String() != bodyInvalidToken {
		t.Errorf("no token: %d %q %s", w.Code, got, w.Body)
	}

	// A bound token without the scope: 403, the challenge in the DPoP scheme.
	w, seen = env.serve(t, request("POST", guardURL, "Authorization", "DPoP "+bound, "DPoP", k.Proof("POST", guardURL, bound)))
	if got := w.Header().Get("WWW-Authenticate"); w.Code != 403 || seen.called ||
		got != `DPoP algs="ES256 RS256 EdDSA", error="insufficient_scope", scope="chargers:write"` ||
		w.Body.String() != `{"error":"Insufficient scope","required_scope":"chargers:write"}` {
		t.Errorf("insufficient scope: %d %q %s", w.Code, got, w.Body)
	}
}

// TestGuardDPoPCachedNoStoreCall: a bound token validated once is served
// from the cache afterwards: each further request pays for its proof and
// for no store call.
func TestGuardDPoPCachedNoStoreCall(t *testing.T) {
	env := newDPoPGuardEnv(t)
	for i := range 20 {
		w, _ := env.serve(t, request("GET", guardURL, "Authorization", "DPoP "+env.bound, "DPoP", env.key.Proof("GET", guardURL, env.bound)))
		if w.Code != 204 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	if n := env.store.lookups.Load(); n != 1 {
		t.Errorf("%d store look-ups for 20 requests with one token, want 1", n)
	}
}

// TestRequestHTU: the URI a proof must name is the request's as the
// client sent it: scheme of the connection, Host, the path before any
// rewrite, no query.
func TestRequestHTU(t *testing.T) {
	plain := httptest.NewRequest("GET", "http://api.example.com:8080/a%2Fb/c?x=1", nil)
	if got, want := requestHTU(plain), "http://api.example.com:8080/a%2Fb/c"; got != want {
		t.Errorf("plain: %q, want %q", got, want)
	}
	secure := httptest.NewRequest("POST", "https://API.example.com/oauth/token", nil)
	secure.TLS = &tls.ConnectionState{}
	if got, want := requestHTU(secure), "https://API.example.com/oauth/token"; got != want {
		t.Errorf("TLS: %q, want %q", got, want)
	}
	// An earlier handler rewrote the path (uri strip_prefix, handle_path):
	// the client's own path counts.
	orig := httptest.NewRequest("GET", "http://api.example.com/v1/sessions?page=2", nil)
	rewritten := orig.Clone(context.WithValue(orig.Context(), caddyhttp.OriginalRequestCtxKey, *orig))
	rewritten.URL.Path, rewritten.RequestURI = "/sessions", "/sessions"
	if got, want := requestHTU(rewritten), "http://api.example.com/v1/sessions"; got != want {
		t.Errorf("rewritten: %q, want %q", got, want)
	}
}
