package oauth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an Auditor and a Metrics that keeps what it hears.
type recorder struct {
	mu         sync.Mutex
	events     []AuditEvent
	hits       int
	misses     int
	issued     map[Grant]int
	reuses     int
	storeCalls map[StoreOp]int
}

func newRecorder() *recorder {
	return &recorder{issued: map[Grant]int{}, storeCalls: map[StoreOp]int{}}
}

func (r *recorder) Audit(_ context.Context, e AuditEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) CacheHit()  { r.mu.Lock(); r.hits++; r.mu.Unlock() }
func (r *recorder) CacheMiss() { r.mu.Lock(); r.misses++; r.mu.Unlock() }
func (r *recorder) TokenIssued(g Grant) {
	r.mu.Lock()
	r.issued[g]++
	r.mu.Unlock()
}
func (r *recorder) RefreshReuse() { r.mu.Lock(); r.reuses++; r.mu.Unlock() }
func (r *recorder) StoreCall(op StoreOp, _ time.Duration) {
	r.mu.Lock()
	r.storeCalls[op]++
	r.mu.Unlock()
}

// withMessage returns the events with message msg.
func (r *recorder) withMessage(msg string) []AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []AuditEvent
	for _, e := range r.events {
		if e.Message == msg {
			out = append(out, e)
		}
	}
	return out
}

// assertNoSecret fails when any event holds one of texts, or its part
// after the prefix.
func (r *recorder) assertNoSecret(tb testing.TB, texts ...string) {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		dump := fmt.Sprintf("%+v", e)
		for _, text := range texts {
			if strings.Contains(dump, text) || len(text) > hintLen && strings.Contains(dump, text[hintLen:]) {
				tb.Fatalf("audit event %+v reveals a token", e)
			}
		}
	}
}
