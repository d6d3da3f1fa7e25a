package clickhouse

import (
	"cmp"
	"context"
	"crypto/tls"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/combine"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
)

// Config locates a ClickHouse server.
type Config struct {
	// Addr lists host:port pairs: the native port (9000) for "native", the
	// HTTP port (8123) for "http".
	Addr     []string `yaml:"addr"`
	Database string   `yaml:"database"`
	User     string   `yaml:"user"`
	// Password never comes from a file: ERASURE_CLICKHOUSE_PASSWORD.
	Password string `yaml:"-"`
	// Protocol is "native" (the default) or "http".
	Protocol string `yaml:"protocol"`
	TLS      bool   `yaml:"tls"`
}

// Warehouse is the production warehouse: one MergeTree table per
// warehouse table, every column text. The first column is the sorting key
// and is a plain String; the others are Nullable(String) so a value a row
// does not carry stays absent, as in the embedded warehouse.
//
// Names pass CheckIdent before they are put into SQL, quoted with
// backticks; values are always bound parameters. Inserts are
// INSERT … SELECT statements over bound values (no batch API), which work
// on old servers as well as current ones.
//
// Delete is one ALTER TABLE … DELETE WHERE … IN mutation per batch, which
// rewrites the parts and so removes the rows physically, followed by a
// bounded wait until that mutation is done (see mutation.go).
type Warehouse struct {
	conn chdriver.Conn
	db   string
	// MutationTimeout bounds how long Delete waits for its mutation.
	MutationTimeout time.Duration
	// MutationPoll is the interval between polls of system.mutations.
	MutationPoll time.Duration
	// failReason is set when system.mutations has latest_fail_reason
	// (servers since 19.x).
	failReason bool
	// mutated holds, per table, when the last mutation this warehouse
	// waited for was done: the old parts it left start ageing then.
	mutated sync.Map
	// matchBatch caps the values of one IN list; 0 means
	// clickhouseMatchBatch.
	matchBatch int
	// deletes joins concurrent deletes of a table into one mutation.
	// ClickHouse runs the mutations of a table one after another, and each
	// rewrites the parts that hold matching rows, so a mutation's cost grows
	// slowly with its IN list (measured on a 1M-row table: 0.72–0.80 s for
	// 1,000 IDs, 1.04–1.16 s for 10,000).
	deletes combine.Combiner[string, struct{}]
}

var _ stores.Warehouse = (*Warehouse)(nil)

// clickhouseInsertBatch bounds the rows and bytes of one INSERT statement.
const (
	clickhouseInsertRows = 500
	// The whole statement is parsed, so it stays under the default
	// max_query_size (256 KiB).
	clickhouseInsertBytes = 160 << 10
	clickhouseOrphanBatch = 500
)

// NewWarehouse connects to ClickHouse and checks the connection.
func NewWarehouse(ctx context.Context, cfg Config) (*Warehouse, error) {
	if len(cfg.Addr) == 0 {
		return nil, stores.Permanent(errors.New("clickhouse: no address"))
	}
	db := cfg.Database
	if db == "" {
		db = "default"
	}
	if err := stores.CheckIdent("database", db); err != nil {
		return nil, err
	}
	opts := &clickhouse.Options{
		Addr:         cfg.Addr,
		Auth:         clickhouse.Auth{Database: db, Username: cfg.User, Password: cfg.Password},
		DialTimeout:  10 * time.Second,
		ReadTimeout:  5 * time.Minute,
		MaxOpenConns: 10,
		MaxIdleConns: 5,
	}
	switch strings.ToLower(cfg.Protocol) {
	case "", "native":
		opts.Protocol = clickhouse.Native
	case "http":
		opts.Protocol = clickhouse.HTTP
	default:
		return nil, stores.Permanent(fmt.Errorf("clickhouse: protocol %q: want native or http", cfg.Protocol))
	}
	if cfg.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, clickhouseErr(ctx, "clickhouse: open", err)
	}
	w := &Warehouse{conn: conn, db: db, MutationTimeout: 10 * time.Minute, MutationPoll: 100 * time.Millisecond}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, clickhouseErr(ctx, "clickhouse: ping", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, `SELECT count() FROM system.columns WHERE database = 'system' AND table = 'mutations' AND name = 'latest_fail_reason'`).Scan(&n); err != nil {
		conn.Close()
		return nil, clickhouseErr(ctx, "clickhouse: inspect system.mutations", err)
	}
	w.failReason = n > 0
	return w, nil
}

