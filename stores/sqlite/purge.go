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
type purger struct {
	mu      sync.Mutex
	deletes uint64        // deletes that removed rows
	covered uint64        // of those, how many the last finished scrub came after
	once    bool          // a scrub finished since the store was opened
	running chan struct{} // closed when the scrub in progress ends
	at      time.Time     // when the last scrub finished
}

// noteDelete records a delete; one that removed rows owes a scrub.
func (p *purger) noteDelete(deleted int64) {
	if deleted > 0 {
		p.mu.Lock()
		p.deletes++
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
		err := scrub(ctx, db)
		p.mu.Lock()
		p.running = nil
		close(ch)
		if err != nil {
			p.mu.Unlock()
			return err
		}
		p.once, p.covered, p.at = true, max(p.covered, target), time.Now()
	}
	p.mu.Unlock()
	return nil
}

// state finishes a scrub still owed and says when the deleted rows were
// physically gone.
func (p *purger) state(ctx context.Context, db *sql.DB) (stores.PurgeState, error) {
	if err := p.scrubOwed(ctx, db); err != nil {
		return stores.PurgeState{Store: storeKind}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return stores.PurgeState{Store: storeKind, PurgedAt: p.at}, nil
}

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
