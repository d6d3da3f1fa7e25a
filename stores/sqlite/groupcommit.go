package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// A batch delete dirties pages all over the index (a contact's terms are
// keyed by their values, so they are spread across the term table), and a
// commit writes every dirty page to the WAL once: 1,000 contacts of 20,000
// dirty about half of the file's pages. Deletes that arrive while another
// runs are therefore done in one transaction with every other one waiting,
// each in a savepoint of its own, and committed together: measured on the
// bench's index, five batches of 1,000 in one transaction wrote 36 % of the
// WAL frames and took 52 % of the time of five transactions.

// groupCommitMax bounds the callers whose work shares one transaction.
const groupCommitMax = 16

// groupCommit runs the write transactions of concurrent callers of one
// database together.
type groupCommit struct {
	mu      sync.Mutex
	waiting *commitGroup // the group still taking work
	slot    chan struct{}
}

// commitGroup is one future transaction.
type commitGroup struct {
	jobs []*commitJob
	done chan struct{}
}

// commitJob is one caller's work. Its state moves, under the group
// commit's lock, from waiting to started (the transaction runs it) or to
// abandoned (the caller gave up first, so it never runs).
type commitJob struct {
	fn    func(context.Context, *sql.Tx) error
	state int
	err   error
}

const (
	jobWaiting = iota
	jobStarted
	jobAbandoned
)

// do runs fn in a transaction, possibly with the work of other callers,
// and returns its error: nil only when fn succeeded and the transaction
// holding its work committed. fn's work is undone if fn fails, without
// undoing the others'. ctx bounds the wait for fn's turn; once fn has
// started it runs and is committed (or not) whatever becomes of ctx, so
// an error never hides a commit. fn is given a context of its own, never
// cancelled by another caller: an interrupted statement would roll back
// the whole transaction.
func (g *groupCommit) do(ctx context.Context, db *sql.DB, fn func(context.Context, *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &commitJob{fn: fn}
	g.mu.Lock()
	if g.slot == nil {
		g.slot = make(chan struct{}, 1)
	}
	grp := g.waiting
	if grp == nil || len(grp.jobs) >= groupCommitMax {
		grp = &commitGroup{done: make(chan struct{})}
		g.waiting = grp
		go g.lead(context.WithoutCancel(ctx), db, grp)
	}
	grp.jobs = append(grp.jobs, j)
	g.mu.Unlock()

	select {
	case <-grp.done:
		return j.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	if j.state == jobWaiting {
		j.state = jobAbandoned
		g.mu.Unlock()
		return ctx.Err()
	}
	g.mu.Unlock()
	<-grp.done // started: its outcome is the commit's
	return j.err
}

// lead waits for the running group's transaction to end, closes grp to
// new work and runs it.
func (g *groupCommit) lead(ctx context.Context, db *sql.DB, grp *commitGroup) {
	defer close(grp.done)
	g.slot <- struct{}{}
	defer func() { <-g.slot }()
	g.mu.Lock()
	if g.waiting == grp {
		g.waiting = nil
	}
	jobs := grp.jobs
	g.mu.Unlock()
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		for _, j := range jobs {
			g.mu.Lock()
			run := j.state == jobWaiting
			if run {
				j.state = jobStarted
			}
			g.mu.Unlock()
			if !run {
				continue
			}
			var err error
			if j.err, err = runSavepoint(ctx, tx, j.fn); err != nil {
				return err // the transaction is unusable
			}
		}
		return nil
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, j := range jobs {
		switch {
		case j.state == jobWaiting: // the transaction failed before its turn
			j.state, j.err = jobStarted, err
		case j.state == jobStarted && j.err == nil:
			j.err = err // nil when its work is committed
		}
	}
}

// runSavepoint runs fn in a savepoint of tx, rolled back if fn fails,
// and returns fn's error; txErr is set when the savepoint could not be
// opened, released or rolled back, and the transaction cannot go on.
func runSavepoint(ctx context.Context, tx *sql.Tx, fn func(context.Context, *sql.Tx) error) (fnErr, txErr error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT job`); err != nil {
		return nil, err
	}
	if fnErr = fn(ctx, tx); fnErr != nil {
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO job`); err != nil {
			return fnErr, errors.Join(fnErr, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `RELEASE job`); err != nil {
		return fnErr, errors.Join(fnErr, err)
	}
	return fnErr, nil
}
