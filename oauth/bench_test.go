package oauth

import (
	"context"
	"testing"
)

var (
	benchKind  Kind
	benchToken string
	benchErr   error
	benchP     Principal
)

func BenchmarkParseToken(b *testing.B) {
	text, _ := mustNewToken(b, KindAccess)
	b.ReportAllocs()
	for b.Loop() {
		benchKind, benchErr = ParseToken(text)
	}
	if benchErr != nil {
		b.Fatal(benchErr)
	}
}

func BenchmarkParseTokenMalformed(b *testing.B) {
	// A checksum mismatch: the most work ParseToken does before refusing.
	text, _ := mustNewToken(b, KindAccess)
	bad := replaceAt(text, 10, 'A')
	if bad == text {
		bad = replaceAt(text, 10, 'B')
	}
	b.ReportAllocs()
	for b.Loop() {
		benchKind, benchErr = ParseToken(bad)
	}
	if benchErr == nil {
		b.Fatal("mutated token accepted")
	}
}

func BenchmarkBearerToken(b *testing.B) {
	text, _ := mustNewToken(b, KindAccess)
	values := []string{"Bearer " + text}
	b.ReportAllocs()
	for b.Loop() {
		benchToken, benchErr = BearerToken(values)
	}
	if benchErr != nil || benchToken != text {
		b.Fatal(benchToken, benchErr)
	}
}

func BenchmarkHashToken(b *testing.B) {
	text, _ := mustNewToken(b, KindAccess)
	b.ReportAllocs()
	var h TokenHash
	for b.Loop() {
		h = HashToken(text)
	}
	_ = h
}

func BenchmarkNewToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		benchToken, _, benchErr = NewToken(KindAccess)
	}
}

func BenchmarkValidateCached(b *testing.B) {
	s := newFakeTokenStore()
	v := newValidatorForTest(b, s, CacheConfig{}, nil)
	text, _ := s.issue(KindAccess, Principal{UserID: "u", Scopes: []string{"a"}, Kind: KindAccess})
	mustValidate(b, v, text)
	settle(v)
	mustValidate(b, v, text)
	before := s.lookupCount()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Validate(ctx, text); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if n := s.lookupCount() - before; n != 0 {
		b.Fatalf("cached validations reached the store %d times", n)
	}
}

func BenchmarkValidateCachedUnknown(b *testing.B) {
	// A made-up but well-formed token, refused from the negative cache.
	s := newFakeTokenStore()
	v := newValidatorForTest(b, s, CacheConfig{}, nil)
	text, _ := mustNewToken(b, KindAccess)
	expectInvalid(b, v, text)
	settle(v)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Validate(ctx, text); err == nil {
				b.Error("unknown token accepted")
				return
			}
		}
	})
	b.StopTimer()
	if n := s.lookupCount(); n != 1 {
		b.Fatalf("negatively cached token reached the store %d times", n)
	}
}

func BenchmarkValidateMalformed(b *testing.B) {
	s := newFakeTokenStore()
	v := newValidatorForTest(b, s, CacheConfig{}, nil)
	text, _ := mustNewToken(b, KindAccess)
	bad := replaceAt(text, 10, 'A')
	if bad == text {
		bad = replaceAt(text, 10, 'B')
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		benchP, benchErr = v.Validate(ctx, bad)
	}
	if benchErr == nil || s.lookupCount() != 0 {
		b.Fatalf("malformed token: err %v, %d look-ups", benchErr, s.lookupCount())
	}
}