// Close closes the connections.
func (w *Warehouse) Close() error {
	return clickhouseErr(context.Background(), "clickhouse: close", w.conn.Close())
}

func chIdent(name string) string { return "`" + name + "`" }

func (w *Warehouse) table(name string) string { return chIdent(w.db) + "." + chIdent(name) }

func checkCHTable(table string) error {
	if err := stores.CheckIdent("table", table); err != nil {
		return err
	}
	if strings.HasPrefix(table, "erasure_") {
		return stores.Permanent(fmt.Errorf("table name %q: reserved prefix", table))
	}
	return nil
}

func checkCHColumns(cols ...string) error {
	for _, c := range cols {
		if err := stores.CheckIdent("column", c); err != nil {
			return err
		}
	}
	return nil
}

func checkCHMatch(table, column string, values []string) error {
	if err := checkCHTable(table); err != nil {
		return err
	}
	if err := checkCHColumns(column); err != nil {
		return err
	}
	return stores.CheckMatchValues(values)
}

// An IN list takes a whole pipeline batch, so a batch costs one query (and
// one mutation) per table. The driver inlines bound values into the query
// text, and the server's default max_query_size (256 KiB) holds only about
// 6,700 quoted UUIDs, so queries with a long list raise it for themselves
// (see sizedCtx). max_ast_elements (50,000 by default) counts one element
// per value, so clickhouseMatchBatch stays well below it.
const (
	clickhouseMatchBatch = stores.MaxBatch
	// clickhouseMatchBytes bounds the inlined text of one IN list, so a
	// batch of long values is split rather than parsed as one huge query.
	clickhouseMatchBytes = 8 << 20
	// clickhouseMaxQuerySize is the server's default max_query_size.
	clickhouseMaxQuerySize = 256 << 10
)

// inlinedSize is an upper bound of the bytes value takes inlined in a
// query: quotes, an escape per byte at worst, and the ", " after it.
func inlinedSize(value string) int { return 2*len(value) + 4 }

// matchChunks drops repeated values and splits the rest into IN lists of
// at most batch values (clickhouseMatchBatch when batch is 0) and
// clickhouseMatchBytes of inlined text.
func matchChunks(values []string, batch int) [][]string {
	if batch <= 0 {
		batch = clickhouseMatchBatch
	}
	uniq := stores.UniqueKeys(values)
	var chunks [][]string
	for len(uniq) > 0 {
		n, size := 0, 0
		for n < len(uniq) && n < batch {
			size += inlinedSize(uniq[n])
			if n > 0 && size > clickhouseMatchBytes {
				break
			}
			n++
		}
		chunks = append(chunks, uniq[:n:n])
		uniq = uniq[n:]
	}
	return chunks
}

