package clickhouse

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/erasure-project/erasure/stores"
)

const chLoginAttempts = "erasure_login_attempts"

// attemptsTableSQL creates the attempt counters: one row per key, the
// latest version winning, read with FINAL. Times are Unix nanoseconds.
func attemptsTableSQL(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
			key       String,
			version   UInt64,
			count     Int64,
			next_at   Int64,
			last_at   Int64,
			forget_at Int64
		) ENGINE = ReplacingMergeTree(version) ORDER BY key`
}

// attemptCounters serialises the read-check-insert of ReserveAttempt within
// one process. ClickHouse has no transactions, so across processes the
// counters are weaker than SQLite's: two replicas reserving the same key at
// the same moment can both read the old count and both pass, and the later
// insert wins. The limit can then be exceeded by at most one attempt per
// replica per race, and a back-off still starts once any replica sees the
// threshold; within one replica it is exact.
type attemptCounters struct {
	mu          sync.Mutex
	lastVersion uint64
}

// version is above every version this process handed out: the clock in
// nanoseconds, bumped when it did not move. Call with mu held.
func (a *attemptCounters) version() uint64 {
	v := max(uint64(time.Now().UnixNano()), a.lastVersion+1)
	a.lastVersion = v
	return v
}

var _ stores.AttemptLimiter = (*Ledger)(nil)

var (
	chAttemptCols  = []string{"key", "version", "count", "next_at", "last_at", "forget_at"}
	chAttemptTypes = []string{"String", "UInt64", "Int64", "Int64", "Int64", "Int64"}
)

// ReserveAttempt reads the keys' counters, checks them and inserts the
// charged versions; see attemptCounters for its atomicity.
func (l *Ledger) ReserveAttempt(ctx context.Context, now time.Time, limits ...stores.AttemptLimit) (bool, time.Duration, error) {
	l.attempts.mu.Lock()
	defer l.attempts.mu.Unlock()
	cur, err := l.loadAttempts(ctx, limits)
	if err != nil {
		return false, 0, clickhouseErr(ctx, "ledger: reserve attempt", err)
	}
	var wait time.Duration
	rows := make([][]string, 0, len(limits))
	for _, lim := range limits {
		st, w := lim.Policy.Reserve(cur[lim.Key].state, now)
		wait = max(wait, w)
		rows = append(rows, l.attemptRow(lim.Key, st, st.ForgetAt(lim.Policy)))
	}
	if wait > 0 {
		return false, wait, nil
	}
	if err := l.chInsert(ctx, chLoginAttempts, chAttemptCols, chAttemptTypes, rows...); err != nil {
		return false, 0, clickhouseErr(ctx, "ledger: reserve attempt", err)
	}
	return true, 0, nil
}

// ResetAttempts writes an empty version of each key: ClickHouse deletes are
// mutations, too heavy for a sign-in.
func (l *Ledger) ResetAttempts(ctx context.Context, keys ...string) error {
	l.attempts.mu.Lock()
	defer l.attempts.mu.Unlock()
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, l.attemptRow(k, stores.AttemptState{}, time.Time{}))
	}
	return clickhouseErr(ctx, "ledger: reset attempts", l.chInsert(ctx, chLoginAttempts, chAttemptCols, chAttemptTypes, rows...))
}

// RefundAttempt writes key's counter back one attempt, keeping its back-off.
func (l *Ledger) RefundAttempt(ctx context.Context, key string) error {
	l.attempts.mu.Lock()
	defer l.attempts.mu.Unlock()
	cur, err := l.loadAttempts(ctx, []stores.AttemptLimit{{Key: key}})
	if err != nil {
		return clickhouseErr(ctx, "ledger: refund attempt", err)
	}
	c, ok := cur[key]
	if !ok || c.state.Count == 0 {
		return nil
	}
	c.state.Count--
	return clickhouseErr(ctx, "ledger: refund attempt",
		l.chInsert(ctx, chLoginAttempts, chAttemptCols, chAttemptTypes, l.attemptRow(key, c.state, c.forgetAt)))
}

func (l *Ledger) attemptRow(key string, st stores.AttemptState, forgetAt time.Time) []string {
	return []string{key, strconv.FormatUint(l.attempts.version(), 10), strconv.Itoa(st.Count),
		strconv.FormatInt(nanos(st.NextAt), 10), strconv.FormatInt(nanos(st.LastAt), 10), strconv.FormatInt(nanos(forgetAt), 10)}
}

// chAttempt is a stored counter.
type chAttempt struct {
	state    stores.AttemptState
	forgetAt time.Time
}

// loadAttempts reads the current counters of the limits' keys.
func (l *Ledger) loadAttempts(ctx context.Context, limits []stores.AttemptLimit) (map[string]chAttempt, error) {
	out := map[string]chAttempt{}
	if len(limits) == 0 {
		return out, nil
	}
	keys := make([]any, len(limits))
	marks := make([]string, len(limits))
	for i, lim := range limits {
		keys[i], marks[i] = lim.Key, "?"
	}
	rows, err := l.conn().Query(ctx, `SELECT key, count, next_at, last_at, forget_at FROM `+l.table(chLoginAttempts)+
		` FINAL WHERE key IN (`+strings.Join(marks, ", ")+`)`, keys...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var count, nextAt, lastAt, forgetAt int64
		if err := rows.Scan(&k, &count, &nextAt, &lastAt, &forgetAt); err != nil {
			return nil, err
		}
		var c chAttempt
		c.state.Count = int(count)
		if nextAt != 0 {
			c.state.NextAt = time.Unix(0, nextAt)
		}
		if lastAt != 0 {
			c.state.LastAt = time.Unix(0, lastAt)
		}
		if forgetAt != 0 {
			c.forgetAt = time.Unix(0, forgetAt)
		}
		out[k] = c
	}
	return out, rows.Err()
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
