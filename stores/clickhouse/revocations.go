package clickhouse

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// chSessionRevocations holds one row per revocation; the latest wins.
const chSessionRevocations = "erasure_session_revocations"

func revocationsTableSQL(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
			user       String,
			revoked_at UInt64
		) ENGINE = MergeTree() ORDER BY (user, revoked_at)`
}

var _ stores.SessionRevoker = (*Ledger)(nil)

// RevokeSessions appends a revocation of user (Unix nanoseconds).
func (l *Ledger) RevokeSessions(ctx context.Context, user string, at time.Time) error {
	if user == "" {
		return stores.Permanent(errors.New("ledger: revoke sessions: empty user"))
	}
	err := l.chInsert(ctx, chSessionRevocations, []string{"user", "revoked_at"}, []string{"String", "UInt64"},
		[]string{user, strconv.FormatUint(uint64(at.UnixNano()), 10)})
	return clickhouseErr(ctx, "ledger: revoke sessions", err)
}

// SessionsRevokedAt returns the latest revocation of user's sessions.
func (l *Ledger) SessionsRevokedAt(ctx context.Context, user string) (time.Time, error) {
	var ns uint64
	err := l.conn().QueryRow(ctx, `SELECT max(revoked_at) FROM `+l.table(chSessionRevocations)+` WHERE user = ?`, user).Scan(&ns)
	if err != nil {
		return time.Time{}, clickhouseErr(ctx, "ledger: session revocations", err)
	}
	if ns == 0 {
		return time.Time{}, nil
	}
	return time.Unix(0, int64(ns)).UTC(), nil
}
