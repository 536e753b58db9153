package module

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func failN(l *failureLimiter, addr string, n int) {
	for range n {
		l.fail(addr)
	}
}

func TestFailureLimiterWindow(t *testing.T) {
	clock := newFakeClock()
	l := newFailureLimiter(clock.now, 100)
	for i := range maxAuthFailures {
		if _, blocked := l.blocked("10.0.0.1"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.fail("10.0.0.1")
		clock.advance(time.Second)
	}
	// The first failure was at 0s, the tenth at 9s; it is now 10s.
	wait, blocked := l.blocked("10.0.0.1")
	if !blocked || wait != 50*time.Second {
		t.Fatalf("after %d failures: blocked=%v wait=%v, want 50s", maxAuthFailures, blocked, wait)
	}
	if retryAfter(wait) != "50" {
		t.Errorf("Retry-After %q", retryAfter(wait))
	}
	if _, blocked := l.blocked("10.0.0.2"); blocked {
		t.Fatal("another address is blocked")
	}
	clock.advance(50 * time.Second) // the first failure leaves the window
	if _, blocked := l.blocked("10.0.0.1"); blocked {
		t.Fatal("still blocked after the oldest failure left the window")
	}
	l.fail("10.0.0.1") // ten in the window again
	if wait, blocked := l.blocked("10.0.0.1"); !blocked || wait != time.Second {
		t.Fatalf("blocked=%v wait=%v, want 1s (the failure at 1s leaves at 61s)", blocked, wait)
	}
	clock.advance(2 * time.Minute)
	if _, blocked := l.blocked("10.0.0.1"); blocked {
		t.Fatal("blocked after two quiet minutes")
	}
	if l.size() != 0 {
		t.Errorf("%d addresses kept after their failures expired", l.size())
	}
}

func TestFailureLimiterBounded(t *testing.T) {
	clock := newFakeClock()
	l := newFailureLimiter(clock.now, 3)
	failN(l, "a", maxAuthFailures)
	failN(l, "b", 1)
	failN(l, "c", 1)
	failN(l, "d", 1) // evicts a, the least recently failed
	if l.size() != 3 {
		t.Fatalf("size %d, want 3", l.size())
	}
	if _, blocked := l.blocked("a"); blocked {
		t.Error("evicted address still blocked")
	}
	failN(l, "b", maxAuthFailures)
	failN(l, "e", 1) // evicts c, not b, which failed more recently
	if _, blocked := l.blocked("b"); !blocked {
		t.Error("recently failing address was evicted")
	}
}

func TestLimiterForSharedPerKey(t *testing.T) {
	a, b := limiterFor("test-key-a"), limiterFor("test-key-b")
	if a == b || limiterFor("test-key-a") != a {
		t.Fatal("limiters are not one per key")
	}
}

func TestRemoteAddr(t *testing.T) {
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = "192.0.2.7:4321"
	if got := remoteAddr(r); got != "192.0.2.7" {
		t.Errorf("without Caddy's variable: %q", got)
	}
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "203.0.113.9"})
	if got := remoteAddr(r.WithContext(ctx)); got != "203.0.113.9" {
		t.Errorf("with Caddy's client IP: %q", got)
	}
}
