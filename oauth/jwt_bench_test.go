package oauth

import (
	"context"
	"testing"
)

// Signing runs on every token response with access_token_format jwt.
func BenchmarkSignAccessTokenRS256(b *testing.B) { benchmarkSignAccessToken(b, AlgRS256) }
func BenchmarkSignAccessTokenES256(b *testing.B) { benchmarkSignAccessToken(b, AlgES256) }

// Verification runs on every guarded request carrying a JWT access token;
// nothing here caches its outcome.
func BenchmarkVerifyAccessTokenRS256(b *testing.B) { benchmarkVerifyAccessToken(b, AlgRS256) }
func BenchmarkVerifyAccessTokenES256(b *testing.B) { benchmarkVerifyAccessToken(b, AlgES256) }

func benchmarkSignAccessToken(b *testing.B, alg string) {
	f := newJWTFixture(b, alg)
	c := f.claims()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignAccessToken(ctx, f.ring, c); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkVerifyAccessToken(b *testing.B, alg string) {
	f := newJWTFixture(b, alg)
	text := f.sign(b, f.claims())
	ctx := context.Background()
	now := f.clk.now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyAccessToken(ctx, f.ring, text, testIssuer, testAudience, now); err != nil {
			b.Fatal(err)
		}
	}
}
