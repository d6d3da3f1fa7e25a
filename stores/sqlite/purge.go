package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// storeKind names these stores in a PurgeState.
const storeKind = "sqlite"

var (
	_ stores.Purger = (*Index)(nil)
	_ stores.Purger = (*Warehouse)(nil)
)

// scrub makes deleted rows physically gone from the database's files.
// secure_delete zeroes a deleted row where it lies, but not every copy: when
// SQLite rebalances a B-tree it rebuilds pages without clearing the gap it
// leaves, so earlier copies of rows moved elsewhere stay in the free space
// of some pages, and the frames written before the delete still hold the
// row in the WAL. VACUUM rebuilds the file from the live rows alone, and the
// checkpoint then copies that into the database file and truncates the WAL
// to zero bytes.
func scrub(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `VACUUM`); err != nil {
		return sqliteErr("sqlite: vacuum", err)
	}
	return truncateWAL(ctx, db)
}

// truncateWAL checkpoints the whole WAL and truncates it. A reader in
// another process can keep the checkpoint from finishing (SQLite waits
// busy_timeout for it first); the bytes are then not gone yet, so that is a
// retryable error.
func truncateWAL(ctx context.Context, db *sql.DB) error {
	var busy, frames, copied int64
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied); err != nil {
		return sqliteErr("sqlite: checkpoint", err)
	}
	if busy != 0 {
		return stores.Retryable(errors.New("sqlite: checkpoint: another connection holds the WAL, deleted rows may remain in it"))
	}
	return nil
}

// purger scrubs the database for a store's deletes. A delete only notes
// that a scrub is owed; Purge runs it, so a request that deletes from many
// tables of one database pays for one scrub, after all of them. Purges that
// come while a scrub runs share the next one. A scrub that could not finish
// stays owed for the next Purge, and so is one after opening: a crash may
// have come between a delete and its scrub (the process that takes over a
// channel resumes purges at start-up).
//
// With a delay (deferScrub), Purge does not wait: a scrub runs in the
// background delay after the first delete it is owed for, covering every
// delete made until it starts, and Purge says by when the rows will be
// gone (PurgeBy). A scrub rewrites the whole file, so deletes that arrive
// together share one instead of each paying for it. The pace follows the
// file: the delay is at least scrubPace times the last scrub's duration, so
// scrubbing a large file holds the store's one connection for at most a
// fifth of the time, and the promise grows with it instead of being broken.
type purger struct {
	mu      sync.Mutex
	deletes uint64        // deletes that removed rows
	covered uint64        // of those, how many the last finished scrub came after
	once    bool          // a scrub finished since the store was opened
	running chan struct{} // closed when the scrub in progress ends
	at      time.Time     // when the last scrub finished
	took    time.Duration // how long the last scrub took

	delay     time.Duration // 0: Purge scrubs before it returns
	db        *sql.DB
	owedSince time.Time   // first delete not yet covered by a background scrub
	timer     *time.Timer // the background scrub scheduled
}

// scrubAllowance is what a background scrub may take, retries included,
// beyond its delay: it bounds the PurgeBy a purge promises. A delete made
// while a scrub runs waits for its end, the delay and a scrub of its own, so
// for a file whose scrubs take long the allowance is the delay and three
// scrubs.
const scrubAllowance = time.Minute

// scrubPace is how many times a scrub's duration the next background scrub
// waits at least (see purger).
const scrubPace = 4

// paceLocked returns the delay before a background scrub and what it may
// take beyond it.
func (p *purger) paceLocked() (delay, allowance time.Duration) {
	delay = max(p.delay, scrubPace*p.took)
	return delay, max(scrubAllowance, delay+3*p.took)
}

// deferScrub makes Purge promise a background scrub delay after the first
// owed delete instead of running one.
func (p *purger) deferScrub(db *sql.DB, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.db, p.delay = db, delay
	if !p.once {
		// A crash may have come between a delete and its scrub.
		p.scheduleLocked(time.Now())
	}
}

// scheduleLocked starts the background scrub for what is owed now, unless
// one is scheduled; it returns the time the rows owed will be gone by.
func (p *purger) scheduleLocked(now time.Time) time.Time {
	if p.owedSince.IsZero() {
		p.owedSince = now
	}
	delay, allowance := p.paceLocked()
	if p.timer == nil {
		p.timer = time.AfterFunc(max(time.Until(p.owedSince.Add(delay)), 0), p.background)
	}
	return p.owedSince.Add(delay + allowance)
}

// flush runs the scrub owed now, if one is, and stops the background one.
func (p *purger) flush(ctx context.Context, db *sql.DB) error {
	p.mu.Lock()
	owed := !p.owedSince.IsZero() || p.covered < p.deletes
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	if !owed {
		return nil
	}
	if err := p.scrubOwed(ctx, db); err != nil {
		return sqliteErr("sqlite: scrub", err)
	}
	p.mu.Lock()
	p.owedSince = time.Time{}
	p.mu.Unlock()
	return nil
}