// sizedCtx returns ctx carrying a max_query_size that fits query once the
// driver has inlined args, when that is more than the server's default.
// (Settings go to 18.16 as integers, the only form its protocol revision
// takes.)
func sizedCtx(ctx context.Context, query string, args []any) context.Context {
	size := len(query) + 4<<10
	for _, a := range args {
		if s, ok := a.(string); ok {
			size += inlinedSize(s)
		} else {
			size += 64
		}
	}
	if size <= clickhouseMaxQuerySize {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_query_size": size}))
}

// deleteStatement is the mutation deleting the rows of db.table whose
// column equals one of values, checked by checkCHMatch: identifiers are
// backquoted (CheckIdent admits no backquote) and each value is a bound
// argument, never query text.
func deleteStatement(db, table, column string, values []string) (string, []any) {
	ph, args := inArgs(values)
	return `ALTER TABLE ` + chIdent(db) + `.` + chIdent(table) + ` DELETE WHERE ` + chIdent(column) + ` IN (` + ph + `)`, args
}

// inArgs returns the placeholders and arguments of an IN list of values.
func inArgs(values []string) (string, []any) {
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return sqlutil.Placeholders(len(values)), args
}

// EnsureTable creates table if missing and adds the columns an existing
// table lacks. The first column is the sorting key.
func (w *Warehouse) EnsureTable(ctx context.Context, table string, columns []string) error {
	if err := checkCHTable(table); err != nil {
		return err
	}
	if err := stores.CheckNewColumns(columns); err != nil {
		return err
	}
	if err := checkCHColumns(columns...); err != nil {
		return err
	}
	defs := make([]string, 0, len(columns))
	for i, c := range columns {
		defs = append(defs, chIdent(c)+" "+chColumnType(i))
	}
	q := `CREATE TABLE IF NOT EXISTS ` + w.table(table) + ` (` + strings.Join(defs, ", ") +
		`) ENGINE = MergeTree() ORDER BY (` + chIdent(columns[0]) + `)`
	if err := w.conn.Exec(ctx, q); err != nil {
		return clickhouseErr(ctx, "warehouse: ensure table", err)
	}
	// ADD COLUMN IF NOT EXISTS is not understood by old servers, so the
	// existing columns are looked up first.
	rows, err := w.conn.Query(ctx, `SELECT name FROM system.columns WHERE database = ? AND table = ?`, w.db, table)
	if err != nil {
		return clickhouseErr(ctx, "warehouse: ensure table", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return clickhouseErr(ctx, "warehouse: ensure table", err)
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return clickhouseErr(ctx, "warehouse: ensure table", err)
	}
	for _, c := range columns {
		if have[c] {
			continue
		}
		if err := w.conn.Exec(ctx, `ALTER TABLE `+w.table(table)+` ADD COLUMN `+chIdent(c)+` Nullable(String)`); err != nil {
			// A concurrent EnsureTable may have added it meanwhile.
			var ex *clickhouse.Exception
			if errors.As(err, &ex) && ex.Code == 15 { // DUPLICATE_COLUMN
				continue
			}
			return clickhouseErr(ctx, "warehouse: ensure table", err)
		}
	}
	return nil
}

func chColumnType(i int) string {
	if i == 0 {
		return "String"
	}
	return "Nullable(String)"
}

// chValue converts a row value to the text that is stored, or nil.
func chValue(v any) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case int:
		return strconv.FormatInt(int64(v), 10), nil
	case int8:
		return strconv.FormatInt(int64(v), 10), nil
	case int16:
		return strconv.FormatInt(int64(v), 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case time.Time:
		return stores.FormatTime(v), nil
	case fmt.Stringer:
		return v.String(), nil
	}
	return nil, stores.Permanent(fmt.Errorf("warehouse: unsupported value type %T", v))
}

// Insert adds rows with multi-row INSERT … SELECT statements, one per shape
// of row (set of columns) and batch. A missing or nil value is stored as
// NULL, except in the sorting-key column, which cannot hold NULL and gets
// the empty string.
func (w *Warehouse) Insert(ctx context.Context, table string, rows ...stores.Row) error {
	if err := checkCHTable(table); err != nil {
		return err
	}
	type group struct {
		cols []string
		rows [][]any
	}
	groups := map[string]*group{}
	var order []string
	for _, r := range rows {
		if len(r) == 0 {
			return stores.Permanent(errors.New("warehouse: empty row"))
		}
		cols := make([]string, 0, len(r))
		for c := range r {
			if err := checkCHColumns(c); err != nil {
				return err
			}
			cols = append(cols, c)
		}
		sort.Strings(cols)
		shape := strings.Join(cols, ",")
		g := groups[shape]
		if g == nil {
			g = &group{cols: cols}
			groups[shape] = g
			order = append(order, shape)
		}
		vals := make([]any, len(cols))
		for i, c := range cols {
			v, err := chValue(r[c])
			if err != nil {
				return err
			}
			vals[i] = v
		}
		g.rows = append(g.rows, vals)
	}
	if len(rows) == 0 {
		return nil
	}
	key, err := w.sortingKey(ctx, table)
	if err != nil {
		return err
	}
	for _, shape := range order {
		g := groups[shape]
		quoted := make([]string, len(g.cols))
		for i, c := range g.cols {
			quoted[i] = chIdent(c)
			if c == key {
				for _, vals := range g.rows {
					if vals[i] == nil {
						vals[i] = ""
					}
				}
			}
		}
		types := make([]string, len(g.cols))
		for i, c := range g.cols {
			types[i] = "Nullable(String)"
			if c == key {
				types[i] = "String"
			}
		}
		insert := columnsInsert(w.table(table), quoted, types)
		for start := 0; start < len(g.rows); {
			end, size := start, 0
			for end < len(g.rows) && end-start < clickhouseInsertRows && (end == start || size < clickhouseInsertBytes) {
				for _, v := range g.rows[end] {
					size += 6 // quotes, separator, or NULL
					if s, ok := v.(string); ok {
						size += 2 * len(s)
					}
				}
				end++
			}
			if err := w.conn.Exec(ctx, insert, columnArgs(g.rows[start:end], len(g.cols))...); err != nil {
				return clickhouseErr(ctx, "warehouse: insert", err)
			}
			start = end
		}
	}
	return nil
}

// columnsInsert is an INSERT of rows bound as one array per column, each
// value cast to its column's type: INSERT … VALUES over the native
// protocol and the batch API hang on old servers, and the HTTP transport
// needs a newer one, while this is an ordinary query to every version.
// Arrays of literals, not a list of tuples of casts: an old server parses
// an array of literals in one pass but analyses every cast of the list
// (500 rows of three columns on 18.16: 0.012 s against 0.7 s).
func columnsInsert(table string, quotedCols, types []string) string {
	sel := make([]string, len(quotedCols))
	from := make([]string, len(quotedCols))
	for i := range quotedCols {
		sel[i] = fmt.Sprintf("CAST(c%d[i] AS %s)", i+1, types[i])
		from[i] = fmt.Sprintf("? AS c%d", i+1)
	}
	return `INSERT INTO ` + table + ` (` + strings.Join(quotedCols, ", ") + `) SELECT ` + strings.Join(sel, ", ") +
		` FROM (SELECT ` + strings.Join(from, ", ") + `, arrayJoin(arrayEnumerate(c1)) AS i)`
}

// columnArgs binds rows as one array per column, values escaped by the
// driver (nil as NULL).
func columnArgs[T any](rows [][]T, ncols int) []any {
	args := make([]any, ncols)
	for c := range ncols {
		col := make([]T, len(rows))
		for r, row := range rows {
			col[r] = row[c]
		}
		args[c] = col
	}
	return args
}

// sortingKey returns the table's sorting-key column; a missing table is a
// permanent error.
func (w *Warehouse) sortingKey(ctx context.Context, table string) (string, error) {
	rows, err := w.conn.Query(ctx, `SELECT name, is_in_sorting_key FROM system.columns WHERE database = ? AND table = ?`, w.db, table)
	if err != nil {
		return "", clickhouseErr(ctx, "warehouse: insert", err)
	}
	defer rows.Close()
	found, key := false, ""
	for rows.Next() {
		var name string
		var inKey uint8
		if err := rows.Scan(&name, &inKey); err != nil {
			return "", clickhouseErr(ctx, "warehouse: insert", err)
		}
		found = true
		if inKey == 1 && key == "" {
			key = name
		}
	}
	if err := rows.Err(); err != nil {
		return "", clickhouseErr(ctx, "warehouse: insert", err)
	}
	if !found {
		return "", stores.Permanent(fmt.Errorf("warehouse: insert: table %s.%s does not exist", w.db, table))
	}
	return key, nil
}

// Count counts rows whose column equals one of values exactly, with one
// query per IN list.
func (w *Warehouse) Count(ctx context.Context, table, column string, values ...string) (int64, error) {
	if err := checkCHMatch(table, column, values); err != nil {
		return 0, err
	}
	var total int64
	for _, chunk := range matchChunks(values, w.matchBatch) {
		n, err := w.count(ctx, table, column, chunk)
		if err != nil {
			return 0, clickhouseErr(ctx, "warehouse: count", err)
		}
		total += n
	}
	return total, nil
}

func (w *Warehouse) count(ctx context.Context, table, column string, values []string) (int64, error) {
	ph, args := inArgs(values)
	q := `SELECT count() FROM ` + w.table(table) + ` WHERE ` + chIdent(column) + ` IN (` + ph + `)`
	var n uint64
	err := w.conn.QueryRow(sizedCtx(ctx, q, args), q, args...).Scan(&n)
	return int64(n), err
}

// Delete removes rows whose column equals one of values with one ALTER
// TABLE … DELETE … IN mutation per IN list (one for a pipeline batch),
// waits until that mutation is done, and returns how many rows matched.
// When nothing matches no mutation is issued. The rows stay in the table's
// old, inactive parts for old_parts_lifetime (see Purge).
func (w *Warehouse) Delete(ctx context.Context, table, column string, values ...string) (int64, error) {
	if err := checkCHMatch(table, column, values); err != nil {
		return 0, err
	}
	var total int64
	for _, chunk := range matchChunks(values, w.matchBatch) {
		n, err := w.count(ctx, table, column, chunk)
		if err != nil {
			return total, clickhouseErr(ctx, "warehouse: delete", err)
		}
		if n == 0 {
			continue
		}
		// Deletes of this table by other requests meanwhile share the
		// mutation (see the deletes field).
		lim := combine.Limits[string]{Items: cmp.Or(w.matchBatch, clickhouseMatchBatch), Weight: inlinedSize, MaxWeight: clickhouseMatchBytes}
		_, err = w.deletes.Do(ctx, table+"\x00"+column, chunk, lim,
			func(ctx context.Context, batches [][]string) ([]struct{}, error) {
				values := stores.UniqueKeys(slices.Concat(batches...))
				query, args := deleteStatement(w.db, table, column, values)
				return nil, w.mutate(ctx, "warehouse: delete", table, values, query, args...)
			})
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// waitMutations polls system.mutations until every mutation of table is
// done, bounded by MutationTimeout and ctx: the fallback when the caller's
// own mutation cannot be told from the others (see mutate).
func (w *Warehouse) waitMutations(ctx context.Context, table string) error {
	timeout := w.MutationTimeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	poll := w.MutationPoll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	q := `SELECT count(), any(mutation_id), ` + map[bool]string{true: `any(latest_fail_reason)`, false: `''`}[w.failReason] +
		` FROM system.mutations WHERE database = ? AND table = ? AND is_done = 0`
	for {
		var pending uint64
		var id, reason string
		if err := w.conn.QueryRow(ctx, q, w.db, table).Scan(&pending, &id, &reason); err != nil {
			return clickhouseErr(ctx, "warehouse: delete: wait for mutation", err)
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("warehouse: delete: mutation %s on %s.%s not done after %s", id, w.db, table, timeout)
			if reason != "" {
				msg += ": last failure: " + clickhouseFailReason(reason)
			}
			return stores.Retryable(errors.New(msg))
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("warehouse: delete: wait for mutation %s: %w", id, ctx.Err())
		case <-t.C:
		}
		poll = nextPoll(poll)
	}
}

// DeleteOrphans deletes rows of parent whose key is one of keys and that no
// row of child references any more. Empty keys are ignored.
func (w *Warehouse) DeleteOrphans(ctx context.Context, parent, child, key string, keys []string) (int64, error) {
	if err := checkCHTable(parent); err != nil {
		return 0, err
	}
	if err := checkCHTable(child); err != nil {
		return 0, err
	}
	if err := checkCHColumns(key); err != nil {
		return 0, err
	}
	uniq := stores.UniqueKeys(keys)
	k := chIdent(key)
	var total int64
	for len(uniq) > 0 {
		batch := uniq[:min(len(uniq), clickhouseOrphanBatch)]
		uniq = uniq[len(batch):]
		args := make([]any, 0, 2*len(batch))
		for _, v := range batch {
			args = append(args, v)
		}
		// The orphans are determined first, then deleted by their exact keys,
		// so the mutation never depends on a subquery evaluated later.
		rows, err := w.conn.Query(ctx, `SELECT assumeNotNull(`+k+`), count() FROM `+w.table(parent)+` WHERE `+k+` IN (`+sqlutil.Placeholders(len(batch))+`)`+
			` AND `+k+` NOT IN (SELECT `+k+` FROM `+w.table(child)+` WHERE `+k+` IN (`+sqlutil.Placeholders(len(batch))+`) AND `+k+` IS NOT NULL)`+
			` GROUP BY assumeNotNull(`+k+`)`, append(args, args...)...)
		if err != nil {
			return total, clickhouseErr(ctx, "warehouse: delete orphans", err)
		}
		var orphans []any
		var n int64
		for rows.Next() {
			var v string
			var c uint64
			if err := rows.Scan(&v, &c); err != nil {
				rows.Close()
				return total, clickhouseErr(ctx, "warehouse: delete orphans", err)
			}
			orphans = append(orphans, v)
			n += int64(c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return total, clickhouseErr(ctx, "warehouse: delete orphans", err)
		}
		if len(orphans) == 0 {
			continue
		}
		names := make([]string, len(orphans))
		for i, o := range orphans {
			names[i], _ = o.(string)
		}
		if err := w.mutate(ctx, "warehouse: delete orphans", parent, names,
			`ALTER TABLE `+w.table(parent)+` DELETE WHERE `+k+` IN (`+sqlutil.Placeholders(len(orphans))+`)`, orphans...); err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// Distinct returns the distinct non-null values of column among rows whose
// matchColumn equals one of values, sorted, with one query per IN list.
func (w *Warehouse) Distinct(ctx context.Context, table, column, matchColumn string, values ...string) ([]string, error) {
	if err := checkCHMatch(table, matchColumn, values); err != nil {
		return nil, err
	}
	if err := checkCHColumns(column); err != nil {
		return nil, err
	}
	c := chIdent(column)
	seen := map[string]bool{}
	out := []string{}
	for _, chunk := range matchChunks(values, w.matchBatch) {
		ph, args := inArgs(chunk)
		q := `SELECT DISTINCT assumeNotNull(` + c + `) AS v FROM ` + w.table(table) +
			` WHERE ` + chIdent(matchColumn) + ` IN (` + ph + `) AND ` + c + ` IS NOT NULL`
		rows, err := w.conn.Query(sizedCtx(ctx, q, args), q, args...)
		if err != nil {
			return nil, clickhouseErr(ctx, "warehouse: distinct", err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, clickhouseErr(ctx, "warehouse: distinct", err)
			}
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, clickhouseErr(ctx, "warehouse: distinct", err)
		}
	}
	// Sorted here, as the lists' results are merged; bytewise, as
	// ClickHouse sorts strings.
	sort.Strings(out)
	return out, nil
}

// ClickHouse error codes worth retrying, with their names: timeouts, network
// trouble, overload and too many parts, replicas and keeper hiccups.
var clickhouseRetryableCodes = map[int32]string{
	3:   "UNEXPECTED_END_OF_FILE",
	32:  "ATTEMPT_TO_READ_AFTER_EOF",
	159: "TIMEOUT_EXCEEDED",
	173: "CANNOT_ALLOCATE_MEMORY",
	202: "TOO_MANY_SIMULTANEOUS_QUERIES",
	203: "NO_FREE_CONNECTION",
	209: "SOCKET_TIMEOUT",
	210: "NETWORK_ERROR",
	236: "ABORTED",
	241: "MEMORY_LIMIT_EXCEEDED",
	242: "TABLE_IS_READ_ONLY",
	252: "TOO_MANY_PARTS",
	279: "ALL_CONNECTION_TRIES_FAILED",
	285: "TOO_FEW_LIVE_REPLICAS",
	286: "UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE",
	319: "UNKNOWN_STATUS_OF_INSERT",
	373: "SESSION_IS_LOCKED",
	394: "QUERY_WAS_CANCELLED",
	425: "SYSTEM_ERROR",
	439: "CANNOT_SCHEDULE_TASK",
	473: "DEADLOCK_AVOIDED",
	517: "CANNOT_ASSIGN_ALTER",
	999: "KEEPER_EXCEPTION",
}

// ClickHouse error codes that no retry will fix, with their names: bad SQL,
// unknown names, wrong types, access.
var clickhousePermanentCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	15:  "DUPLICATE_COLUMN",
	16:  "NO_SUCH_COLUMN_IN_TABLE",
	26:  "CANNOT_PARSE_QUOTED_STRING",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	36:  "BAD_ARGUMENTS",
	43:  "ILLEGAL_TYPE_OF_ARGUMENT",
	44:  "ILLEGAL_COLUMN",
	46:  "UNKNOWN_FUNCTION",
	47:  "UNKNOWN_IDENTIFIER",
	48:  "NOT_IMPLEMENTED",
	53:  "TYPE_MISMATCH",
	57:  "TABLE_ALREADY_EXISTS",
	60:  "UNKNOWN_TABLE",
	62:  "SYNTAX_ERROR",
	70:  "CANNOT_CONVERT_TYPE",
	81:  "UNKNOWN_DATABASE",
	115: "UNKNOWN_SETTING",
	117: "INCORRECT_DATA",
	192: "UNKNOWN_USER",
	193: "WRONG_PASSWORD",
	194: "REQUIRED_PASSWORD",
	349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
	497: "ACCESS_DENIED",
	516: "AUTHENTICATION_FAILED",
}

var clickhouseCodeRE = regexp.MustCompile(`(?i)code:\s*(\d+)`)

// clickhouseCodeNameRE is what an error name from the server may look like.
var clickhouseCodeNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// clickhouseRetryableText are phrases that mark an error without a code as
// transient.
var clickhouseRetryableText = []string{"too many parts", "timeout", "connection refused", "connection reset", "broken pipe", "overload"}

// clickhouseErr wraps err with op and classifies it. Context cancellation
// and deadlines are checked first and left unclassified.
//
// The driver's text never becomes part of the message: server exceptions
// quote the values they failed on (the text that did not parse, the part of
// a query near a syntax error), and these errors end up in logs. Error()
// keeps the operation, the error code and its name; the driver error stays
// reachable through errors.As.
func clickhouseErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return &clickhouseError{op: op, desc: fmt.Sprintf("%s (driver: %s)", ctxErr, clickhouseDescribe(err)),
			errs: []error{ctxErr, err}}
	}
	var done *clickhouseError
	if errors.As(err, &done) {
		// Stripped and classified further down already.
		return fmt.Errorf("%s: %w", op, err)
	}
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) && (errors.Is(err, stores.ErrPermanent) || errors.Is(err, stores.ErrRetryable) ||
		errors.Is(err, stores.ErrNotFound)) {
		// This package's own errors, whose text holds no driver message.
		return fmt.Errorf("%s: %w", op, err)
	}
	wrapped := &clickhouseError{op: op, desc: clickhouseDescribe(err), errs: []error{err}}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, stores.ErrPermanent) || errors.Is(err, stores.ErrRetryable) {
		return wrapped
	}
	if code, _, ok := clickhouseCode(err); ok {
		switch {
		case clickhouseRetryableCodes[code] != "":
			return stores.Retryable(wrapped)
		case clickhousePermanentCodes[code] != "":
			return stores.Permanent(wrapped)
		}
		return wrapped
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, clickhouse.ErrAcquireConnTimeout) {
		return stores.Retryable(wrapped)
	}
	if clickhouseRetryablePhrase(err) != "" {
		return stores.Retryable(wrapped)
	}
	return wrapped
}

// clickhouseError is a driver error reduced to op and a description that
// holds no driver text; Unwrap still reaches the original.
type clickhouseError struct {
	op   string
	desc string
	errs []error
}

func (e *clickhouseError) Error() string   { return e.op + ": " + e.desc }
func (e *clickhouseError) Unwrap() []error { return e.errs }

// clickhouseCode is the ClickHouse error code of err, from a server
// exception or else from a "code: N" in its text, and the name the driver
// gave it, if any.
func clickhouseCode(err error) (code int32, name string, ok bool) {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code, ex.CodeName, true
	}
	if m := clickhouseCodeRE.FindStringSubmatch(err.Error()); m != nil {
		if c, perr := strconv.ParseInt(m[1], 10, 32); perr == nil {
			return int32(c), "", true
		}
	}
	return 0, "", false
}

