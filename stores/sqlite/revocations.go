package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/erasure-project/erasure/stores"
)

const revocationsTableSQL = `CREATE TABLE IF NOT EXISTS erasure_session_revocations (
			user       TEXT PRIMARY KEY,
			revoked_at INTEGER NOT NULL
		) WITHOUT ROWID`

var _ stores.SessionRevoker = (*Ledger)(nil)

// RevokeSessions keeps the latest revocation of user (Unix nanoseconds).
func (l *Ledger) RevokeSessions(ctx context.Context, user string, at time.Time) error {
	if user == "" {
		return stores.Permanent(errors.New("ledger: revoke sessions: empty user"))
	}
	if err := l.ensure(ctx); err != nil {
		return err
	}
	_, err := l.db.ExecContext(ctx, `INSERT INTO erasure_session_revocations (user, revoked_at) VALUES (?, ?)
		ON CONFLICT (user) DO UPDATE SET revoked_at = max(revoked_at, excluded.revoked_at)`, user, at.UnixNano())
	return sqliteErr("ledger: revoke sessions", err)
}

// SessionsRevokedAt returns the latest revocation of user's sessions.
func (l *Ledger) SessionsRevokedAt(ctx context.Context, user string) (time.Time, error) {
	if err := l.ensure(ctx); err != nil {
		return time.Time{}, err
	}
	var ns int64
	err := l.db.QueryRowContext(ctx, `SELECT revoked_at FROM erasure_session_revocations WHERE user = ?`, user).Scan(&ns)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, sqliteErr("ledger: session revocations", err)
	}
	return time.Unix(0, ns).UTC(), nil
}
