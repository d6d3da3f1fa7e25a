package webapi

import (
	"context"
	"sync"
	"time"
)

// SessionRevoker is the shared record of "sign out everywhere";
// stores.SessionRevoker is one (the ledger).
type SessionRevoker interface {
	RevokeSessions(ctx context.Context, user string, at time.Time) error
	SessionsRevokedAt(ctx context.Context, user string) (time.Time, error)
}

// revocationCheck is how long a replica trusts what it last read of a
// user's revocation: a sign-out everywhere reaches the sessions other
// replicas hold within this time.
const revocationCheck = 5 * time.Second

// revocations caches, per user, the last revocation read from the shared
// store, so that a session costs the store one read per user per
// revocationCheck.
type revocations struct {
	store SessionRevoker
	every time.Duration
	mu    sync.Mutex
	seen  map[string]revocationRead
}

type revocationRead struct {
	at, readAt time.Time
}

func newRevocations(store SessionRevoker) *revocations {
	return &revocations{store: store, every: revocationCheck, seen: map[string]revocationRead{}}
}

// revoked reports whether sess was ended by a sign-out everywhere on any
// replica. Without a shared store only this replica's sign-outs count,
// and those have dropped the session already.
func (r *revocations) revoked(ctx context.Context, sess *session, now time.Time) (bool, error) {
	if r == nil || r.store == nil {
		return false, nil
	}
	r.mu.Lock()
	read, ok := r.seen[sess.user]
	r.mu.Unlock()
	if !ok || now.Sub(read.readAt) >= r.every {
		at, err := r.store.SessionsRevokedAt(ctx, sess.user)
		if err != nil {
			return false, err
		}
		read = revocationRead{at: at, readAt: now}
		r.mu.Lock()
		if len(r.seen) > 10000 {
			r.seen = map[string]revocationRead{} // bounded: a cache, not a record
		}
		r.seen[sess.user] = read
		r.mu.Unlock()
	}
	return !read.at.IsZero() && !sess.started.After(read.at), nil
}

// revoke records a sign-out everywhere of user at now in the shared store
// and in the cache.
func (r *revocations) revoke(ctx context.Context, user string, now time.Time) error {
	if r == nil || r.store == nil {
		return nil
	}
	if err := r.store.RevokeSessions(ctx, user, now); err != nil {
		return err
	}
	r.mu.Lock()
	r.seen[user] = revocationRead{at: now, readAt: now}
	r.mu.Unlock()
	return nil
}
