package ingest

import (
	"sync"
	"time"
)

// failureLimiter refuses an address after too many failures within a window
// (failed enrollment secrets), so secrets cannot be guessed online. Only
// distinct failures count (distinct wrong secrets): one misconfigured
// laptop retrying the same wrong secret does not lock its office's address
// out. It keeps at most maxTracked addresses; expired entries are evicted
// first.
type failureLimiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	byIP   map[string]*failures
}

type failures struct {
	n     int
	since time.Time
	keys  map[string]struct{} // the distinct failures counted (at most limit)
}

const maxTracked = 100000

func newFailureLimiter(limit int, window time.Duration) *failureLimiter {
	return &failureLimiter{limit: limit, window: window, byIP: map[string]*failures{}}
}

// allow reports whether ip may try again.
func (l *failureLimiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.byIP[ip]
	if f == nil {
		return true
	}
	if now.Sub(f.since) > l.window {
		delete(l.byIP, ip)
		return true
	}
	return f.n < l.limit
}

// fail counts a failure for ip, unless the same failure (key: e.g. the
// digest of the wrong secret) was counted in the window already.
func (l *failureLimiter) fail(ip, key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.byIP[ip]
	if f == nil || now.Sub(f.since) > l.window {
		if len(l.byIP) >= maxTracked {
			l.evict(now)
		}
		f = &failures{since: now, keys: map[string]struct{}{}}
		l.byIP[ip] = f
	}
	if _, seen := f.keys[key]; seen {
		return
	}
	if len(f.keys) < l.limit {
		f.keys[key] = struct{}{}
	}
	f.n++
}

// evict drops expired entries, or every entry if none has expired (a flood
// from many addresses must not grow memory without bound).
func (l *failureLimiter) evict(now time.Time) {
	for ip, f := range l.byIP {
		if now.Sub(f.since) > l.window {
			delete(l.byIP, ip)
		}
	}
	if len(l.byIP) >= maxTracked {
		clear(l.byIP)
	}
}
