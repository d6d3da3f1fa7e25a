package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
)

// Warehouse is the embedded warehouse: one SQLite table per warehouse
// table, every column TEXT. Names come from the data map and pass CheckIdent
// before they are put into SQL; values are always bound parameters.
type Warehouse struct {
	db    *sql.DB
	cols  columnCache // see requireColumns
	purge purger      // scrubs the file after deletes
}

var _ stores.Warehouse = (*Warehouse)(nil)

// NewWarehouse returns a warehouse stored in db (see Open).
func NewWarehouse(db *sql.DB) *Warehouse {
	return &Warehouse{db: db}
}

// checkTable validates a table name and keeps the data map away from the
// tables of the other embedded stores sharing the file (the audit log above
// all) and from SQLite's own.
func checkTable(table string) error {
	if err := stores.CheckIdent("table", table); err != nil {
		return err
	}
	if strings.HasPrefix(table, "erasure_") || strings.HasPrefix(table, "sqlite_") {
		return stores.Permanent(fmt.Errorf("table name %q: reserved prefix", table))
	}
	return nil
}

// checkColumns validates column names. SQLite's implicit row-number
// aliases are refused: on a table without such a column they would silently
// match by row number instead of failing as unknown columns.
func checkColumns(cols ...string) error {
	for _, c := range cols {
		if err := stores.CheckIdent("column", c); err != nil {
			return err
		}
		switch c {
		case "rowid", "oid", "_rowid_":
			return stores.Permanent(fmt.Errorf("column name %q: reserved", c))
		}
	}
	return nil
}

