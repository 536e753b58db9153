package module

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// startJSON provisions and starts an app from its JSON; Cleanup runs when
// t ends.
func startJSON(t *testing.T, raw string) *App {
	t.Helper()
	a, err := provisionJSON(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	return a
}

type jwksAnswer struct {
	Keys []struct {
		KID string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
		Kty string `json:"kty"`
		D   string `json:"d"`
	} `json:"keys"`
}

func fetchJWKS(t *testing.T, a *App) (*httptest.ResponseRecorder, jwksAnswer) {
	t.Helper()
	e := &Endpoints{JWKS: "/.well-known/jwks.json", app: a, logger: zap.NewNop()}
	rec := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	if err := e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil), next); err != nil {
		t.Fatal(err)
	}
	var set jwksAnswer
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
			t.Fatalf("%s: %v", rec.Body, err)
		}
	}
	return rec, set
}

// TestKeyRingShared: a config that signs starts with a key ring on its
// store, publishes the current and the next key (RFC 7517 5) with a short
// Cache-Control, shares the ring with the next config of a reload as it
// shares the store, and gives it back in Cleanup; a config that signs
// nothing has none and no key set.
func TestKeyRingShared(t *testing.T) {
	db := sqliteDatabase(filepath.Join(t.TempDir(), "tg.db"))
	cfg := `{"issuer": "https://api.example.com", "database": ` + db + `, "openid": {"signing_alg": "ES256"}}`
	first := startJSON(t, cfg)
	ring := first.keyRing()
	if ring == nil {
		t.Fatal("openid on, no key ring")
	}
	rec, set := fetchJWKS(t, first)
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "public, max-age=300" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("JWKS: %d %v", rec.Code, rec.Header())
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want the current and the next: %s", len(set.Keys), rec.Body)
	}
	for _, k := range set.Keys {
		if len(k.KID) != 43 || k.Alg != "ES256" || k.Use != "sig" || k.Kty != "EC" || k.D != "" {
			t.Errorf("published key %+v", k)
		}
	}

	// A reload with the same settings: the same ring.
	next := startJSON(t, cfg)
	if next.keyRing() != ring {
		t.Error("the next config made a key ring of its own")
	}
	if n, _ := keyRings.References(first.keysKey); n != 2 {
		t.Errorf("%d references to the ring, want 2", n)
	}
	if err := first.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n, _ := keyRings.References(next.keysKey); n != 1 {
		t.Errorf("after the old config's Cleanup: %d references, want 1", n)
	}

	// JWT access tokens alone need the keys too; nothing needs none.
	jwtOnly := startJSON(t, `{"issuer": "https://api.example.com", "database": `+sqliteDatabase(filepath.Join(t.TempDir(), "j.db"))+`, "access_token_format": "jwt"}`)
	if _, set := fetchJWKS(t, jwtOnly); len(set.Keys) != 2 || set.Keys[0].Alg != "RS256" {
		t.Errorf("JWT access tokens: %+v", set)
	}
	plain := startJSON(t, `{"issuer": "https://api.example.com", "database": `+sqliteDatabase(filepath.Join(t.TempDir(), "p.db"))+`}`)
	if plain.keyRing() != nil {
		t.Error("a config that signs nothing has a key ring")
	}
	if rec, _ := fetchJWKS(t, plain); rec.Code != http.StatusTeapot {
		t.Errorf("JWKS path without keys: %d, want the next handler", rec.Code)
	}
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n, _ := keyRings.References(next.keysKey); n != 0 {
		t.Errorf("after the last Cleanup: %d references, want 0", n)
	}
}
