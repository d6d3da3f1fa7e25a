package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
	"modernc.org/sqlite"
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

// Driver errors reach log lines, and SQLite's messages can quote values: a
// trigger's RAISE text, the literal a syntax error is near, the value a
// scan could not convert. The wrapped error keeps the operation, the result
// code and the class, and the driver error stays reachable with errors.As,
// but no value survives in Error().
func TestSQLiteErrorsDoNotQuoteValues(t *testing.T) {
	const contact = "0b0e6d3c-5b1a-4c2e-9f3a-7d2b8e4c1a90"
	type class int
	const (
		unclassified class = iota
		permanent
		retryable
	)
	tests := []struct {
		name string
		// run provokes the error on a fresh database at path, opened as db.
		run       func(t *testing.T, ctx context.Context, path string, db *sql.DB) error
		want      string // the whole of Error()
		class     class
		driverErr bool // errors.As finds the *sqlite.Error
		quoted    bool // the driver's own text has the contact ID, so the case proves something
	}{
		{
			name: "trigger quoting the contact in a warehouse delete",
			run: func(t *testing.T, ctx context.Context, _ string, db *sql.DB) error {
				w := NewWarehouse(db)
				mustEnsureTable(t, w, "calls")
				if err := w.Insert(ctx, "calls", stores.Row{"contact_id": contact}); err != nil {
					t.Fatal(err)
				}
				mustExec(t, db, `CREATE TRIGGER hold BEFORE DELETE ON calls
					BEGIN SELECT RAISE(ABORT, 'contact ' || old.contact_id || ' is on legal hold'); END`)
				_, err := w.Delete(ctx, "calls", "contact_id", contact)
				return err
			},
			want: "warehouse: delete: SQLITE_CONSTRAINT (1811)", class: permanent, driverErr: true, quoted: true,
		},
		{
			name: "trigger quoting the contact in a warehouse insert transaction",
			run: func(t *testing.T, ctx context.Context, _ string, db *sql.DB) error {
				w := NewWarehouse(db)
				mustEnsureTable(t, w, "calls")
				mustExec(t, db, `CREATE TRIGGER refuse BEFORE INSERT ON calls
					BEGIN SELECT RAISE(ABORT, 'refused ' || new.contact_id); END`)
				return w.Insert(ctx, "calls", stores.Row{"contact_id": contact})
			},
			want: "warehouse: insert: SQLITE_CONSTRAINT (1811)", class: permanent, driverErr: true, quoted: true,
		},
		{
			name: "unique constraint in a warehouse insert",
			run: func(t *testing.T, ctx context.Context, _ string, db *sql.DB) error {
				w := NewWarehouse(db)
				mustEnsureTable(t, w, "calls")
				mustExec(t, db, `CREATE UNIQUE INDEX calls_once ON calls (contact_id)`)
				return w.Insert(ctx, "calls", stores.Row{"contact_id": contact}, stores.Row{"contact_id": contact})
			},
			want: "warehouse: insert: SQLITE_CONSTRAINT (2067)", class: permanent, driverErr: true,
		},
		{
			name: "trigger quoting the request in a ledger write",
			run: func(t *testing.T, ctx context.Context, _ string, db *sql.DB) error {
				l := NewLedger(db)
				if _, err := l.VerifyChain(ctx); err != nil { // creates the schema
					t.Fatal(err)
				}
				mustExec(t, db, `CREATE TRIGGER refuse BEFORE INSERT ON erasure_ledger_requests
					BEGIN SELECT RAISE(ABORT, 'refused ' || new.request); END`)
				r := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
				r.ContactIDs = []string{contact}
				return l.PutRequest(ctx, r, storetest.LedgerBase)
			},
			want: "ledger: put request: SQLITE_CONSTRAINT (1811)", class: permanent, driverErr: true, quoted: true,
		},
		{
			name: "trigger quoting the document in an index put",
			run: func(t *testing.T, ctx context.Context, _ string, db *sql.DB) error {
				ix := NewIndex(db)
				if err := ix.EnsureIndex(ctx, "contacts"); err != nil {
					t.Fatal(err)
				}
				mustExec(t, db, `CREATE TRIGGER refuse BEFORE INSERT ON erasure_index_docs
					BEGIN SELECT RAISE(ABORT, 'refused ' || new.doc); END`)
				return ix.Put(ctx, "contacts", stores.Doc{ID: "d1", Fields: map[string]any{"contact_id": contact}})
			},
			want: "index: put: SQLITE_CONSTRAINT (1811)", class: permanent, driverErr: true, quoted: true,
		},
		{
			name: "scan that cannot convert a stored value",
			run: func(t *testing.T, ctx context.Context, _ string, db *sql.DB) error {
				l := NewLedger(db)
				r := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
				storetest.MustPutRequest(t, l, r, storetest.LedgerBase)
				mustExec(t, db, `UPDATE erasure_ledger_requests SET finalizing = '`+contact+`'`)
				_, err := l.State(ctx, r.RequestID)
				return err
			},
			want: "ledger: state: error text withheld (*errors.errorString)", class: unclassified, quoted: true,
		},
		{
			name: "syntax error near a literal",
			run: func(t *testing.T, ctx context.Context, _ string, db *sql.DB) error {
				_, err := db.ExecContext(ctx, `SELECT 1 WHERE 'x' = '`+contact+`' '`+contact+`'`)
				return sqliteErr("index: count", err)
			},
			want: "index: count: SQLITE_ERROR", class: permanent, driverErr: true, quoted: true,
		},
		{
			name: "lock held elsewhere",
			run: func(t *testing.T, ctx context.Context, path string, db *sql.DB) error {
				w := NewWarehouse(db)
				mustEnsureTable(t, w, "calls")
				other, err := Open(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				tx, err := other.BeginTx(ctx, nil) // immediate: holds the write lock
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				return w.Insert(ctx, "calls", stores.Row{"contact_id": contact})
			},
			want: "warehouse: insert: SQLITE_BUSY", class: retryable, driverErr: true,
		},
		{
			name: "cancelled",
			run: func(t *testing.T, ctx context.Context, _ string, db *sql.DB) error {
				w := NewWarehouse(db)
				mustEnsureTable(t, w, "calls")
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				_, err := w.Count(ctx, "calls", "contact_id", contact)
				return err
			},
			want: "warehouse: count: context canceled", class: unclassified,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "test.db")
			db, err := openSQLite(t.Context(), path, 50*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = tt.run(t, t.Context(), path, db)
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if strings.Contains(err.Error(), contact) {
				t.Errorf("Error() quotes the contact ID: %q", err.Error())
			}
			gotClass := unclassified
			switch {
			case errors.Is(err, stores.ErrPermanent) && errors.Is(err, stores.ErrRetryable):
				t.Fatalf("%v is both permanent and retryable", err)
			case errors.Is(err, stores.ErrPermanent):
				gotClass = permanent
			case errors.Is(err, stores.ErrRetryable):
				gotClass = retryable
			}
			if gotClass != tt.class {
				t.Errorf("class = %d, want %d (0 unclassified, 1 permanent, 2 retryable)", gotClass, tt.class)
			}
			var se *sqlite.Error
			if errors.As(err, &se) != tt.driverErr {
				t.Errorf("errors.As(*sqlite.Error) = %v, want %v", !tt.driverErr, tt.driverErr)
			}
			if q := chainQuotes(err, contact); q != tt.quoted {
				t.Errorf("an error in the chain quotes the contact: %v, want %v", q, tt.quoted)
			}
			if tt.name == "cancelled" && !errors.Is(err, context.Canceled) {
				t.Errorf("errors.Is(context.Canceled) = false")
			}
		})
	}
}

// chainQuotes reports whether the text of err or of any error it wraps
// contains s.
func chainQuotes(err error, s string) bool {
	if err == nil {
		return false
	}
	if strings.Contains(err.Error(), s) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return chainQuotes(u.Unwrap(), s)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if chainQuotes(e, s) {
				return true
			}
		}
	}
	return false
}

func mustEnsureTable(t *testing.T, w *Warehouse, table string) {
	t.Helper()
	if err := w.EnsureTable(t.Context(), table, []string{"contact_id"}); err != nil {
		t.Fatal(err)
	}
}

func mustExec(t *testing.T, db *sql.DB, stmt string) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), stmt); err != nil {
		t.Fatal(err)
	}
}
