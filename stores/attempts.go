package stores

import (
	"context"
	"time"
)

// AttemptPolicy is the exponential back-off of one attempt counter (sign-in
// attempts, say). The first Free-1 attempts pass freely; attempt Free and
// every later one make the next attempt wait Base, then 2×Base, 4×Base…,
// capped at Max. A back-off rather than a lock-out: whoever triggers it can
// delay the key's owner by at most Max per attempt, never indefinitely.
type AttemptPolicy struct {
	Free int
	Base time.Duration
	Max  time.Duration
	// Forget starts a key over once it has seen no attempt for this long
	// (and is not waiting); it should exceed Max.
	Forget time.Duration
}

// AttemptLimit is one counter an attempt is charged to.
type AttemptLimit struct {
	Key    string
	Policy AttemptPolicy
}

// AttemptState is what a store keeps per key.
type AttemptState struct {
	Count  int
	NextAt time.Time // no attempt before this
	LastAt time.Time
}

// ForgetAt is when the state may be dropped: Forget after the last attempt,
// and never while a back-off is running.
func (s AttemptState) ForgetAt(p AttemptPolicy) time.Time {
	t := s.LastAt.Add(p.Forget)
	if s.NextAt.After(t) {
		return s.NextAt
	}
	return t
}

// Reserve charges one attempt at now to s. It returns the new state, or,
// when the key is backing off, s unchanged and how long to wait.
func (p AttemptPolicy) Reserve(s AttemptState, now time.Time) (AttemptState, time.Duration) {
	if s.LastAt.IsZero() || !now.Before(s.ForgetAt(p)) {
		s = AttemptState{}
	}
	if now.Before(s.NextAt) {
		return s, s.NextAt.Sub(now)
	}
	s.Count++
	s.LastAt = now
	if s.Count >= p.Free {
		s.NextAt = now.Add(p.backoff(s.Count - p.Free))
	}
	return s, 0
}

// backoff is Base×2^k, capped at Max.
func (p AttemptPolicy) backoff(k int) time.Duration {
	d := p.Base
	for ; k > 0 && d < p.Max; k-- {
		d *= 2
	}
	return min(d, p.Max)
}

// AttemptLimiter keeps attempt counters shared by every process using the
// store, so a limit holds across replicas. Keys are opaque: callers hash
// anything personal before it becomes a key.
type AttemptLimiter interface {
	// ReserveAttempt charges one attempt at now to every limit, or to none:
	// when any key is backing off, nothing is charged and the longest wait
	// is returned. An attempt is charged before it is made, so concurrent
	// attempts cannot all pass the check before any is counted.
	ReserveAttempt(ctx context.Context, now time.Time, limits ...AttemptLimit) (allowed bool, retryAfter time.Duration, err error)
	// ResetAttempts starts keys over (after a success that clears them).
	ResetAttempts(ctx context.Context, keys ...string) error
	// RefundAttempt takes back one charged attempt that turned out not to
	// be a failure, leaving any running back-off alone.
	RefundAttempt(ctx context.Context, key string) error
}
