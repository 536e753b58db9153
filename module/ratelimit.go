package module

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Client authentication slow-down (docs/reference.md): after maxAuthFailures
// failed client authentications within authFailureWindow from one address,
// that address gets 429 until the oldest of those failures leaves the window.
const (
	maxAuthFailures   = 10
	authFailureWindow = time.Minute
	// maxLimitedAddrs bounds the limiter's memory: past it, the address
	// whose last failure is oldest is forgotten.
	maxLimitedAddrs = 100_000
)

// failureLimiter counts failed client authentications per remote address
// in a sliding window. It is safe for concurrent use.
type failureLimiter struct {
	now func() time.Time
	max int // addresses kept

	mu    sync.Mutex
	addrs map[string]*list.Element // of *addrFailures
	order *list.List               // least recently failed first
}

// addrFailures are the recent failures of one address, oldest first; at
// most maxAuthFailures are kept, which is all the window test needs.
type addrFailures struct {
	addr  string
	times []time.Time
}

func newFailureLimiter(now func() time.Time, maxAddrs int) *failureLimiter {
	if now == nil {
		now = time.Now
	}
	return &failureLimiter{now: now, max: maxAddrs, addrs: map[string]*list.Element{}, order: list.New()}
}

// blocked reports whether addr is slowed down and, if so, how long until a
// failure leaves the window (at least a second, for Retry-After).
func (l *failureLimiter) blocked(addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.pruneStale(now)
	el := l.addrs[addr]
	if el == nil {
		return 0, false
	}
	f := el.Value.(*addrFailures)
	f.dropBefore(now.Add(-authFailureWindow))
	if len(f.times) < maxAuthFailures {
		return 0, false
	}
	wait := f.times[len(f.times)-maxAuthFailures].Add(authFailureWindow).Sub(now)
	if wait < time.Second {
		wait = time.Second
	}
	return wait, true
}

// fail records a failed client authentication from addr.
func (l *failureLimiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.pruneStale(now)
	el := l.addrs[addr]
	if el == nil {
		for l.order.Len() >= l.max && l.order.Len() > 0 {
			l.remove(l.order.Front())
		}
		el = l.order.PushBack(&addrFailures{addr: addr})
		l.addrs[addr] = el
	} else {
		l.order.MoveToBack(el)
	}
	f := el.Value.(*addrFailures)
	f.dropBefore(now.Add(-authFailureWindow))
	if len(f.times) == maxAuthFailures {
		f.times = append(f.times[:0], f.times[1:]...)
	}
	f.times = append(f.times, now)
}

// pruneStale forgets addresses whose last failure has left the window.
func (l *failureLimiter) pruneStale(now time.Time) {
	cutoff := now.Add(-authFailureWindow)
	for el := l.order.Front(); el != nil; el = l.order.Front() {
		f := el.Value.(*addrFailures)
		if len(f.times) > 0 && f.times[len(f.times)-1].After(cutoff) {
			return
		}
		l.remove(el)
	}
}

func (l *failureLimiter) remove(el *list.Element) {
	delete(l.addrs, el.Value.(*addrFailures).addr)
	l.order.Remove(el)
}

func (l *failureLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

func (f *addrFailures) dropBefore(cutoff time.Time) {
	i := 0
	for i < len(f.times) && !f.times[i].After(cutoff) {
		i++
	}
	if i > 0 {
		f.times = append(f.times[:0], f.times[i:]...)
	}
}

// retryAfter formats a wait as whole seconds, rounded up (RFC 9110 10.2.3).
func retryAfter(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// limiters holds one failureLimiter per store (keyed by the shared state's
// pool key), so that counts survive a reload, as the store itself does.
var limiters = struct {
	sync.Mutex
	m map[string]*failureLimiter
}{m: map[string]*failureLimiter{}}

// maxLimiters bounds how many stores' limiters are kept; a process rarely
// uses more than one.
const maxLimiters = 64

// limiterFor returns the limiter of the store with the given pool key.
func limiterFor(key string) *failureLimiter {
	limiters.Lock()
	defer limiters.Unlock()
	if l := limiters.m[key]; l != nil {
		return l
	}
	if len(limiters.m) >= maxLimiters {
		for k, l := range limiters.m {
			if l.size() == 0 {
				delete(limiters.m, k)
			}
		}
		for k := range limiters.m {
			if len(limiters.m) < maxLimiters {
				break
			}
			delete(limiters.m, k)
		}
	}
	l := newFailureLimiter(time.Now, maxLimitedAddrs)
	limiters.m[key] = l
	return l
}

// remoteAddr is the client address as Caddy determines it, trusted_proxies
// respected; the connection's peer when Caddy set none.
func remoteAddr(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
