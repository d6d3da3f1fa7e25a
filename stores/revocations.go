package stores

import (
	"context"
	"time"
)

// SessionRevoker keeps, per user, when every session of the user was last
// ended ("sign out everywhere"), in the store every web API replica shares,
// so that a session held by any replica ends with it.
type SessionRevoker interface {
	// RevokeSessions ends every session of user started before at; a later
	// revocation moves the time forward, an earlier one changes nothing.
	RevokeSessions(ctx context.Context, user string, at time.Time) error
	// SessionsRevokedAt returns the latest revocation of user's sessions,
	// or the zero time when there was none.
	SessionsRevokedAt(ctx context.Context, user string) (time.Time, error)
}
