package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// Uncached token validation: what a request costs when its token is not in
// the validator's cache and the store must be asked.
//
//	go test -run XXX -bench . -benchmem ./oauth/sqlstore/
//
// The "store" cases call LookupToken directly; the "validator" cases go
// through oauth.Validator with the token forgotten before every request, so
// each one pays the look-up, the cache write and (for a known personal
// token) the last_used_at write that a cache miss in the guard starts in the
// background.

// benchTokens is how many users get a personal token in the miss
// benchmarks: enough that the look-ups do not all hit one B-tree page.
const benchTokens = 1000

// benchStore is what these benchmarks use of a store.
type benchStore interface {
	oauth.ValidatorStore
	ReplacePersonalToken(ctx context.Context, t oauth.PersonalToken) (oauth.TokenHash, bool, error)
	Close() error
}

type benchOpen func(b *testing.B) benchStore

func openSQLiteForBench(b *testing.B) benchStore {
	b.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func openPostgresForBench(b *testing.B) benchStore {
	b.Helper()
	s, err := OpenPostgres(context.Background(), pgtest.Start(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// issueBenchTokens gives n users one personal token each and returns the
// token texts and hashes.
func issueBenchTokens(b *testing.B, s benchStore, n int) ([]string, []oauth.TokenHash) {
	b.Helper()
	ctx := context.Background()
	texts := make([]string, n)
	hashes := make([]oauth.TokenHash, n)
	for i := range n {
		text, h, err := oauth.NewToken(oauth.KindPersonal)
		if err != nil {
			b.Fatal(err)
		}
		_, _, err = s.ReplacePersonalToken(ctx, oauth.PersonalToken{
			UserID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			Hash:   h,
			Hint:   oauth.TokenHint(text),
			Scopes: []string{"chargers:read", "sessions:read", "energy:read"},
		})
		if err != nil {
			b.Fatal(err)
		}
		texts[i], hashes[i] = text, h
	}
	return texts, hashes
}

func newBenchValidator(b *testing.B, s benchStore) *oauth.Validator {
	b.Helper()
	v, err := oauth.NewValidator(s, oauth.CacheConfig{MaxEntries: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	return v
}

func benchLookup(b *testing.B, open benchOpen) {
	s := open(b)
	texts, hashes := issueBenchTokens(b, s, 1)
	ctx := context.Background()

	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := s.LookupToken(ctx, oauth.KindPersonal, hashes[0])
			if err != nil || p.UserID == "" {
				b.Fatalf("LookupToken: %+v, %v", p, err)
			}
		}
	})
	b.Run("store-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.LookupToken(ctx, oauth.KindPersonal, hashes[0]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("validator", func(b *testing.B) {
		v := newBenchValidator(b, s)
		b.ReportAllocs()
		unavailable := 0
		for b.Loop() {
			v.Forget(hashes[0])
			if _, err := v.Validate(ctx, texts[0]); err != nil {
				if !errors.Is(err, oauth.ErrUnavailable) {
					b.Fatal(err)
				}
				unavailable++
			}
		}
		b.ReportMetric(float64(unavailable)/float64(b.N), "unavailable/op")
	})
}

// BenchmarkLookupSQLite is one personal token's look-up in SQLite.
func BenchmarkLookupSQLite(b *testing.B) { benchLookup(b, openSQLiteForBench) }

// BenchmarkLookupPostgres is one personal token's look-up in PostgreSQL
// (skipped without PostgreSQL unless TOKENGATE_REQUIRE_POSTGRES=1).
func BenchmarkLookupPostgres(b *testing.B) { benchLookup(b, openPostgresForBench) }

// benchValidateMiss presents a different, never cached token on every
// iteration, from a list of benchTokens, the cache emptied (outside the
// timer) each time the list starts over:
//   - unknown: well-formed tokens the store does not hold: the look-up and
//     the (negative) cache entry, without any write;
//   - issued: personal tokens the store holds; each miss also starts a
//     last_used_at write, as in the guard (run last: those writes go on
//     after the loop).
//
// A validation that the store could not answer in time counts in
// unavailable/op rather than failing the benchmark.
func benchValidateMiss(b *testing.B, open benchOpen) {
	s := open(b)
	issued, _ := issueBenchTokens(b, s, benchTokens)
	unknown := make([]string, benchTokens)
	for i := range unknown {
		var err error
		if unknown[i], _, err = oauth.NewToken(oauth.KindPersonal); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		texts  []string
		wantOK bool
	}{{"unknown", unknown, false}, {"issued", issued, true}} {
		b.Run(c.name, func(b *testing.B) {
			v := newBenchValidator(b, s)
			ctx := context.Background()
			unavailable := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := i % len(c.texts)
				if j == 0 && i > 0 {
					b.StopTimer()
					v.ForgetAll()
					b.StartTimer()
				}
				_, err := v.Validate(ctx, c.texts[j])
				switch {
				case errors.Is(err, oauth.ErrUnavailable):
					unavailable++
				case (err == nil) != c.wantOK:
					b.Fatalf("Validate: %v", err)
				}
			}
			b.ReportMetric(float64(unavailable)/float64(b.N), "unavailable/op")
		})
	}
}

// BenchmarkValidateMissSQLite is a cache miss answered by SQLite.
func BenchmarkValidateMissSQLite(b *testing.B) { benchValidateMiss(b, openSQLiteForBench) }

// BenchmarkValidateMissPostgres is a cache miss answered by PostgreSQL.
func BenchmarkValidateMissPostgres(b *testing.B) { benchValidateMiss(b, openPostgresForBench) }
