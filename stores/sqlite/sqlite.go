package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/erasure-project/erasure/stores"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteBusyTimeout is how long a statement waits for a lock held by another
// process (for example `erasure audit` reading the file `erasure up` writes)
// before it fails with a retryable error.
const sqliteBusyTimeout = 5 * time.Second

// Open opens (creating if needed) the SQLite database at path for the
// embedded stores. The database is in WAL mode with foreign keys on and
// synchronous=FULL, so a committed audit entry survives a power loss.
//
// The pool holds a single connection: SQLite allows one writer at a time, and
// funnelling every statement through one connection means goroutines in this
// process queue in Go instead of failing with SQLITE_BUSY. The embedded
// stores never hold a result set open while calling back into user code, so
// the single connection cannot deadlock.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	return openSQLite(ctx, path, sqliteBusyTimeout)
}

func openSQLite(ctx context.Context, path string, busy time.Duration) (*sql.DB, error) {
	if path == "" {
		return nil, stores.Permanent(errors.New("sqlite: empty database path"))
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	// Take the write lock when a transaction begins, not on its first write:
	// a deferred transaction that later upgrades can fail with SQLITE_BUSY
	// without waiting when another process writes.
	q.Set("_txlock", "immediate")

	var dsn string
	if path == ":memory:" {
		dsn = "file::memory:?" + q.Encode()
	} else {
		// A file: URI, so a path containing '?' or '#' is not mistaken for
		// parameters; SQLite decodes the escapes.
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, sqliteErr("sqlite: open", err)
	}
	db.SetMaxOpenConns(1)
	// Keep the one connection for the life of the pool: for ":memory:" the
	// database lives and dies with it.
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, sqliteErr("sqlite: open", err)
	}
	return db, nil
}

// sqliteErr wraps err with op and classifies it: lock contention is worth
// retrying, while SQL errors (no such table or column), constraint
// violations and type mismatches will fail the same way every time.
// Cancellation and deadlines are passed through unclassified.
func sqliteErr(op string, err error) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("%s: %w", op, err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, stores.ErrPermanent) || errors.Is(err, stores.ErrRetryable) {
		return wrapped
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return wrapped
	}
	switch se.Code() & 0xff { // extended result codes are on; the low byte is the primary code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return stores.Retryable(wrapped)
	case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH,
		sqlite3.SQLITE_RANGE, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_READONLY,
		sqlite3.SQLITE_AUTH, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return stores.Permanent(wrapped)
	}
	return wrapped
}

// sqliteSchema creates a store's tables on first use. The constructors take
// no context and return no error, so the schema is created lazily; a failed
// attempt is retried on the next call.
type sqliteSchema struct {
	mu    sync.Mutex
	done  bool
	stmts []string
}

func (s *sqliteSchema) ensure(ctx context.Context, db *sql.DB) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		for _, stmt := range s.stmts {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return sqliteErr("sqlite: create schema", err)
	}
	s.done = true
	return nil
}

// inTx runs fn in a transaction, committing if it returns nil.
func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// quoteIdent quotes a name that already passed CheckIdent; the check is what
// makes it safe, the quotes only keep keywords such as "order" usable.
func quoteIdent(name string) string { return `"` + name + `"` }

// sqliteBatch bounds the number of bound parameters in one statement, well
// under SQLite's limit.
const sqliteBatch = 500
