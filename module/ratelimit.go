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

// failureLimiter counts events per remote address in a sliding window:
// failed client authentications, or registrations. It is safe for
// concurrent use.
type failureLimiter struct {
	now    func() time.Time
	max    int           // addresses kept
	limit  int           // events an address may have in the window
	window time.Duration // how long an event counts

	mu    sync.Mutex
	addrs map[string]*list.Element // of *addrFailures
	order *list.List               // least recently failed first
}

// addrFailures are the recent events of one address, oldest first; at
// most the limiter's limit are kept, which is all the window test needs.
type addrFailures struct {
	addr  string
	times []time.Time
}

// newFailureLimiter is the limiter of failed client authentications.
func newFailureLimiter(now func() time.Time, maxAddrs int) *failureLimiter {
	return newWindowLimiter(now, maxAddrs, maxAuthFailures, authFailureWindow)
}

// newWindowLimiter allows limit events per address within window.
func newWindowLimiter(now func() time.Time, maxAddrs, limit int, window time.Duration) *failureLimiter {
	if now == nil {
		now = time.Now
	}
	return &failureLimiter{now: now, max: maxAddrs, limit: limit, window: window, addrs: map[string]*list.Element{}, order: list.New()}
}

// blocked reports whether addr is slowed down and, if so, how long until a
// failure leaves the window (at least a second, for Retry-After).
func (l *failureLimiter) blocked(addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.blockedLocked(addr)
}

func (l *failureLimiter) blockedLocked(addr string) (time.Duration, bool) {
	now := l.now()
	l.pruneStale(now)
	el := l.addrs[addr]
	if el == nil {
		return 0, false
	}
	f := el.Value.(*addrFailures)
	f.dropBefore(now.Add(-l.window))
	if len(f.times) < l.limit {
		return 0, false
	}
	wait := f.times[len(f.times)-l.limit].Add(l.window).Sub(now)
	if wait < time.Second {
		wait = time.Second
	}
	return wait, true
}

// fail records a failed client authentication from addr.
func (l *failureLimiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recordLocked(addr)
}

func (l *failureLimiter) recordLocked(addr string) {
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
	f.dropBefore(now.Add(-l.window))
	if len(f.times) == l.limit {
		f.times = append(f.times[:0], f.times[1:]...)
	}
	f.times = append(f.times, now)
}

// pruneStale forgets addresses whose last failure has left the window.
func (l *failureLimiter) pruneStale(now time.Time) {
	cutoff := now.Add(-l.window)
	for el := l.order.Front(); el != nil; el = l.order.Front() {
		f := el.Value.(*addrFailures)
		if len(f.times) > 0 && f.times[len(f.times)-1].After(cutoff) {
			return
		}
		l.remove(el)
	}
}

// take records an event from addr unless addr has had its limit within
// the window, all in one step, so that concurrent callers never exceed
// the limit. It returns what blocked does when it refuses.
func (l *failureLimiter) take(addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if wait, blocked := l.blockedLocked(addr); blocked {
		return wait, false
	}
	l.recordLocked(addr)
	return 0, true
}

// giveBack forgets the latest event of addr, which take recorded for
// something that then did not happen.
func (l *failureLimiter) giveBack(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el := l.addrs[addr]; el != nil {
		f := el.Value.(*addrFailures)
		if n := len(f.times); n > 0 {
			f.times = f.times[:n-1]
		}
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

// limiterPool holds one failureLimiter per store (keyed by the shared
// state's pool key), so that counts survive a reload, as the store itself
// does.
type limiterPool struct {
	sync.Mutex
	m    map[string]*failureLimiter
	make func() *failureLimiter
}

// limiters are those of failed client authentications.
var limiters = &limiterPool{m: map[string]*failureLimiter{}, make: func() *failureLimiter {
	return newFailureLimiter(time.Now, maxLimitedAddrs)
}}

// maxLimiters bounds how many stores' limiters are kept; a process rarely
// uses more than one.
const maxLimiters = 64

// limiterFor returns the client authentication limiter of the store with
// the given pool key.
func limiterFor(key string) *failureLimiter { return limiters.get(key) }

// get returns the pool's limiter of the store with the given pool key.
func (p *limiterPool) get(key string) *failureLimiter {
	p.Lock()
	defer p.Unlock()
	if l := p.m[key]; l != nil {
		return l
	}
	if len(p.m) >= maxLimiters {
		for k, l := range p.m {
			if l.size() == 0 {
				delete(p.m, k)
			}
		}
		for k := range p.m {
			if len(p.m) < maxLimiters {
				break
			}
			delete(p.m, k)
		}
	}
	l := p.make()
	p.m[key] = l
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
