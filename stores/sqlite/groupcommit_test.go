package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestGroupCommitSharesATransactionAndKeepsResultsApart holds a first
// caller's transaction open while three more arrive: they run together in
// the next transaction, the failing one's work is undone and the others'
// committed, and a caller that gives up while waiting never runs.
func TestGroupCommitSharesATransactionAndKeepsResultsApart(t *testing.T) {
	ctx := t.Context()
	db := newTestDB(t)
	if _, err := db.ExecContext(ctx, `CREATE TABLE rows (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	var g groupCommit
	insert := func(v string, fail error) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rows (v) VALUES (?)`, v); err != nil {
				return err
			}
			return fail
		}
	}

	started, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- g.do(ctx, db, func(ctx context.Context, tx *sql.Tx) error {
			close(started)
			<-release
			return insert("first", nil)(ctx, tx)
		})
	}()
	<-started

	var mu sync.Mutex
	txs := map[*sql.Tx]int{}
	record := func(fn func(context.Context, *sql.Tx) error) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			mu.Lock()
			txs[tx]++
			mu.Unlock()
			return fn(ctx, tx)
		}
	}
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, job := range []func(context.Context, *sql.Tx) error{insert("a", nil), insert("bad", boom), insert("b", nil)} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.do(ctx, db, record(job))
		}()
	}
	abandonCtx, abandon := context.WithCancel(ctx)
	abandoned := make(chan error, 1)
	ranAbandoned := false
	go func() {
		abandoned <- g.do(abandonCtx, db, func(ctx context.Context, tx *sql.Tx) error {
			ranAbandoned = true
			return insert("abandoned", nil)(ctx, tx)
		})
	}()
	// Every caller has joined the waiting group before the first ends.
	waitFor(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.waiting != nil && len(g.waiting.jobs) == 4
	})
	abandon()
	if err := <-abandoned; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned caller: err = %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	if err := <-firstDone; err != nil {
		t.Fatalf("first caller: %v", err)
	}
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], boom) {
		t.Fatalf("errors = %v, want nil, boom, nil", errs)
	}
	if len(txs) != 1 {
		t.Errorf("the three waiting callers ran in %d transactions, want 1", len(txs))
	}
	if ranAbandoned {
		t.Error("the work of a caller that gave up before its turn ran")
	}
	rows, err := db.QueryContext(ctx, `SELECT v FROM rows ORDER BY v`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if want := []string{"a", "b", "first"}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("committed rows = %q, want %q", got, want)
	}
}

// TestGroupCommitFailedTransactionFailsEveryCaller: when the transaction
// cannot commit, no caller is told its work is done.
func TestGroupCommitFailedTransactionFailsEveryCaller(t *testing.T) {
	ctx := t.Context()
	db := newTestDB(t)
	var g groupCommit
	// A statement that ends the transaction itself leaves the savepoint
	// nothing to release: the group cannot go on, and nothing may claim
	// success.
	err := g.do(ctx, db, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `COMMIT`)
		return err
	})
	if err == nil {
		t.Fatal("a transaction that could not be completed reported success")
	}
	// The group commit is usable afterwards.
	if err := g.do(ctx, db, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE after (v TEXT)`)
		return err
	}); err != nil {
		t.Fatalf("after a failed transaction: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