// background runs the scrub owed, retrying each second until it finishes
// or its promise has passed (the next delete or Purge schedules it again).
// A scrub is not cut short: one stopped part-way has rewritten nothing, so a
// time limit would only make a large file's scrub fail every time.
func (p *purger) background() {
	p.mu.Lock()
	since := p.owedSince
	p.mu.Unlock()
	err := p.scrubOwed(context.Background(), p.db)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	delay, allowance := p.paceLocked()
	switch {
	case err == nil && p.covered >= p.deletes:
		p.owedSince = time.Time{}
	case err == nil:
		// Deletes came while it ran: they are owed from the scrub's start.
		p.owedSince = time.Now()
		p.timer = time.AfterFunc(delay, p.background)
	case time.Now().Before(since.Add(delay + allowance)):
		p.timer = time.AfterFunc(time.Second, p.background)
	}
	// Otherwise given up until the next delete or Purge schedules it.
}

// noteDelete records a delete; one that removed rows owes a scrub.
func (p *purger) noteDelete(deleted int64) {
	if deleted > 0 {
		p.mu.Lock()
		p.deletes++
		if p.delay > 0 {
			p.scheduleLocked(time.Now())
		}
		p.mu.Unlock()
	}
}

// scrubOwed returns once a scrub that began after every delete noted so far
// has finished. Until one has finished since opening, a scrub is owed
// whatever was deleted.
func (p *purger) scrubOwed(ctx context.Context, db *sql.DB) error {
	p.mu.Lock()
	want := p.deletes
	for !p.once || p.covered < want {
		if ch := p.running; ch != nil {
			p.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			p.mu.Lock()
			continue
		}
		target, ch := p.deletes, make(chan struct{})
		p.running = ch
		p.mu.Unlock()
		start := time.Now()
		err := scrub(ctx, db)
		p.mu.Lock()
		p.running = nil
		close(ch)
		if err != nil {
			p.mu.Unlock()
			return err
		}
		p.once, p.covered, p.at, p.took = true, max(p.covered, target), time.Now(), time.Since(start)
	}
	p.mu.Unlock()
	return nil
}

// state finishes a scrub still owed and says when the deleted rows were
// physically gone; with a delay it says by when they will be instead.
func (p *purger) state(ctx context.Context, db *sql.DB) (stores.PurgeState, error) {
	p.mu.Lock()
	if p.delay > 0 {
		defer p.mu.Unlock()
		if p.once && p.covered >= p.deletes {
			return stores.PurgeState{Store: storeKind, PurgedAt: p.at}, nil
		}
		return stores.PurgeState{Store: storeKind, PurgeBy: p.scheduleLocked(time.Now()), Job: scrubJob}, nil
	}
	p.mu.Unlock()
	if err := p.scrubOwed(ctx, db); err != nil {
		return stores.PurgeState{Store: storeKind}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return stores.PurgeState{Store: storeKind, PurgedAt: p.at}, nil
}

// scrubJob names the background scrub in a PurgeState.
const scrubJob = "sqlite vacuum"

// DeferScrub makes Purge promise a background scrub of the file delay after
// the first delete it is owed for, instead of scrubbing before it returns
// (see purger).
func (s *Index) DeferScrub(delay time.Duration) { s.purge.deferScrub(s.db, delay) }

// DeferScrub is Index.DeferScrub for the warehouse's file.
func (w *Warehouse) DeferScrub(delay time.Duration) { w.purge.deferScrub(w.db, delay) }

// FlushScrub runs now the scrub a deferred Purge promised, for a process
// about to stop.
func (s *Index) FlushScrub(ctx context.Context) error { return s.purge.flush(ctx, s.db) }

// FlushScrub is Index.FlushScrub for the warehouse's file.
func (w *Warehouse) FlushScrub(ctx context.Context) error { return w.purge.flush(ctx, w.db) }

// Purge reports when the documents deleted from index were physically gone:
// when the last scrub after a delete finished, running one first if it is
// still owed. Every index shares the database file.
func (s *Index) Purge(ctx context.Context, index string) (stores.PurgeState, error) {
	if err := stores.CheckIndexName(index); err != nil {
		return stores.PurgeState{}, err
	}
	st, err := s.purge.state(ctx, s.db)
	if err != nil {
		return st, sqliteErr("index: purge", err)
	}
	return st, nil
}

// Purge reports when the rows deleted from table were physically gone, as
// Index.Purge does.
func (w *Warehouse) Purge(ctx context.Context, table string) (stores.PurgeState, error) {
	if err := checkTable(table); err != nil {
		return stores.PurgeState{}, err
	}
	st, err := w.purge.state(ctx, w.db)
	if err != nil {
		return st, sqliteErr("warehouse: purge", err)
	}
	return st, nil
}
