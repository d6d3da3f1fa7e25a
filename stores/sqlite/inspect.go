package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"

	"github.com/erasure-project/erasure/stores"
)

// The index is schemaless, so which fields it knows is recorded as terms are
// written: a field stays known after the documents that had it are gone,
// as an OpenSearch mapping does, so deleting the last document with a field
// never turns the verification count into an error.
const (
	indexFieldsTable = `CREATE TABLE IF NOT EXISTS erasure_index_fields (
			idx   TEXT NOT NULL,
			field TEXT NOT NULL,
			PRIMARY KEY (idx, field)
		) WITHOUT ROWID`
	indexFieldsTrigger = `CREATE TRIGGER IF NOT EXISTS erasure_index_fields_seen
		AFTER INSERT ON erasure_index_terms
		BEGIN
			INSERT OR IGNORE INTO erasure_index_fields (idx, field) VALUES (NEW.idx, NEW.field);
		END`
)

// RequireField fails unless index exists and field is "_id", a field some
// document of the index has had, or any field of an index with no document.
func (s *Index) RequireField(ctx context.Context, index, field string) error {
	if err := stores.CheckIndexName(index); err != nil {
		return err
	}
	if err := stores.CheckField(field); err != nil {
		return err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return err
	}
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if err := requireIndex(ctx, tx, index); err != nil {
			return err
		}
		return requireField(ctx, tx, index, field)
	})
	if err != nil {
		return sqliteErr("index: require field", err)
	}
	// Checked at start-up: its terms are written now, not by the first
	// deletion.
	return s.ensureTermFields(ctx, index, field)
}

// requireField refuses a field no document of a non-empty index has had:
// an exact match on it could only ever count 0, which is what a misspelt
// field in the data map looks like. The index must exist.
func requireField(ctx context.Context, tx *sql.Tx, index, field string) error {
	if field == "_id" {
		return nil
	}
	var known bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM erasure_index_fields WHERE idx = ? AND field = ?)`,
		index, field).Scan(&known); err != nil || known {
		return err
	}
	// Terms written before the trigger existed are recorded when first asked.
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM erasure_index_terms WHERE idx = ? AND field = ?)`,
		index, field).Scan(&known); err != nil {
		return err
	}
	if known {
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO erasure_index_fields (idx, field) VALUES (?, ?)`, index, field)
		return err
	}
	var empty bool
	if err := tx.QueryRowContext(ctx, `SELECT NOT EXISTS (SELECT 1 FROM erasure_index_docs WHERE idx = ?)`,
		index).Scan(&empty); err != nil || empty {
		return err
	}
	return stores.Permanent(fmt.Errorf("index %q has no field %q: no document has ever had it", index, field))
}

// RequireColumns fails unless table exists and has every one of columns.
func (w *Warehouse) RequireColumns(ctx context.Context, table string, columns ...string) error {
	if err := checkTable(table); err != nil {
		return err
	}
	if err := checkColumns(columns...); err != nil {
		return err
	}
	return w.requireColumns(ctx, "warehouse", table, columns...)
}

// columnCache holds the columns of the tables queried so far. Only what was
// found is trusted: a name that is missing is looked up again, because
// EnsureTable, here or in another process, may have added it since.
type columnCache struct {
	mu     sync.Mutex
	tables map[string]map[string]bool
}

func (c *columnCache) has(table string, columns []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	have := c.tables[table]
	if have == nil {
		return false
	}
	for _, col := range columns {
		if !have[col] {
			return false
		}
	}
	return true
}

func (c *columnCache) store(table string, have map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tables == nil {
		c.tables = map[string]map[string]bool{}
	}
	c.tables[table] = have
}

// requireColumns refuses a table or column the database does not have.
// SQLite reads a double-quoted name it cannot resolve as a string literal,
// so without this `WHERE "contatc_id" = ?` compares two strings: it counts
// nothing, or every row when the value happens to equal the name. Call it
// outside a transaction: the pool has a single connection. op names the
// caller in errors.
func (w *Warehouse) requireColumns(ctx context.Context, op, table string, columns ...string) error {
	if w.cols.has(table, columns) {
		return nil
	}
	rows, err := w.db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return sqliteErr(op, err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return sqliteErr(op, err)
		}
		have[strings.ToLower(name)] = true // SQLite names are case-insensitive
	}
	if err := rows.Err(); err != nil {
		return sqliteErr(op, err)
	}
	if len(have) == 0 {
		return stores.Permanent(fmt.Errorf("%s: table %q does not exist", op, table))
	}
	w.cols.store(table, have)
	var missing []string
	for _, c := range columns {
		if !have[c] {
			missing = append(missing, fmt.Sprintf("%q", c))
		}
	}
	if len(missing) > 0 {
		return stores.Permanent(fmt.Errorf("%s: table %q has no column %s", op, table, strings.Join(missing, ", ")))
	}
	return nil
}
