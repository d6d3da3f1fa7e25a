package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// Attempt counters live in the ledger's database, so every web API replica
// sharing it shares the sign-in limits. Times are Unix nanoseconds.
const (
	attemptsTableSQL = `CREATE TABLE IF NOT EXISTS erasure_login_attempts (
			key       TEXT PRIMARY KEY,
			count     INTEGER NOT NULL,
			next_at   INTEGER NOT NULL,
			last_at   INTEGER NOT NULL,
			forget_at INTEGER NOT NULL
		) WITHOUT ROWID`
	attemptsIndexSQL = `CREATE INDEX IF NOT EXISTS erasure_login_attempts_forget
			ON erasure_login_attempts (forget_at)`
)

var _ stores.AttemptLimiter = (*Ledger)(nil)

// ReserveAttempt reads, checks and charges every key in one immediate
// transaction, so concurrent reservations (from any process on this
// database) are serialised and none passes uncounted.
func (l *Ledger) ReserveAttempt(ctx context.Context, now time.Time, limits ...stores.AttemptLimit) (bool, time.Duration, error) {
	if err := l.ensure(ctx); err != nil {
		return false, 0, err
	}
	var wait time.Duration
	err := inTx(ctx, l.db, func(tx *sql.Tx) error {
		// Expired counters go first; the index keeps this cheap.
		if _, err := tx.ExecContext(ctx, `DELETE FROM erasure_login_attempts WHERE forget_at <= ?`, now.UnixNano()); err != nil {
			return err
		}
		next := make([]stores.AttemptState, len(limits))
		for i, lim := range limits {
			var cur stores.AttemptState
			var count int
			var nextAt, lastAt int64
			err := tx.QueryRowContext(ctx, `SELECT count, next_at, last_at FROM erasure_login_attempts WHERE key = ?`, lim.Key).
				Scan(&count, &nextAt, &lastAt)
			switch {
			case err == nil:
				cur = stores.AttemptState{Count: count, NextAt: time.Unix(0, nextAt), LastAt: time.Unix(0, lastAt)}
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			st, w := lim.Policy.Reserve(cur, now)
			wait = max(wait, w)
			next[i] = st
		}
		if wait > 0 {
			return nil
		}
		for i, lim := range limits {
			st := next[i]
			if _, err := tx.ExecContext(ctx, `INSERT INTO erasure_login_attempts (key, count, next_at, last_at, forget_at)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET count = excluded.count, next_at = excluded.next_at,
				last_at = excluded.last_at, forget_at = excluded.forget_at`,
				lim.Key, st.Count, unixNano(st.NextAt), st.LastAt.UnixNano(), st.ForgetAt(lim.Policy).UnixNano()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, 0, sqliteErr("ledger: reserve attempt", err)
	}
	return wait == 0, wait, nil
}

// ResetAttempts deletes the keys' counters.
func (l *Ledger) ResetAttempts(ctx context.Context, keys ...string) error {
	if err := l.ensure(ctx); err != nil {
		return err
	}
	err := inTx(ctx, l.db, func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM erasure_login_attempts WHERE key = ?`, k); err != nil {
				return err
			}
		}
		return nil
	})
	return sqliteErr("ledger: reset attempts", err)
}

// RefundAttempt takes one attempt back from key's counter.
func (l *Ledger) RefundAttempt(ctx context.Context, key string) error {
	if err := l.ensure(ctx); err != nil {
		return err
	}
	_, err := l.db.ExecContext(ctx, `UPDATE erasure_login_attempts SET count = max(count - 1, 0) WHERE key = ?`, key)
	return sqliteErr("ledger: refund attempt", err)
}

// unixNano is t in Unix nanoseconds, 0 for the zero time (which has no
// int64 nanosecond form).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
