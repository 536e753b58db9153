package oauth

import (
	"context"
	"encoding/hex"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// envMemoryTest turns on TestCacheMemoryMillionTokens, which takes about a
// minute and half a gigabyte:
//
//	TOKENGATE_MEMORY_TEST=1 go test -run TestCacheMemoryMillionTokens -v ./oauth/
const envMemoryTest = "TOKENGATE_MEMORY_TEST"

// envMemoryProfile names a file for a heap profile of the full cache:
//
//	TOKENGATE_MEMORY_TEST=1 TOKENGATE_MEMORY_PROFILE=/tmp/heap.prof go test -run TestCacheMemoryMillionTokens ./oauth/
//	go tool pprof -sample_index=inuse_space -top /tmp/heap.prof
const envMemoryProfile = "TOKENGATE_MEMORY_PROFILE"

func writeHeapProfile(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

// memoryBudget is what a full default cache may add to the heap.
const memoryBudget = 256 << 20

// generatingStore knows every personal token and builds its principal on
// each look-up, allocating the strings afresh as the SQL stores do, so that
// everything a cached entry holds is counted as the cache's.
type generatingStore struct {
	lookups atomic.Int64
}

func (s *generatingStore) LookupToken(ctx context.Context, k Kind, h TokenHash) (Principal, error) {
	s.lookups.Add(1)
	if k != KindPersonal {
		return Principal{}, ErrNotFound
	}
	// A 36-character user ID like a UUID, and three scopes split from one
	// stored string.
	id := hex.EncodeToString(h[:18])
	return Principal{
		UserID: id,
		Scopes: strings.Fields(strings.Clone("chargers:read sessions:read energy:read")),
		Kind:   KindPersonal,
	}, nil
}

func (s *generatingStore) TouchPersonalToken(context.Context, TokenHash, time.Time) error {
	return nil
}

func (s *generatingStore) lookupCount() int64 { return s.lookups.Load() }

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestCacheMemoryMillionTokens fills a default-sized cache (1,000,000
// entries) with as many distinct personal tokens and checks what it adds to
// the heap, the cache's own structures included.
func TestCacheMemoryMillionTokens(t *testing.T) {
	if os.Getenv(envMemoryTest) != "1" {
		t.Skipf("heavy: set %s=1 to run", envMemoryTest)
	}
	const entries = DefaultCacheEntries
	const sampleEvery = 100
	s := &generatingStore{}
	sample := make([]string, 0, entries/sampleEvery)

	before := heapInUse()
	v, err := NewValidator(s, CacheConfig{MaxEntries: entries, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	empty := heapInUse()
	ctx := context.Background()
	start := time.Now()
	for i := range entries {
		text, _, err := NewToken(KindPersonal)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Validate(ctx, text); err != nil {
			t.Fatal(err)
		}
		if i%sampleEvery == 0 {
			sample = append(sample, text)
		}
	}
	v.cache.Wait()
	fill := time.Since(start)
	// Each first use queued a last_used_at write. The queue is not the
	// cache: it is bounded (maxPendingTouches) and drains every second.
	// Measure it, then let it drain, so what remains is the cache.
	withQueue := heapInUse()
	writeQueuedTouches(v)
	after := heapInUse()
	t.Logf("the last_used_at queue held %.1f MB until written", float64(int64(withQueue)-int64(after))/(1<<20))
	if path := os.Getenv(envMemoryProfile); path != "" {
		writeHeapProfile(t, path)
	}

	// The entries must really be there: a sample is answered from the cache.
	lookups := s.lookupCount()
	for _, text := range sample {
		if _, err := v.Validate(ctx, text); err != nil {
			t.Fatal(err)
		}
	}
	missed := s.lookupCount() - lookups
	runtime.KeepAlive(v)

	added := int64(after) - int64(before)
	fixed := int64(empty) - int64(before)
	t.Logf("%d tokens cached in %v: heap +%.1f MB: %.1f MB for the empty cache (counters), then %.0f bytes/token; %d of %d sampled tokens missed the cache",
		entries, fill.Round(time.Millisecond), float64(added)/(1<<20), float64(fixed)/(1<<20),
		float64(added-fixed)/entries, missed, len(sample))
	if missed > int64(len(sample))/20 {
		t.Errorf("%d of %d sampled tokens were not in the cache: it holds far fewer than %d entries", missed, len(sample), entries)
	}
	if added > memoryBudget {
		t.Errorf("1,000,000 cached tokens add %.1f MB, budget %d MB", float64(added)/(1<<20), memoryBudget>>20)
	}
}

// TestCacheBoundUnderFlood sends many more distinct well-formed but unknown
// tokens than the cache may hold, from several goroutines, and checks that
// each cost exactly one look-up and that the cache never holds more than
// max_entries of them.
func TestCacheBoundUnderFlood(t *testing.T) {
	const (
		maxEntries = 1000
		flood      = 20_000
		workers    = 4
	)
	s := newFakeTokenStore()
	v, err := NewValidator(s, CacheConfig{MaxEntries: maxEntries})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	texts := make([]string, flood)
	for i := range texts {
		texts[i], _ = mustNewToken(t, KindAccess)
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < flood; i += workers {
				if _, err := v.Validate(context.Background(), texts[i]); err == nil {
					t.Error("unknown token accepted")
					return
				}
			}
		})
	}
	wg.Wait()
	v.cache.Wait()
	if got := s.lookupCount(); got != flood {
		t.Errorf("%d distinct unknown tokens cost %d look-ups, want one each", flood, got)
	}

	// Count what the cache holds: Get neither inserts nor evicts.
	held := 0
	for _, text := range texts {
		if _, ok := v.cache.Get(text); ok {
			held++
		}
	}
	t.Logf("after %d distinct tokens the cache holds %d (max_entries %d)", flood, held, maxEntries)
	if held > maxEntries {
		t.Fatalf("cache holds %d tokens, more than max_entries %d", held, maxEntries)
	}
	if held < maxEntries/2 {
		t.Errorf("cache holds only %d tokens after the flood; want it mostly full (%d)", held, maxEntries)
	}

	// Most of the first max_entries tokens were evicted by the later ones,
	// so presenting them again asks the store again.
	before := s.lookupCount()
	for _, text := range texts[:maxEntries] {
		if _, err := v.Validate(context.Background(), text); err == nil {
			t.Fatal("unknown token accepted")
		}
	}
	again := s.lookupCount() - before
	t.Logf("re-presenting the first %d tokens cost %d look-ups", maxEntries, again)
	if again < maxEntries/4 {
		t.Errorf("only %d of the first %d tokens were evicted by %d later ones", again, maxEntries, flood-maxEntries)
	}
}
