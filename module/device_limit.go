package module

import (
	"sync"
	"time"
)

// Wrong user codes on the verification page (docs/devices.md): a user who
// enters maxWrongUserCodes codes that match no pending device within
// wrongUserCodeWindow gets 429 until the oldest of them leaves the window.
// With 20^8 codes, that bounds how fast a signed-in user can guess at
// other people's devices. The counts are kept in memory, per instance.
const (
	maxWrongUserCodes   = 5
	wrongUserCodeWindow = time.Minute
	// maxCountedUsers bounds the counts kept: past it, users with no
	// miss left in the window are dropped, and then any one.
	maxCountedUsers = 100_000
)

// userCodeLimiter counts each user's wrong user codes in a sliding
// window. It is safe for concurrent use.
type userCodeLimiter struct {
	now func() time.Time
	max int

	mu     sync.Mutex
	misses map[string][]time.Time // oldest first, at most maxWrongUserCodes
}

func newUserCodeLimiter(now func() time.Time, maxUsers int) *userCodeLimiter {
	return &userCodeLimiter{now: now, max: maxUsers, misses: map[string][]time.Time{}}
}

// userCodeMisses is the process's limiter: the counts survive a reload,
// as the store does.
var userCodeMisses = newUserCodeLimiter(time.Now, maxCountedUsers)

// blocked reports whether user has used up their wrong codes and, if so,
// how long until one leaves the window (at least a second).
func (l *userCodeLimiter) blocked(user string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	times := l.recent(user, now)
	if len(times) < maxWrongUserCodes {
		return 0, false
	}
	return max(times[len(times)-maxWrongUserCodes].Add(wrongUserCodeWindow).Sub(now), time.Second), true
}

// miss records a wrong code entered by user.
func (l *userCodeLimiter) miss(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	times := l.recent(user, now)
	if times == nil && len(l.misses) >= l.max {
		l.evict(now)
	}
	if len(times) == maxWrongUserCodes {
		times = append(times[:0], times[1:]...)
	}
	l.misses[user] = append(times, now)
}

// recent returns user's misses still in the window, forgetting the rest.
func (l *userCodeLimiter) recent(user string, now time.Time) []time.Time {
	times := l.misses[user]
	cutoff := now.Add(-wrongUserCodeWindow)
	i := 0
	for i < len(times) && !times[i].After(cutoff) {
		i++
	}
	switch {
	case i == len(times):
		delete(l.misses, user)
		return nil
	case i > 0:
		times = append(times[:0], times[i:]...)
		l.misses[user] = times
	}
	return times
}

// evict makes room: users whose misses have all left the window go, and
// if none has, one user chosen by map order.
func (l *userCodeLimiter) evict(now time.Time) {
	cutoff := now.Add(-wrongUserCodeWindow)
	for user, times := range l.misses {
		if !times[len(times)-1].After(cutoff) {
			delete(l.misses, user)
		}
	}
	for user := range l.misses {
		if len(l.misses) < l.max {
			return
		}
		delete(l.misses, user)
	}
}
