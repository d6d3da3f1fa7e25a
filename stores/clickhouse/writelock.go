package clickhouse

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/erasure-project/erasure/stores"
)

// chLedgerLocks holds the rows of the ledger's writer lock.
const chLedgerLocks = "erasure_ledger_locks"

// The writer lock's timing. A lock row is live for writeLockTTL by the
// server's clock (whole seconds, so up to a second more); its holder stops
// writing writeLockMargin before that by its own clock, measured from before
// the row was inserted, which leaves room for the last insert to land. A
// holder that crashed holds up the others for the TTL, so it is short: a
// ledger write is a few statements.
const (
	writeLockTTL    = 6 * time.Second
	writeLockMargin = 2 * time.Second
	// writeLockWait bounds one acquisition: a crashed holder's row is dead
	// after writeLockTTL, so waiting much longer means the lock is contended
	// beyond reason or the server is in trouble; the caller retries.
	writeLockWait = 3 * writeLockTTL
)

// locksTableSQL creates the writer lock's table: one "intent" row per
// attempt to take the lock and one "release" row when it ends. Rows are
// never changed; partitions by month keep old ones cheap to drop.
func locksTableSQL(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
			name String,
			id   String,
			kind String,
			at   DateTime
		) ENGINE = MergeTree() PARTITION BY toYYYYMM(at) ORDER BY (name, at, id)`
}

// writeLock is a mutual exclusion lock between every process that writes the
// ledger, for ClickHouse, which has neither transactions nor a conditional
// insert. To take it, a process inserts an intent row under a fresh ID and
// then reads the live intents (those without a release row, younger than
// the TTL by the server's clock): if its own is the only one, it holds the
// lock; otherwise it releases its intent, waits until no intent is live, and
// tries again after a random pause.
//
// Two processes cannot both hold it: each inserts before it reads, and inserts
// and reads on one server are linearizable, so whichever reads last sees the
// other's intent, unless that one was released (its holder is done) or is
// older than the TTL. The last case is why a holder checks its lease before
// every write (ensureHeld) and gives up past it: a holder stalled longer than
// the margin allows fails its write rather than overlap another. A holder
// that crashes blocks the others for at most the TTL.
type writeLock struct {
	conn  chdriver.Conn
	table string
	name  string

	ttl, margin, wait time.Duration

	// until is when the current lease ends by this process's clock; zero
	// while not held. Guarded by the ledger's mutex, like every write.
	until time.Time
	id    string
}

func newWriteLock(conn chdriver.Conn, table, name string) *writeLock {
	return &writeLock{conn: conn, table: table, name: name, ttl: writeLockTTL, margin: writeLockMargin, wait: writeLockWait}
}

// errLockBusy is returned when the lock could not be taken within its wait.
var errLockBusy = errors.New("ledger writer lock busy")

// lock takes the lock and returns its release. Call with the ledger's mutex
// held, and keep it until the release has run.
func (w *writeLock) lock(ctx context.Context) (func(), error) {
	give := time.Now().Add(w.wait)
	for {
		if err := w.awaitFree(ctx, give); err != nil {
			return nil, err
		}
		id, err := newLockID()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		err = w.insert(ctx, id, "intent")
		if err == nil {
			var live []string
			live, err = w.live(ctx)
			if err == nil && len(live) == 1 && live[0] == id {
				w.id, w.until = id, start.Add(w.ttl-w.margin)
				return w.release, nil
			}
		}
		// An insert that failed may still have landed: release it either way.
		w.releaseID(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := sleepJitter(ctx, 2*time.Millisecond, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// awaitFree polls until no intent is live.
func (w *writeLock) awaitFree(ctx context.Context, give time.Time) error {
	for {
		live, err := w.live(ctx)
		if err != nil {
			return err
		}
		if len(live) == 0 {
			return nil
		}
		if time.Now().After(give) {
			return stores.Retryable(fmt.Errorf("%w: held for over %s", errLockBusy, w.wait))
		}
		if err := sleepJitter(ctx, 2*time.Millisecond, 15*time.Millisecond); err != nil {
			return err
		}
	}
}

// ensureHeld reports whether the lease is still good for one more write.
func (w *writeLock) ensureHeld() error {
	if w.until.IsZero() {
		return stores.Permanent(errors.New("ledger write without the writer lock"))
	}
	if !time.Now().Before(w.until) {
		return stores.Retryable(errors.New("ledger writer lock lease ran out before the write"))
	}
	return nil
}

func (w *writeLock) release() {
	id := w.id
	w.id, w.until = "", time.Time{}
	// Released even when the caller's context has ended; if this fails the
	// row dies at the TTL.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.releaseID(ctx, id)
}

func (w *writeLock) releaseID(ctx context.Context, id string) {
	_ = w.insert(context.WithoutCancel(ctx), id, "release")
}

func (w *writeLock) insert(ctx context.Context, id, kind string) error {
	return w.conn.Exec(ctx, `INSERT INTO `+w.table+` (name, id, kind, at) SELECT CAST(? AS String), CAST(? AS String), CAST(? AS String), now()`,
		w.name, id, kind)
}

// live lists the IDs of the live intents: not released and younger than the
// TTL. A release is inserted after its intent, so the window that holds an
// intent holds its release.
func (w *writeLock) live(ctx context.Context) ([]string, error) {
	rows, err := w.conn.Query(ctx, `SELECT id FROM `+w.table+` WHERE name = ? AND at >= now() - `+
		strconv.Itoa(int(w.ttl/time.Second))+` GROUP BY id HAVING countIf(kind = 'release') = 0`, w.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func newLockID() (string, error) {
	var b [12]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", stores.Retryable(fmt.Errorf("lock id: %w", err))
	}
	return hex.EncodeToString(b[:]), nil
}

// sleepJitter waits a random time in [lo, hi), so that two processes that
// collided do not collide again in step.
func sleepJitter(ctx context.Context, lo, hi time.Duration) error {
	t := time.NewTimer(lo + rand.N(hi-lo))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
