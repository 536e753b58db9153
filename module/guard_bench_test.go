package module

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// The guard's own cost per request, without Caddy's server, the network or
// an upstream:
//
//	go test -run XXX -bench Guard -benchmem ./module/

// benchStore is a ValidatorStore holding one personal token.
type benchStore struct {
	hash      oauth.TokenHash
	principal oauth.Principal
}

func (s *benchStore) LookupToken(ctx context.Context, k oauth.Kind, h oauth.TokenHash) (oauth.Principal, error) {
	if k != oauth.KindPersonal || h != s.hash {
		return oauth.Principal{}, oauth.ErrNotFound
	}
	p := s.principal
	p.Scopes = append([]string(nil), p.Scopes...)
	return p, nil
}

func (s *benchStore) TouchPersonalToken(context.Context, oauth.TokenHash, time.Time) error {
	return nil
}

// discardWriter is a ResponseWriter that keeps only the header map and
// the status, both reset before every request.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// newTestGuard returns a guard like `tokengate energy:read` over a
// validator holding one valid personal token, and that token.
func newTestGuard(tb testing.TB) (*Guard, string) {
	tb.Helper()
	text, h, err := oauth.NewToken(oauth.KindPersonal)
	if err != nil {
		tb.Fatal(err)
	}
	store := &benchStore{hash: h, principal: oauth.Principal{
		UserID: "3f2a9c1e-7b4d-4e8a-9c3f-1d2e3f4a5b6c",
		Scopes: []string{"chargers:read", "sessions:read", "energy:read"},
		Kind:   oauth.KindPersonal,
	}}
	v, err := oauth.NewValidator(store, oauth.CacheConfig{MaxEntries: 10_000})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	v.SetMetrics(tokengateMetrics())
	if _, err := v.Validate(context.Background(), text); err != nil {
		tb.Fatal(err)
	}
	g := &Guard{
		Methods: map[string][]string{"*": {"energy:read"}},
		app:     startedApp(&sharedState{store: nil, validator: v}),
		metrics: tokengateMetrics(),
		logger:  zap.NewNop(),
	}
	return g, text
}

var (
	userAgent = []string{"bench/1.0"}
	accept    = []string{"application/json"}
)

// benchGuard runs the guard in parallel on requests whose Authorization
// header is auth (nil for none), with the extra headers conn (nil for
// none) as Connection, checking each answer: want 0 means passed to the
// next handler, otherwise the status of the denial.
func benchGuard(b *testing.B, g *Guard, auth, conn []string, want int) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/guarded", nil)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		w := &discardWriter{h: make(http.Header)}
		passed := false
		next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
			passed = true
			return nil
		})
		for pb.Next() {
			// A request as a client sends it: the guard removes the
			// Authorization header and adds the identity headers.
			clear(r.Header)
			r.Header["User-Agent"] = userAgent
			r.Header["Accept"] = accept
			if auth != nil {
				r.Header["Authorization"] = auth
			}
			if conn != nil {
				r.Header["Connection"] = conn
			}
			clear(w.h)
			w.status, passed = 0, false
			if err := g.ServeHTTP(w, r, next); err != nil {
				b.Error(err)
				return
			}
			if passed != (want == 0) || w.status != want {
				b.Errorf("passed %v, status %d; want status %d", passed, w.status, want)
				return
			}
		}
	})
}

// BenchmarkGuardServeHTTP is the guard's ServeHTTP with a no-op next
// handler: a valid cached token, a malformed one (refused before any
// look-up), a well-formed unknown one (refused from the negative cache),
// and no Authorization header; then a valid token with a Connection header
// that names no identity header (keep-alive, as HTTP/1.1 browsers send)
// and with one that does, which the guard rewrites.
func BenchmarkGuardServeHTTP(b *testing.B) {
	g, valid := newTestGuard(b)
	malformed := []byte(valid)
	malformed[10] ^= 1 // breaks the checksum
	unknown, _, err := oauth.NewToken(oauth.KindPersonal)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := g.app.state.validator.Validate(context.Background(), unknown); err == nil {
		b.Fatal("unknown token accepted")
	}

	b.Run("valid", func(b *testing.B) {
		benchGuard(b, g, []string{"Bearer " + valid}, nil, 0)
	})
	b.Run("malformed", func(b *testing.B) {
		benchGuard(b, g, []string{"Bearer " + string(malformed)}, nil, http.StatusUnauthorized)
	})
	b.Run("unknown", func(b *testing.B) {
		benchGuard(b, g, []string{"Bearer " + unknown}, nil, http.StatusUnauthorized)
	})
	b.Run("missing", func(b *testing.B) {
		benchGuard(b, g, nil, nil, http.StatusUnauthorized)
	})
	b.Run("valid-keep-alive", func(b *testing.B) {
		benchGuard(b, g, []string{"Bearer " + valid}, []string{"keep-alive"}, 0)
	})
	b.Run("valid-connection-names-identity", func(b *testing.B) {
		benchGuard(b, g, []string{"Bearer " + valid}, []string{"close, X-Authenticated-Userid"}, 0)
	})
}
