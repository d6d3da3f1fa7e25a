package sqlite

import (
	"context"
	"fmt"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
)

// runsTableSQL counts the runs of each channel for each request (MarkRun).
const runsTableSQL = `CREATE TABLE IF NOT EXISTS erasure_ledger_runs (
			request_id TEXT NOT NULL,
			channel    TEXT NOT NULL,
			runs       INTEGER NOT NULL,
			PRIMARY KEY (request_id, channel)
		) WITHOUT ROWID`

// MarkRun counts this run of the request's channel in one statement; the
// first run is the one that counts 1.
func (l *Ledger) MarkRun(ctx context.Context, requestID string, ch schemas.Channel) (bool, error) {
	if err := sqlutil.CheckRequestID(requestID); err != nil {
		return false, err
	}
	if !ch.Valid() {
		return false, stores.Permanent(fmt.Errorf("ledger: mark run: unknown channel %q", ch))
	}
	if err := l.ensure(ctx); err != nil {
		return false, err
	}
	var runs int64
	err := l.db.QueryRowContext(ctx, `INSERT INTO erasure_ledger_runs (request_id, channel, runs) VALUES (?, ?, 1)
		ON CONFLICT (request_id, channel) DO UPDATE SET runs = runs + 1 RETURNING runs`, requestID, string(ch)).Scan(&runs)
	if err != nil {
		return false, sqliteErr("ledger: mark run", err)
	}
	return runs == 1, nil
}