// EnsureTable creates table with the given text columns, and adds any column
// an existing table lacks. Columns that locate a contact's rows ("id" or
// ending in "_id") are indexed, so deletes do not scan the whole table.
func (w *Warehouse) EnsureTable(ctx context.Context, table string, columns []string) error {
	if err := checkTable(table); err != nil {
		return err
	}
	if err := stores.CheckNewColumns(columns); err != nil {
		return err
	}
	if err := checkColumns(columns...); err != nil {
		return err
	}
	defs := make([]string, 0, len(columns))
	for _, c := range columns {
		defs = append(defs, quoteIdent(c)+" TEXT")
	}
	err := inTx(ctx, w.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+quoteIdent(table)+` (`+strings.Join(defs, ", ")+`)`); err != nil {
			return err
		}
		have, err := tableColumns(ctx, tx, table)
		if err != nil {
			return err
		}
		for _, c := range columns {
			if !have[c] {
				if _, err := tx.ExecContext(ctx, `ALTER TABLE `+quoteIdent(table)+` ADD COLUMN `+quoteIdent(c)+` TEXT`); err != nil {
					return err
				}
			}
			if c == "id" || strings.HasSuffix(c, "_id") {
				if _, err := tx.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS `+quoteIdent(table+"__"+c)+
					` ON `+quoteIdent(table)+` (`+quoteIdent(c)+`)`); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return sqliteErr("warehouse: ensure table", err)
}

func tableColumns(ctx context.Context, tx *sql.Tx, table string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		cols[name] = true
	}
	return cols, rows.Err()
}

// Insert adds rows in one transaction.
func (w *Warehouse) Insert(ctx context.Context, table string, rows ...stores.Row) error {
	if err := checkTable(table); err != nil {
		return err
	}
	for _, r := range rows {
		if len(r) == 0 {
			return stores.Permanent(errors.New("warehouse: empty row"))
		}
		for c := range r {
			if err := checkColumns(c); err != nil {
				return err
			}
		}
	}
	err := inTx(ctx, w.db, func(tx *sql.Tx) error {
		stmts := map[string]*sql.Stmt{} // rows usually share their columns
		defer func() {
			for _, s := range stmts {
				s.Close()
			}
		}()
		for _, r := range rows {
			cols := make([]string, 0, len(r))
			for c := range r {
				cols = append(cols, c)
			}
			sort.Strings(cols)
			shape := strings.Join(cols, ",")
			stmt := stmts[shape]
			if stmt == nil {
				quoted := make([]string, len(cols))
				for i, c := range cols {
					quoted[i] = quoteIdent(c)
				}
				var err error
				stmt, err = tx.PrepareContext(ctx, `INSERT INTO `+quoteIdent(table)+` (`+strings.Join(quoted, ", ")+
					`) VALUES (`+sqlutil.Placeholders(len(cols))+`)`)
				if err != nil {
					return err
				}
				stmts[shape] = stmt
			}
			args := make([]any, len(cols))
			for i, c := range cols {
				v, err := warehouseValue(r[c])
				if err != nil {
					return err
				}
				args[i] = v
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return err
			}
		}
		return nil
	})
	return sqliteErr("warehouse: insert", err)
}

// warehouseValue converts a row value to what is bound; times become the
// same text the other embedded stores use.
func warehouseValue(v any) (any, error) {
	switch v := v.(type) {
	case []byte:
		return string(v), nil // stored as text like every other value, so Count can match it
	case nil, string, bool,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return v, nil
	case time.Time:
		return stores.FormatTime(v), nil
	case fmt.Stringer:
		return v.String(), nil
	}
	return nil, stores.Permanent(fmt.Errorf("warehouse: unsupported value type %T", v))
}

func checkMatch(table, column string, values []string) error {
	if err := checkTable(table); err != nil {
		return err
	}
	if err := checkColumns(column); err != nil {
		return err
	}
	return stores.CheckMatchValues(values)
}

// inChunks opens one transaction and in it calls fn for each chunk of at
// most sqliteBatch distinct values, with the chunk's "IN (?, …)" and its
// arguments.
//
// Chunks of bound parameters, unlike the index's json_each: the warehouse
// matches any bytes, and encoding/json turns invalid UTF-8 into U+FFFD, a
// value that would match other rows. Binding keeps the comparison the one a
// single value gets; a temporary table measured slower. Because the values
// are distinct and a row's column holds one value, the chunks match
// disjoint rows, so their counts add up to the batch's.
func (w *Warehouse) inChunks(ctx context.Context, values []string, fn func(tx *sql.Tx, in string, args []any) error) error {
	uniq := stores.UniqueKeys(values)
	return inTx(ctx, w.db, func(tx *sql.Tx) error {
		for rest := uniq; len(rest) > 0; {
			chunk := rest[:min(len(rest), sqliteBatch)]
			rest = rest[len(chunk):]
			args := make([]any, len(chunk))
			for i, v := range chunk {
				args[i] = v
			}
			if err := fn(tx, `IN (`+sqlutil.Placeholders(len(chunk))+`)`, args); err != nil {
				return err
			}
		}
		return nil
	})
}

// Count counts rows whose column equals one of values exactly (binary
// comparison, never a pattern).
func (w *Warehouse) Count(ctx context.Context, table, column string, values ...string) (int64, error) {
	if err := checkMatch(table, column, values); err != nil {
		return 0, err
	}
	if err := w.requireColumns(ctx, "warehouse: count", table, column); err != nil {
		return 0, err
	}
	var n int64
	err := w.inChunks(ctx, values, func(tx *sql.Tx, in string, args []any) error {
		var k int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+quoteIdent(table)+` WHERE `+quoteIdent(column)+` `+in, args...).Scan(&k); err != nil {
			return err
		}
		n += k
		return nil
	})
	if err != nil {
		return 0, sqliteErr("warehouse: count", err)
	}
	return n, nil
}

// Delete removes rows whose column equals one of values exactly, in one
// transaction, and returns how many there were. The rows are physically
// gone from the files when it returns (see scrub).
func (w *Warehouse) Delete(ctx context.Context, table, column string, values ...string) (int64, error) {
	if err := checkMatch(table, column, values); err != nil {
		return 0, err
	}
	if err := w.requireColumns(ctx, "warehouse: delete", table, column); err != nil {
		return 0, err
	}
	var n int64
	err := w.inChunks(ctx, values, func(tx *sql.Tx, in string, args []any) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+quoteIdent(table)+` WHERE `+quoteIdent(column)+` `+in, args...)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		n += k
		return err
	})
	if err != nil {
		return 0, sqliteErr("warehouse: delete", err)
	}
	w.purge.noteDelete(n) // Purge makes it physical
	return n, nil
}

// DeleteOrphans deletes rows of parent whose key column is one of keys and
// that no row of child references through its own key column. Empty keys
// are ignored.
func (w *Warehouse) DeleteOrphans(ctx context.Context, parent, child, key string, keys []string) (int64, error) {
	if err := checkTable(parent); err != nil {
		return 0, err
	}
	if err := checkTable(child); err != nil {
		return 0, err
	}
	if err := checkColumns(key); err != nil {
		return 0, err
	}
	if err := w.requireColumns(ctx, "warehouse: delete orphans", parent, key); err != nil {
		return 0, err
	}
	if err := w.requireColumns(ctx, "warehouse: delete orphans", child, key); err != nil {
		return 0, err
	}
	uniq := stores.UniqueKeys(keys)
	p, c, k := quoteIdent(parent), quoteIdent(child), quoteIdent(key)
	var n int64
	err := inTx(ctx, w.db, func(tx *sql.Tx) error {
		for len(uniq) > 0 {
			batch := uniq[:min(len(uniq), sqliteBatch)]
			uniq = uniq[len(batch):]
			args := make([]any, len(batch))
			for i, v := range batch {
				args[i] = v
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM `+p+` WHERE `+k+` IN (`+sqlutil.Placeholders(len(batch))+`)
				AND NOT EXISTS (SELECT 1 FROM `+c+` AS ch WHERE ch.`+k+` = `+p+`.`+k+`)`, args...)
			if err != nil {
				return err
			}
			d, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += d
		}
		return nil
	})
	if err != nil {
		return 0, sqliteErr("warehouse: delete orphans", err)
	}
	w.purge.noteDelete(n) // Purge makes it physical
	return n, nil
}

// Distinct returns the distinct non-null values of column among rows whose
// matchColumn equals one of values, sorted.
func (w *Warehouse) Distinct(ctx context.Context, table, column, matchColumn string, values ...string) ([]string, error) {
	if err := checkMatch(table, matchColumn, values); err != nil {
		return nil, err
	}
	if err := checkColumns(column); err != nil {
		return nil, err
	}
	if err := w.requireColumns(ctx, "warehouse: distinct", table, matchColumn, column); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	err := w.inChunks(ctx, values, func(tx *sql.Tx, in string, args []any) error {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT `+quoteIdent(column)+` FROM `+quoteIdent(table)+
			` WHERE `+quoteIdent(matchColumn)+` `+in+` AND `+quoteIdent(column)+` IS NOT NULL`, args...)
		if err != nil {
			return err
		}
		vs, err := sqlutil.ScanStrings(rows)
		for _, v := range vs {
			seen[v] = true
		}
		return err
	})
	if err != nil {
		return nil, sqliteErr("warehouse: distinct", err)
	}
	// Chunks can share values, so the union is deduplicated and sorted here;
	// byte order, as SQLite's binary collation sorts.
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}
