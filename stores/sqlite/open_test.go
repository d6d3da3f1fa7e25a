package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// newTestDB opens a file-backed database (so WAL is really in use) that is
// closed when the test ends.
func newTestDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newMemDB opens an in-memory database, for fuzz targets: durability is
// beside the point there, and skipping fsync gives the fuzzer more runs.
func newMemDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := Open(t.Context(), ":memory:")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenSQLitePragmas(t *testing.T) {
	db := newTestDB(t)
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", fmt.Sprint(sqliteBusyTimeout.Milliseconds())},
	}
	for _, tc := range tests {
		var got string
		if err := db.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}
}

func TestOpenSQLiteOddPaths(t *testing.T) {
	for _, name := range []string{"with?question.db", "with#hash.db", "with%25percent.db", "with space.db"} {
		path := filepath.Join(t.TempDir(), name)
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open(%q): %v", name, err)
		}
		if _, err := db.ExecContext(t.Context(), "CREATE TABLE x (a TEXT)"); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		db.Close()
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%q: database not at the given path: %v", name, err)
		}
	}
	if _, err := Open(t.Context(), ""); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("Open(\"\"): err = %v, want a permanent error", err)
	}
}

func TestOpenSQLiteInMemory(t *testing.T) {
	db, err := Open(t.Context(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := NewWarehouse(db)
	if err := w.EnsureTable(t.Context(), "t", []string{"contact_id"}); err != nil {
		t.Fatal(err)
	}
	// Only one connection is ever used, so the table is still there.
	for range 3 {
		if _, err := w.Count(t.Context(), "t", "contact_id", "x"); err != nil {
			t.Fatal(err)
		}
	}
}

// Every embedded store shares one pool; many goroutines writing at once must
// queue, not fail with SQLITE_BUSY.
func TestSQLiteConcurrentUseHasNoBusyErrors(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	w, ix, l := NewWarehouse(db), NewIndex(db), NewLedger(db)
	if err := w.EnsureTable(ctx, "rows", []string{"contact_id", "n"}); err != nil {
		t.Fatal(err)
	}
	if err := ix.EnsureIndex(ctx, "contacts"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 16 {
		wg.Go(func() {
			for i := range 25 {
				id := storetest.NewUUID()
				r := storetest.Request(storetest.LedgerBase, id)
				steps := []func() error{
					func() error { return w.Insert(ctx, "rows", stores.Row{"contact_id": id, "n": i}) },
					func() error { _, err := w.Delete(ctx, "rows", "contact_id", id); return err },
					func() error {
						return ix.Put(ctx, "contacts", stores.Doc{ID: id, Fields: map[string]any{"contact_id": id, "g": g}})
					},
					func() error { _, err := ix.Search(ctx, "contacts", stores.Query{Text: "x"}); return err },
					func() error { _, err := ix.DeleteTerm(ctx, "contacts", "contact_id", id); return err },
					func() error { return l.PutRequest(ctx, r, time.Now()) },
					func() error {
						_, _, err := l.Complete(ctx, storetest.Outcome(r, schemas.StatusSucceeded, time.Now()), "Bulk Delete")
						return err
					},
				}
				for _, step := range steps {
					if err := step(); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v (retryable=%v)", err, errors.Is(err, stores.ErrRetryable))
	}
	if n, err := l.VerifyChain(ctx); err != nil || n != 16*25 {
		t.Errorf("VerifyChain = %d, %v; want %d, nil", n, err, 16*25)
	}
}

// Two handles on one file behave like two processes: busy_timeout and
// immediate transactions make them wait for each other.
func TestSQLiteTwoHandlesOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	var ls []*Ledger
	for range 2 {
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		ls = append(ls, NewLedger(db))
	}
	if _, err := ls[0].VerifyChain(t.Context()); err != nil { // create the schema once
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 4 {
		wg.Go(func() {
			l := ls[i%2]
			for range 20 {
				r := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
				if err := l.PutRequest(t.Context(), r, time.Now()); err != nil {
					errs <- err
				}
				if _, _, err := l.Complete(t.Context(), storetest.Outcome(r, schemas.StatusSucceeded, time.Now()), "Bulk Delete"); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("shared file: %v", err)
	}
	if n, err := ls[1].VerifyChain(t.Context()); err != nil || n != 80 {
		t.Errorf("VerifyChain = %d, %v; want 80, nil", n, err)
	}
}

func TestSQLiteErrorClassification(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock.db")
	db, err := openSQLite(t.Context(), path, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := NewWarehouse(db)
	if err := w.EnsureTable(t.Context(), "t", []string{"contact_id"}); err != nil {
		t.Fatal(err)
	}

	t.Run("lock held elsewhere is retryable", func(t *testing.T) {
		other, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		tx, err := other.BeginTx(t.Context(), nil) // immediate: holds the write lock
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		err = w.Insert(t.Context(), "t", stores.Row{"contact_id": "x"})
		if !errors.Is(err, stores.ErrRetryable) || !stores.IsRetryable(err) {
			t.Fatalf("write while locked: err = %v, want retryable", err)
		}
	})

	t.Run("missing table is permanent", func(t *testing.T) {
		_, err := w.Delete(t.Context(), "nope", "contact_id", "x")
		if !errors.Is(err, stores.ErrPermanent) {
			t.Fatalf("err = %v, want permanent", err)
		}
	})

	t.Run("constraint violation is permanent", func(t *testing.T) {
		if _, err := db.ExecContext(t.Context(), "CREATE TABLE u (k TEXT UNIQUE)"); err != nil {
			t.Fatal(err)
		}
		var err error
		for range 2 {
			_, err = db.ExecContext(t.Context(), "INSERT INTO u VALUES ('a')")
		}
		if err = sqliteErr("insert", err); !errors.Is(err, stores.ErrPermanent) {
			t.Fatalf("err = %v, want permanent", err)
		}
	})

	t.Run("cancellation is neither", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := w.Count(ctx, "t", "contact_id", "x")
		if err == nil || !errors.Is(err, context.Canceled) || stores.IsRetryable(err) || errors.Is(err, stores.ErrPermanent) {
			t.Fatalf("err = %v, want an unclassified context.Canceled", err)
		}
	})
}
