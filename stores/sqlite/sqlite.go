package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
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
// synchronous=FULL, so a committed audit entry survives a power loss, and
// with secure_delete on. It holds personal data: the file and its -wal and
// -shm files are readable by their owner only.
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
	// 8 MiB of page cache instead of 2: a batch delete touches pages all
	// over the index and the term table, and each miss is a read call.
	q.Add("_pragma", "cache_size(-8192)")
	// Deleted rows are overwritten with zeros in their pages, and freed pages
	// zeroed, instead of lingering in the file until reused; the copies this
	// leaves (see scrub) go after every delete. No table uses FTS5, whose own
	// secure-delete option would otherwise be needed too.
	q.Add("_pragma", "secure_delete(1)")
	// Take the write lock when a transaction begins, not on its first write:
	// a deferred transaction that later upgrades can fail with SQLITE_BUSY
	// without waiting when another process writes.
	q.Set("_txlock", "immediate")

	var dsn string
	if path == ":memory:" {
		dsn = "file::memory:?" + q.Encode()
	} else {
		if err := createPrivate(path); err != nil {
			return nil, err
		}
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

// createPrivate creates the database file readable by its owner only (0600)
// and sets an existing one and its -wal and -shm files to that mode. SQLite
// creates the -wal and -shm files with the mode of the database file, so
// new ones follow. The error holds no path: the data directory is named
// where it is opened.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return permErr("sqlite: create database file", err)
	}
	if err := f.Close(); err != nil {
		return permErr("sqlite: create database file", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return permErr("sqlite: database file mode", err)
		}
		if fi.Mode().Perm() != 0o600 {
			if err := os.Chmod(p, 0o600); err != nil {
				return permErr("sqlite: database file mode", err)
			}
		}
	}
	return nil
}

// permErr reduces a file system error to its operation and cause. A
// permission problem will not fix itself, so it is permanent.
func permErr(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = fmt.Errorf("%s: %s: %w", op, pe.Op, pe.Err)
	} else {
		err = fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, fs.ErrPermission) {
		return stores.Permanent(err)
	}
	return err
}

