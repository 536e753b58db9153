package oauth

import (
	"context"
	"testing"
)

// The JWT access token path, to compare with BenchmarkValidateCached (an
// opaque token from the cache):
//
//	go test -run '^$' -bench 'BenchmarkValidate(Cached$|JWT)' -benchmem ./oauth/

func newJWTBenchEnv(b *testing.B, alg string) (*jwtEnv, string) {
	e := &jwtEnv{store: newFakeTokenStore(), keys: newFakeSigningKeyStore(), clk: newTestClock()}
	e.v = newValidatorForTest(b, e.store, CacheConfig{}, e.clk)
	e.j = newJWTAccessForTest(b, e.keys, e.clk, alg, testIssuer, testAudience)
	text, _ := e.issue(b, alice)
	return e, text
}

// BenchmarkValidateJWTCached is a JWT access token answered from the
// cache: the jti read from the payload, the text's mark compared, no
// signature check.
func BenchmarkValidateJWTCached(b *testing.B) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		b.Run(alg, func(b *testing.B) {
			e, text := newJWTBenchEnv(b, alg)
			e.mustValidate(b, text)
			settle(e.v)
			before := e.store.lookupCount()
			ctx := context.Background()
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.v.ValidateWith(ctx, text, e.j); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if n := e.store.lookupCount() - before; n != 0 {
				b.Fatalf("cached validations reached the store %d times", n)
			}
		})
	}
}

// BenchmarkValidateJWTFirstUse is the first use of a JWT access token on
// an instance: the full RFC 9068 verification, a look-up of the (fake,
// in-memory) store and the cache write. Each round forgets the token
// first, as a revocation would.
func BenchmarkValidateJWTFirstUse(b *testing.B) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		b.Run(alg, func(b *testing.B) {
			e, text := newJWTBenchEnv(b, alg)
			h, _ := peekJTIHash(text)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				e.v.Forget(h)
				if _, err := e.v.ValidateWith(ctx, text, e.j); err != nil {
					b.Fatal(err)
				}
			}
			if n := e.store.lookupCount(); n < int64(b.N) {
				b.Fatalf("%d rounds made %d look-ups: some were not first uses", b.N, n)
			}
		})
	}
}

// BenchmarkValidateFirstUse is the same for an opaque access token, for
// comparison: no signature, the same look-up and cache write.
func BenchmarkValidateFirstUse(b *testing.B) {
	s := newFakeTokenStore()
	v := newValidatorForTest(b, s, CacheConfig{}, nil)
	text, h := s.issue(KindAccess, Principal{UserID: "alice", ClientID: "app", Scopes: alice.Scopes, Kind: KindAccess})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v.Forget(h)
		if _, err := v.Validate(ctx, text); err != nil {
			b.Fatal(err)
		}
	}
}