// clickhouseCodeText is "code N (NAME)", or "code N" when the name is not
// known.
func clickhouseCodeText(code int32, name string) string {
	if n := clickhouseRetryableCodes[code]; n != "" {
		name = n
	} else if n := clickhousePermanentCodes[code]; n != "" {
		name = n
	}
	if !clickhouseCodeNameRE.MatchString(name) {
		return fmt.Sprintf("code %d", code)
	}
	return fmt.Sprintf("code %d (%s)", code, name)
}

// clickhouseRetryablePhrase is the transient-error phrase in err's text, or "".
func clickhouseRetryablePhrase(err error) string {
	msg := strings.ToLower(err.Error())
	for _, s := range clickhouseRetryableText {
		if strings.Contains(msg, s) {
			return s
		}
	}
	return ""
}

// clickhouseDescribe names err without its message: the error code, the
// text of a fixed sentinel, the kind of network failure, or only the type.
func clickhouseDescribe(err error) string {
	prefix := ""
	var he *clickhouse.HTTPError
	if errors.As(err, &he) {
		prefix = fmt.Sprintf("HTTP %d: ", he.StatusCode)
	}
	if code, name, ok := clickhouseCode(err); ok {
		return prefix + clickhouseCodeText(code, name)
	}
	for _, sentinel := range []error{context.Canceled, context.DeadlineExceeded, io.EOF, io.ErrUnexpectedEOF,
		driver.ErrBadConn, clickhouse.ErrAcquireConnTimeout} {
		if errors.Is(err, sentinel) {
			return prefix + sentinel.Error()
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return prefix + errno.Error()
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		if netErr.Timeout() {
			return prefix + "network timeout"
		}
		return prefix + "network error"
	}
	var opErr *clickhouse.OpError
	if errors.As(err, &opErr) {
		// Op and ColumnName come from the driver and the query, not from data.
		return prefix + fmt.Sprintf("clickhouse [%s] column %s: error text withheld", opErr.Op, opErr.ColumnName)
	}
	if s := clickhouseRetryablePhrase(err); s != "" {
		return prefix + fmt.Sprintf("error text withheld (mentions %q)", s)
	}
	inner := err
	for {
		next := errors.Unwrap(inner)
		if next == nil {
			break
		}
		inner = next
	}
	return prefix + fmt.Sprintf("error text withheld (%T)", inner)
}

// clickhouseFailReason reduces a mutation's latest_fail_reason, which is
// exception text and can quote row values, to its error code.
func clickhouseFailReason(reason string) string {
	if m := clickhouseCodeRE.FindStringSubmatch(reason); m != nil {
		if c, err := strconv.ParseInt(m[1], 10, 32); err == nil {
			return clickhouseCodeText(int32(c), "")
		}
	}
	return "text withheld"
}