// sqliteErr wraps err with op and classifies it: lock contention is worth
// retrying, while SQL errors (no such table or column), constraint
// violations and type mismatches will fail the same way every time.
// Cancellation and deadlines are passed through unclassified.
//
// The driver's message never becomes part of the text: SQLite messages can
// quote values (a trigger's RAISE text, the literal a syntax error is near,
// an expression used as a column name), and these errors end up in logs.
// Error() keeps the operation and the result code; the driver error stays
// reachable through errors.As.
func sqliteErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var done *sqliteError
	if errors.As(err, &done) {
		// Stripped and classified further down already.
		return fmt.Errorf("%s: %w", op, err)
	}
	var se *sqlite.Error
	isDriver := errors.As(err, &se)
	if !isDriver && (errors.Is(err, stores.ErrPermanent) || errors.Is(err, stores.ErrRetryable) ||
		errors.Is(err, stores.ErrNotFound)) {
		// This package's own errors, whose text holds no driver message.
		return fmt.Errorf("%s: %w", op, err)
	}
	wrapped := &sqliteError{op: op, desc: sqliteDescribe(err), err: err}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, stores.ErrPermanent) || errors.Is(err, stores.ErrRetryable) {
		return wrapped
	}
	if !isDriver {
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

// sqliteError is a driver error reduced to op and a description that holds
// no driver text; Unwrap still reaches the original.
type sqliteError struct {
	op   string
	desc string
	err  error
}

func (e *sqliteError) Error() string { return e.op + ": " + e.desc }
func (e *sqliteError) Unwrap() error { return e.err }

// sqliteDescribe names err without its message: the result code for a
// SQLite error, the text of a fixed sentinel, or only the type otherwise
// (database/sql's conversion errors quote the value they failed on).
func sqliteDescribe(err error) string {
	for _, sentinel := range []error{context.Canceled, context.DeadlineExceeded,
		sql.ErrNoRows, sql.ErrTxDone, sql.ErrConnDone, driver.ErrBadConn} {
		if errors.Is(err, sentinel) {
			return sentinel.Error()
		}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code()
		name, ok := sqliteCodeNames[code&0xff]
		switch {
		case !ok:
			return fmt.Sprintf("SQLite result code %d", code)
		case code != code&0xff:
			// The extended code (which constraint, which I/O step) is only
			// a number, and worth keeping.
			return fmt.Sprintf("%s (%d)", name, code)
		}
		return name
	}
	inner := err
	for {
		next := errors.Unwrap(inner)
		if next == nil {
			break
		}
		inner = next
	}
	return fmt.Sprintf("error text withheld (%T)", inner)
}

// sqliteCodeNames names SQLite's primary result codes.
var sqliteCodeNames = map[int]string{
	sqlite3.SQLITE_ERROR:      "SQLITE_ERROR",
	sqlite3.SQLITE_INTERNAL:   "SQLITE_INTERNAL",
	sqlite3.SQLITE_PERM:       "SQLITE_PERM",
	sqlite3.SQLITE_ABORT:      "SQLITE_ABORT",
	sqlite3.SQLITE_BUSY:       "SQLITE_BUSY",
	sqlite3.SQLITE_LOCKED:     "SQLITE_LOCKED",
	sqlite3.SQLITE_NOMEM:      "SQLITE_NOMEM",
	sqlite3.SQLITE_READONLY:   "SQLITE_READONLY",
	sqlite3.SQLITE_INTERRUPT:  "SQLITE_INTERRUPT",
	sqlite3.SQLITE_IOERR:      "SQLITE_IOERR",
	sqlite3.SQLITE_CORRUPT:    "SQLITE_CORRUPT",
	sqlite3.SQLITE_NOTFOUND:   "SQLITE_NOTFOUND",
	sqlite3.SQLITE_FULL:       "SQLITE_FULL",
	sqlite3.SQLITE_CANTOPEN:   "SQLITE_CANTOPEN",
	sqlite3.SQLITE_PROTOCOL:   "SQLITE_PROTOCOL",
	sqlite3.SQLITE_EMPTY:      "SQLITE_EMPTY",
	sqlite3.SQLITE_SCHEMA:     "SQLITE_SCHEMA",
	sqlite3.SQLITE_TOOBIG:     "SQLITE_TOOBIG",
	sqlite3.SQLITE_CONSTRAINT: "SQLITE_CONSTRAINT",
	sqlite3.SQLITE_MISMATCH:   "SQLITE_MISMATCH",
	sqlite3.SQLITE_MISUSE:     "SQLITE_MISUSE",
	sqlite3.SQLITE_NOLFS:      "SQLITE_NOLFS",
	sqlite3.SQLITE_AUTH:       "SQLITE_AUTH",
	sqlite3.SQLITE_FORMAT:     "SQLITE_FORMAT",
	sqlite3.SQLITE_RANGE:      "SQLITE_RANGE",
	sqlite3.SQLITE_NOTADB:     "SQLITE_NOTADB",
	sqlite3.SQLITE_NOTICE:     "SQLITE_NOTICE",
	sqlite3.SQLITE_WARNING:    "SQLITE_WARNING",
	sqlite3.SQLITE_ROW:        "SQLITE_ROW",
	sqlite3.SQLITE_DONE:       "SQLITE_DONE",
}

// sqliteSchema creates a store's tables on first use. The constructors take
// no context and return no error, so the schema is created lazily; a failed
// attempt is retried on the next call.
type sqliteSchema struct {
	mu    sync.Mutex
	done  bool
	stmts []string
	// migrate, if set, brings an older file's tables up to date in the
	// same transaction, after stmts.
	migrate func(context.Context, *sql.Tx) error
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
		if s.migrate != nil {
			return s.migrate(ctx, tx)
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
// Backticks, not double quotes: SQLite reads an unknown double-quoted name as
// a string literal, so a misspelt column would compare as text and match
// nothing (or everything), while an unknown backticked name is an error.
func quoteIdent(name string) string { return "`" + name + "`" }

// sqliteBatch bounds the number of bound parameters in one statement, well
// under SQLite's limit.
const sqliteBatch = 500
