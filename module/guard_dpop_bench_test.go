package module

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// BenchmarkGuardDPoP is the guard's ServeHTTP for a cached OAuth access
// token, unbound and sent as a bearer token, against one bound to an ES256
// key and sent with a fresh proof each time. The proofs are made before
// the timer starts, one per iteration:
//
//	go test -run XXX -bench GuardDPoP -benchmem ./module/
func BenchmarkGuardDPoP(b *testing.B) {
	env := newDPoPGuardEnv(b)
	b.Run("bearer", func(b *testing.B) {
		benchGuardProofs(b, env.guard, []string{"Bearer " + env.unbound}, nil)
	})
	b.Run("dpop-es256", func(b *testing.B) {
		proofs := make([]string, b.N)
		for i := range proofs {
			proofs[i] = env.key.Proof(http.MethodGet, benchGuardURL, env.bound)
		}
		benchGuardProofs(b, env.guard, []string{"DPoP " + env.bound}, proofs)
	})
}

const benchGuardURL = "http://127.0.0.1/guarded"

// benchGuardProofs runs the guard in parallel on GET requests with the
// Authorization header auth and, when proofs is not nil, the next unused
// proof in a DPoP header; every request must pass.
func benchGuardProofs(b *testing.B, g *Guard, auth, proofs []string) {
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, benchGuardURL, nil)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		w := &discardWriter{h: make(http.Header)}
		passed := false
		handler := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
			passed = true
			return nil
		})
		proof := make([]string, 1)
		for pb.Next() {
			clear(r.Header)
			r.Header["User-Agent"] = userAgent
			r.Header["Authorization"] = auth
			if proofs != nil {
				proof[0] = proofs[next.Add(1)-1]
				r.Header[headerDPoP] = proof
			}
			clear(w.h)
			w.status, passed = 0, false
			if err := g.ServeHTTP(w, r, handler); err != nil {
				b.Error(err)
				return
			}
			if !passed {
				b.Errorf("refused: %d %v", w.status, w.h)
				return
			}
		}
	})
}
