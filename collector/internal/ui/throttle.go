package ui

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Sign-in throttling: after signInUserFailures failed sign-ins for one
// user name, or signInAddrFailures from one address, within
// signInWindow, further attempts are refused (429) until the window
// passes, so passwords cannot be guessed online. A success clears the
// user name's count. It is per collector replica and keeps at most
// maxThrottled keys.
const (
	signInUserFailures = 10
	signInAddrFailures = 30
	signInWindow       = 15 * time.Minute
	maxThrottled       = 100000
)

type throttle struct {
	mu  sync.Mutex
	n   map[string]int
	at  map[string]time.Time
	now func() time.Time
}

func newThrottle() *throttle {
	return &throttle{n: map[string]int{}, at: map[string]time.Time{}, now: time.Now}
}

func (t *throttle) count(key string) int {
	if at, ok := t.at[key]; ok && t.now().Sub(at) > signInWindow {
		delete(t.n, key)
		delete(t.at, key)
	}
	return t.n[key]
}

// allow reports whether a sign-in of user from r may be tried.
func (t *throttle) allow(user string, r *http.Request) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count("u:"+user) < signInUserFailures && t.count("a:"+clientAddr(r)) < signInAddrFailures
}

// fail counts a failed sign-in of user from r.
func (t *throttle) fail(user string, r *http.Request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.n) >= maxThrottled {
		clear(t.n)
		clear(t.at)
	}
	for _, k := range []string{"u:" + user, "a:" + clientAddr(r)} {
		if t.count(k) == 0 {
			t.at[k] = t.now()
		}
		t.n[k]++
	}
}

// succeed clears user's failures.
func (t *throttle) succeed(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.n, "u:"+user)
	delete(t.at, "u:"+user)
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
