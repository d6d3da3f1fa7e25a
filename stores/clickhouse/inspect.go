package clickhouse

import (
	"context"
	"fmt"
	"strings"

	"github.com/erasure-project/erasure/stores"
)

// RequireColumns fails unless table exists in the database and has every
// one of columns. Queries need no such check: the server refuses an unknown
// table or column itself (UNKNOWN_TABLE, UNKNOWN_IDENTIFIER), and those
// codes are classified permanent.
func (w *Warehouse) RequireColumns(ctx context.Context, table string, columns ...string) error {
	if err := checkCHTable(table); err != nil {
		return err
	}
	if err := checkCHColumns(columns...); err != nil {
		return err
	}
	rows, err := w.conn.Query(ctx, `SELECT name FROM system.columns WHERE database = ? AND table = ?`, w.db, table)
	if err != nil {
		return clickhouseErr(ctx, "warehouse: table columns", err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return clickhouseErr(ctx, "warehouse: table columns", err)
		}
		have[name] = true
	}
	if err := rows.Err(); err != nil {
		return clickhouseErr(ctx, "warehouse: table columns", err)
	}
	if len(have) == 0 {
		return stores.Permanent(fmt.Errorf("warehouse: table %s.%s does not exist", w.db, table))
	}
	var missing []string
	for _, c := range columns {
		if !have[c] { // ClickHouse names are case-sensitive
			missing = append(missing, fmt.Sprintf("%q", c))
		}
	}
	if len(missing) > 0 {
		return stores.Permanent(fmt.Errorf("warehouse: table %s.%s has no column %s", w.db, table, strings.Join(missing, ", ")))
	}
	return nil
}
