package clickhouse

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
)

// chLedgerRuns holds one row per run of a channel for a request.
const chLedgerRuns = "erasure_ledger_runs"

func runsTableSQL(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
			request_id String,
			channel    String,
			run        String,
			at         DateTime
		) ENGINE = MergeTree() PARTITION BY toYYYYMM(at) ORDER BY (request_id, channel, run)`
}

// MarkRun inserts a row for this run and counts the rows of the request's
// channel: only a run that finds its own row alone is the first. Two runs at
// once each find both rows, so both are told they are not the first, which
// only makes their counts say they may be low.
func (l *Ledger) MarkRun(ctx context.Context, requestID string, ch schemas.Channel) (bool, error) {
	if err := sqlutil.CheckRequestID(requestID); err != nil {
		return false, err
	}
	if !ch.Valid() {
		return false, stores.Permanent(fmt.Errorf("ledger: mark run: unknown channel %q", ch))
	}
	var b [12]byte
	if _, err := crand.Read(b[:]); err != nil {
		return false, stores.Retryable(fmt.Errorf("ledger: mark run: %w", err))
	}
	err := l.chInsert(ctx, chLedgerRuns, []string{"request_id", "channel", "run", "at"}, []string{"String", "String", "String", "DateTime"},
		[]string{requestID, string(ch), hex.EncodeToString(b[:]), time.Now().UTC().Format("2006-01-02 15:04:05")})
	if err != nil {
		return false, clickhouseErr(ctx, "ledger: mark run", err)
	}
	var n uint64
	if err := l.conn().QueryRow(ctx, `SELECT count() FROM `+l.table(chLedgerRuns)+` WHERE request_id = ? AND channel = ?`,
		requestID, string(ch)).Scan(&n); err != nil {
		return false, clickhouseErr(ctx, "ledger: mark run", err)
	}
	return n == 1, nil
}
