package webapi

import (
	"strings"
	"sync"
	"time"
)

// Login throttling: after loginMaxFailures failed attempts for one name from
// one address within loginWindow, further attempts are refused until the
// window ends. In memory and per instance: it slows guessing, it is not an
// account lockout.
const (
	loginMaxFailures = 5
	loginWindow      = 15 * time.Minute
	loginMaxKeys     = 100_000
)

type loginLimiter struct {
	mu   sync.Mutex
	byID map[string]*loginAttempts
	now  func() time.Time
}

type loginAttempts struct {
	failures int
	since    time.Time
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{byID: map[string]*loginAttempts{}, now: time.Now}
}

func limiterKey(name, ip string) string { return strings.ToLower(name) + "\x00" + ip }

// allow reports whether an attempt may proceed, and if not, how long to wait.
func (l *loginLimiter) allow(name, ip string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.byID[limiterKey(name, ip)]
	if a == nil {
		return true, 0
	}
	end := a.since.Add(loginWindow)
	if !l.now().Before(end) {
		delete(l.byID, limiterKey(name, ip))
		return true, 0
	}
	if a.failures >= loginMaxFailures {
		return false, end.Sub(l.now())
	}
	return true, 0
}

func (l *loginLimiter) fail(name, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := limiterKey(name, ip)
	a := l.byID[k]
	now := l.now()
	if a == nil || !now.Before(a.since.Add(loginWindow)) {
		if len(l.byID) >= loginMaxKeys {
			l.sweepLocked(now)
		}
		// Still full: memory matters more than one attacker's counter.
		for k := range l.byID {
			if len(l.byID) < loginMaxKeys {
				break
			}
			delete(l.byID, k)
		}
		a = &loginAttempts{since: now}
		l.byID[k] = a
	}
	a.failures++
}

func (l *loginLimiter) succeed(name, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byID, limiterKey(name, ip))
}

func (l *loginLimiter) sweepLocked(now time.Time) {
	for k, a := range l.byID {
		if !now.Before(a.since.Add(loginWindow)) {
			delete(l.byID, k)
		}
	}
}
