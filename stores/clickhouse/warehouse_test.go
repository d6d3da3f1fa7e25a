package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// clickhouseAddrs returns the native address and the HTTP address (host:port)
// of the test server, skipping the test when none is configured (failing in
// CI).
func clickhouseAddrs(t *testing.T) (native, httpAddr string) {
	t.Helper()
	native = os.Getenv("ERASURE_TEST_CLICKHOUSE_ADDR")
	if native == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ERASURE_TEST_CLICKHOUSE_ADDR not set")
		}
		t.Skip("ERASURE_TEST_CLICKHOUSE_ADDR not set")
	}
	if raw := os.Getenv("ERASURE_TEST_CLICKHOUSE_HTTP"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			t.Fatalf("ERASURE_TEST_CLICKHOUSE_HTTP=%q: not a URL", raw)
		}
		httpAddr = u.Host
	}
	return native, httpAddr
}

// newClickHouseTestDB creates a database named prefix plus random hex,
// dropped when the test ends.
func newClickHouseTestDB(t *testing.T, native, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := NewWarehouse(ctx, Config{Addr: []string{native}, Protocol: "native"})
	if err != nil {
		t.Fatalf("connect to ClickHouse at %s: %v", native, err)
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	db := prefix + hex.EncodeToString(b)
	if err := admin.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+chIdent(db)); err != nil {
		admin.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+chIdent(db)); err != nil {
			t.Errorf("drop database %s: %v", db, err)
		}
		admin.Close()
	})
	return db
}

// newClickHouseTestWarehouse returns a warehouse speaking protocol in a
// fresh database.
func newClickHouseTestWarehouse(t *testing.T, native, addr, protocol string) *Warehouse {
	t.Helper()
	db := newClickHouseTestDB(t, native, "erasure_t")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := NewWarehouse(ctx, Config{Addr: []string{addr}, Database: db, Protocol: protocol})
	if err != nil {
		t.Fatalf("connect to ClickHouse at %s (%s): %v", addr, protocol, err)
	}
	w.MutationTimeout = 2 * time.Minute
	t.Cleanup(func() { w.Close() })
	return w
}

// The contract runs over the native protocol. The driver's HTTP transport
// ("protocol: http") needs a server newer than the 18.16 tested here, so it
// is not exercised by this suite.
func TestClickHouseWarehouseContract(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	t.Run("native", func(t *testing.T) {
		storetest.TestWarehouse(t, func(t *testing.T) stores.Warehouse {
			return newClickHouseTestWarehouse(t, native, native, "native")
		})
	})
}

// TestClickHouseDeleteIsAFinishedMutation checks that Delete removes rows
// physically: when it returns, the rows are not counted any more and the
// table's ALTER … DELETE mutation is recorded as done, so the rows were
// rewritten away rather than masked.
func TestClickHouseDeleteIsAFinishedMutation(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	w := newClickHouseTestWarehouse(t, native, native, "native")
	ctx := t.Context()
	table := storetest.UniqueName("wh")
	if err := w.EnsureTable(ctx, table, []string{"row_id", "contact_id", "payload"}); err != nil {
		t.Fatal(err)
	}
	target, other := storetest.NewUUID(), storetest.NewUUID()
	if err := w.Insert(ctx, table,
		stores.Row{"row_id": "r1", "contact_id": target, "payload": "secret 1"},
		stores.Row{"row_id": "r2", "contact_id": target, "payload": "secret 2"},
		stores.Row{"row_id": "r3", "contact_id": other, "payload": "keep"}); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Delete(ctx, table, "contact_id", target); err != nil || n != 2 {
		t.Fatalf("Delete = %d, %v; want 2, nil", n, err)
	}

	// Immediately after Delete: nothing left, checked straight in SQL.
	var left uint64
	if err := w.conn.QueryRow(ctx, "SELECT count() FROM "+w.table(table)+" WHERE contact_id = ?", target).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d rows left right after Delete, want 0", left)
	}
	var done, pending uint64
	var command string
	if err := w.conn.QueryRow(ctx, `SELECT countIf(is_done = 1), countIf(is_done = 0), any(command) FROM system.mutations
		WHERE database = ? AND table = ?`, w.db, table).Scan(&done, &pending, &command); err != nil {
		t.Fatal(err)
	}
	if done != 1 || pending != 0 {
		t.Fatalf("system.mutations for %s: %d done, %d pending; want exactly one finished mutation", table, done, pending)
	}
	if !strings.Contains(command, "DELETE") || !strings.Contains(command, "contact_id") {
		t.Errorf("mutation command = %q, want an ALTER DELETE on contact_id", command)
	}
	// The value does not survive in any active part either.
	var inParts uint64
	if err := w.conn.QueryRow(ctx, "SELECT count() FROM "+w.table(table)+" WHERE payload LIKE 'secret%'").Scan(&inParts); err != nil {
		t.Fatal(err)
	}
	if inParts != 0 {
		t.Errorf("%d deleted payloads still readable", inParts)
	}
	if n, err := w.Count(ctx, table, "contact_id", other); err != nil || n != 1 {
		t.Errorf("Count(other) = %d, %v; want 1", n, err)
	}

	// Deleting what is gone issues no further mutation.
	if n, err := w.Delete(ctx, table, "contact_id", target); err != nil || n != 0 {
		t.Fatalf("second Delete = %d, %v; want 0, nil", n, err)
	}
	var total uint64
	if err := w.conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND table = ?", w.db, table).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != 1 {
		t.Errorf("%d mutations after a no-op Delete, want still 1", total)
	}
}

// TestClickHouseInsertEscapesValues round-trips values that would break
// naive quoting.
func TestClickHouseInsertEscapesValues(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	for proto, addr := range map[string]string{"native": native} {
		t.Run(proto, func(t *testing.T) {
			w := newClickHouseTestWarehouse(t, native, addr, proto)
			ctx := t.Context()
			table := storetest.UniqueName("esc")
			if err := w.EnsureTable(ctx, table, []string{"row_id", "v"}); err != nil {
				t.Fatal(err)
			}
			values := []string{`'`, `\`, `\'`, `'); DROP TABLE x; --`, "a\x00b", "line\nbreak\ttab", `?`, `{x}`, "ünïcödé", `"`, "`", `\N`, "NULL"}
			rows := make([]stores.Row, len(values))
			for i, v := range values {
				rows[i] = stores.Row{"row_id": string(rune('a' + i)), "v": v}
			}
			if err := w.Insert(ctx, table, rows...); err != nil {
				t.Fatalf("Insert: %v", err)
			}
			for i, v := range values {
				got, err := w.Distinct(ctx, table, "v", "row_id", string(rune('a'+i)))
				if err != nil || len(got) != 1 || got[0] != v {
					t.Errorf("value %q read back as %q, %v", v, got, err)
				}
				if n, err := w.Count(ctx, table, "v", v); err != nil || n != 1 {
					t.Errorf("Count(%q) = %d, %v; want 1", v, n, err)
				}
			}
		})
	}
}

func TestClickHouseErrorClassification(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		msg       string
		permanent bool
		retryable bool
	}{
		{"code: 62, message: Syntax error", true, false},
		{"code: 60, message: Table x doesn't exist", true, false},
		{"code: 47, message: Unknown identifier", true, false},
		{"code: 252, message: Too many parts", false, true},
		{"Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts", false, true},
		{"code: 173, message: Cannot allocate memory", false, true},
		{"code: 159, message: Timeout exceeded", false, true},
		{"code: 210, message: Connection refused", false, true},
	} {
		err := clickhouseErr(ctx, "op", errors.New(c.msg))
		if errors.Is(err, stores.ErrPermanent) != c.permanent || errors.Is(err, stores.ErrRetryable) != c.retryable {
			t.Errorf("%q: permanent=%v retryable=%v", c.msg, errors.Is(err, stores.ErrPermanent), errors.Is(err, stores.ErrRetryable))
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := clickhouseErr(cctx, "op", errors.New("code: 62")); !errors.Is(err, context.Canceled) || errors.Is(err, stores.ErrPermanent) {
		t.Errorf("cancelled: %v", err)
	}
}

// Server exceptions quote the values they failed on, and these errors reach
// log lines. The wrapped error keeps the operation, the code and its name
// and the class, and the driver error stays reachable with errors.As, but
// no value survives in Error().
func TestClickHouseErrorsDoNotQuoteValues(t *testing.T) {
	const contact = "0b0e6d3c-5b1a-4c2e-9f3a-7d2b8e4c1a90"
	type class int
	const (
		unclassified class = iota
		permanent
		retryable
	)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		op        string
		err       error
		want      string // the whole of Error()
		class     class
		exception bool // errors.As finds a *clickhouse.Exception
	}{
		{
			name: "syntax error",
			op:   "warehouse: delete",
			err: &clickhouse.Exception{Code: 62, Name: "DB::Exception", Message: "Syntax error: failed at position 61 ('" + contact +
				"'): '" + contact + "'. Expected one of: token, Comma"},
			want: "warehouse: delete: code 62 (SYNTAX_ERROR)", class: permanent, exception: true,
		},
		{
			name: "value that does not parse",
			op:   "ledger: put request",
			err:  &clickhouse.Exception{Code: 6, Message: "Cannot parse string '" + contact + "' as UInt64: syntax error at begin of string"},
			want: "ledger: put request: code 6 (CANNOT_PARSE_TEXT)", class: permanent, exception: true,
		},
		{
			name: "memory limit while filtering on the contact",
			op:   "warehouse: count",
			err:  &clickhouse.Exception{Code: 241, Message: "Memory limit (total) exceeded: while executing WHERE contact_id = '" + contact + "'"},
			want: "warehouse: count: code 241 (MEMORY_LIMIT_EXCEEDED)", class: retryable, exception: true,
		},
		{
			name: "code outside both lists, named by the server",
			op:   "warehouse: distinct",
			err:  &clickhouse.Exception{Code: 49, CodeName: "LOGICAL_ERROR", Message: "Bad cast from '" + contact + "'"},
			want: "warehouse: distinct: code 49 (LOGICAL_ERROR)", class: unclassified, exception: true,
		},
		{
			name: "HTTP error carrying an exception",
			op:   "warehouse: insert",
			err: &clickhouse.HTTPError{StatusCode: 400, Err: &clickhouse.Exception{Code: 27, CodeName: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
				Message: "Cannot parse input: expected ',' before: '" + contact + "'"}},
			want: "warehouse: insert: HTTP 400: code 27 (CANNOT_PARSE_INPUT_ASSERTION_FAILED)", class: permanent, exception: true,
		},
		{
			name: "exception only as text",
			op:   "ledger: audit",
			err:  errors.New("ClickHouse exception: Code: 60. DB::Exception: Table default.`" + contact + "` doesn't exist. (UNKNOWN_TABLE)"),
			want: "ledger: audit: code 60 (UNKNOWN_TABLE)", class: permanent,
		},
		{
			name: "column error from the driver",
			op:   "ledger: state",
			err:  &clickhouse.OpError{Op: "ScanRow", ColumnName: "request", Err: errors.New(`could not convert "` + contact + `" to decimal`)},
			want: "ledger: state: clickhouse [ScanRow] column request: error text withheld", class: unclassified,
		},
		{
			name: "connection refused, URL quoting the value",
			op:   "warehouse: count",
			err: &url.Error{Op: "Post", URL: "http://127.0.0.1:8123/?param_v=" + contact,
				Err: &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}},
			want: "warehouse: count: connection refused", class: retryable,
		},
		{
			name: "timeout only as text",
			op:   "warehouse: count",
			err:  errors.New("read: timeout while reading rows for '" + contact + "'"),
			want: `warehouse: count: error text withheld (mentions "timeout")`, class: retryable,
		},
		{
			name: "cancelled while the server failed",
			ctx:  cancelled,
			op:   "warehouse: delete",
			err:  &clickhouse.Exception{Code: 394, Message: "Query was cancelled: WHERE contact_id = '" + contact + "'"},
			want: "warehouse: delete: context canceled (driver: code 394 (QUERY_WAS_CANCELLED))", class: unclassified, exception: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(tt.err.Error(), contact) {
				t.Fatalf("the driver error %q does not quote the contact, so it proves nothing", tt.err)
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			err := clickhouseErr(ctx, tt.op, tt.err)
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
			if !errors.Is(err, tt.err) {
				t.Errorf("the driver error is not reachable with errors.Is")
			}
			var ex *clickhouse.Exception
			if errors.As(err, &ex) != tt.exception {
				t.Errorf("errors.As(*clickhouse.Exception) = %v, want %v", !tt.exception, tt.exception)
			}
			if tt.ctx != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("errors.Is(context.Canceled) = false")
			}
		})
	}
}

// The same against a real server: an insert whose value does not parse as
// the column's type fails with an exception quoting the value.
func TestClickHouseServerErrorsDoNotQuoteValues(t *testing.T) {
	const contact = "0b0e6d3c-5b1a-4c2e-9f3a-7d2b8e4c1a90"
	native, _ := clickhouseAddrs(t)
	w := newClickHouseTestWarehouse(t, native, native, "native")
	ctx := t.Context()
	table := storetest.UniqueName("typed")
	if err := w.conn.Exec(ctx, "CREATE TABLE "+w.table(table)+" (row_id String, n UInt64) ENGINE = MergeTree() ORDER BY row_id"); err != nil {
		t.Fatal(err)
	}
	err := w.Insert(ctx, table, stores.Row{"row_id": "r1", "n": contact})
	if err == nil {
		t.Fatal("Insert of a non-number into a UInt64 column succeeded")
	}
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		t.Fatalf("errors.As(*clickhouse.Exception) = false for %v", err)
	}
	if !strings.Contains(ex.Error(), contact) {
		t.Fatalf("the server's message %q does not quote the value, so the test proves nothing", ex.Error())
	}
	if strings.Contains(err.Error(), contact) {
		t.Errorf("Error() quotes the contact ID: %q", err.Error())
	}
	if want := "warehouse: insert: code " + strconv.Itoa(int(ex.Code)); !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want it to start with %q", err.Error(), want)
	}
	if !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("err = %v, want permanent", err)
	}
}

func TestClickHouseMutationFailReasonKeepsOnlyTheCode(t *testing.T) {
	const contact = "0b0e6d3c-5b1a-4c2e-9f3a-7d2b8e4c1a90"
	for reason, want := range map[string]string{
		"Code: 6. DB::Exception: Cannot parse string '" + contact + "' as UInt64. (CANNOT_PARSE_TEXT) (version 24.8.1)": "code 6 (CANNOT_PARSE_TEXT)",
		"Code: 341. DB::Exception: Exception happened during execution of mutation for '" + contact + "'":               "code 341",
		"mutation failed for '" + contact + "'": "text withheld",
	} {
		if got := clickhouseFailReason(reason); got != want {
			t.Errorf("clickhouseFailReason(%q) = %q, want %q", reason, got, want)
		}
	}
}

// A pipeline batch of 10,000 contacts is one IN list: one count and one
// mutation, although the query is longer than the server's default
// max_query_size. Rows of other contacts stay.
func TestClickHouseDeleteBatchIsOneMutation(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	w := newClickHouseTestWarehouse(t, native, native, "native")
	ctx := t.Context()
	table := storetest.UniqueName("wh")
	if err := w.EnsureTable(ctx, table, []string{"contact_id", "thread", "payload"}); err != nil {
		t.Fatal(err)
	}
	targets := make([]string, stores.MaxBatch)
	size := 0
	for i := range targets {
		targets[i] = storetest.NewUUID()
		size += inlinedSize(targets[i])
	}
	if size <= clickhouseMaxQuerySize {
		t.Fatalf("the IN list takes %d bytes, within the default max_query_size: the test proves nothing", size)
	}
	var rows []stores.Row
	for i, id := range targets {
		rows = append(rows, stores.Row{"contact_id": id, "thread": fmt.Sprintf("t%d", i%7), "payload": "secret"})
	}
	// Two more rows for one target, and contacts outside the batch.
	rows = append(rows, stores.Row{"contact_id": targets[0], "payload": "secret"}, stores.Row{"contact_id": targets[9999], "payload": "secret"})
	others := []string{storetest.NewUUID(), storetest.NewUUID(), storetest.NewUUID()}
	for _, id := range others {
		rows = append(rows, stores.Row{"contact_id": id, "thread": "kept", "payload": "keep"})
	}
	if err := w.Insert(ctx, table, rows...); err != nil {
		t.Fatal(err)
	}
	want := int64(len(targets) + 2)
	if n, err := w.Count(ctx, table, "contact_id", targets...); err != nil || n != want {
		t.Fatalf("Count(batch) = %d, %v; want %d", n, err, want)
	}
	threads, err := w.Distinct(ctx, table, "thread", "contact_id", targets...)
	if err != nil || strings.Join(threads, ",") != "t0,t1,t2,t3,t4,t5,t6" {
		t.Fatalf("Distinct(batch) = %q, %v; want t0 to t6", threads, err)
	}
	start := time.Now()
	n, err := w.Delete(ctx, table, "contact_id", targets...)
	if err != nil || n != want {
		t.Fatalf("Delete(batch) = %d, %v; want %d", n, err, want)
	}
	t.Logf("Delete of %d IDs (%d rows), one mutation waited for: %s", len(targets), n, time.Since(start))
	var total, done uint64
	if err := w.conn.QueryRow(ctx, "SELECT count(), countIf(is_done = 1) FROM system.mutations WHERE database = ? AND table = ?",
		w.db, table).Scan(&total, &done); err != nil {
		t.Fatal(err)
	}
	if total != 1 || done != 1 {
		t.Errorf("system.mutations: %d mutations, %d done; want exactly one, finished", total, done)
	}
	var left, kept uint64
	if err := w.conn.QueryRow(ctx, "SELECT countIf(payload = 'secret'), countIf(payload = 'keep') FROM "+w.table(table)).Scan(&left, &kept); err != nil {
		t.Fatal(err)
	}
	if left != 0 || kept != uint64(len(others)) {
		t.Errorf("after Delete: %d deleted rows readable, %d other rows; want 0 and %d", left, kept, len(others))
	}
	if n, err := w.Count(ctx, table, "contact_id", targets...); err != nil || n != 0 {
		t.Errorf("Count(batch) after Delete = %d, %v; want 0", n, err)
	}
}

// A batch longer than an IN list takes is split, and the lists' results
// add up: counts sum, distinct values merge sorted, and each list that
// matches is one mutation. Values that need escaping match exactly.
func TestClickHouseBatchAcrossINLists(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	w := newClickHouseTestWarehouse(t, native, native, "native")
	w.matchBatch = 3
	ctx := t.Context()
	table := storetest.UniqueName("wh")
	if err := w.EnsureTable(ctx, table, []string{"contact_id", "thread"}); err != nil {
		t.Fatal(err)
	}
	ids := []string{"c1", `it's`, `back\slash`, "c4", "c5", "c6", "c7"}
	var rows []stores.Row
	for i, id := range ids {
		rows = append(rows, stores.Row{"contact_id": id, "thread": fmt.Sprintf("t%d", len(ids)-i)})
	}
	rows = append(rows, stores.Row{"contact_id": "c1", "thread": "t7"}, stores.Row{"contact_id": "c", "thread": "t0"},
		stores.Row{"contact_id": "c10", "thread": "t0"}, stores.Row{"contact_id": `it`, "thread": "t0"})
	if err := w.Insert(ctx, table, rows...); err != nil {
		t.Fatal(err)
	}
	// Repeats count once; "gone" matches nothing.
	batch := append(slices.Clone(ids), "c1", "gone", "c4")
	if n, err := w.Count(ctx, table, "contact_id", batch...); err != nil || n != int64(len(ids)+1) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(ids)+1)
	}
	got, err := w.Distinct(ctx, table, "thread", "contact_id", batch...)
	if err != nil || strings.Join(got, ",") != "t1,t2,t3,t4,t5,t6,t7" {
		t.Fatalf("Distinct = %q, %v; want t1 to t7 once each, sorted", got, err)
	}
	// Lists: [c1 it's back\slash] [c4 c5 c6] [c7 gone].
	if n, err := w.Delete(ctx, table, "contact_id", batch...); err != nil || n != int64(len(ids)+1) {
		t.Fatalf("Delete = %d, %v; want %d", n, err, len(ids)+1)
	}
	var mutations uint64
	if err := w.conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND table = ?", w.db, table).Scan(&mutations); err != nil {
		t.Fatal(err)
	}
	if mutations != 3 {
		t.Errorf("%d mutations, want one per IN list: 3", mutations)
	}
	left, err := w.Distinct(ctx, table, "contact_id", "thread", "t0")
	if err != nil || strings.Join(left, ",") != "c,c10,it" {
		t.Errorf("rows left = %q, %v; want the near misses c, c10 and it", left, err)
	}
	// The next batch of deletes finds nothing and issues no mutation.
	if n, err := w.Delete(ctx, table, "contact_id", ids...); err != nil || n != 0 {
		t.Errorf("second Delete = %d, %v; want 0", n, err)
	}
	for name, call := range map[string]func() error{
		"Count":    func() error { _, err := w.Count(ctx, table, "contact_id"); return err },
		"Delete":   func() error { _, err := w.Delete(ctx, table, "contact_id"); return err },
		"Distinct": func() error { _, err := w.Distinct(ctx, table, "thread", "contact_id"); return err },
		"empty":    func() error { _, err := w.Delete(ctx, table, "contact_id", "c", ""); return err },
	} {
		if err := call(); !errors.Is(err, stores.ErrPermanent) {
			t.Errorf("%s without a value: err = %v, want permanent", name, err)
		}
	}
	if n, err := w.Count(ctx, table, "contact_id", "c"); err != nil || n != 1 {
		t.Errorf("Count(c) after the refused deletes = %d, %v; want 1", n, err)
	}
}

// IN lists are cut by count and by the bytes their values take inlined.
func TestClickHouseMatchChunks(t *testing.T) {
	long := strings.Repeat("x", 3<<20)
	for _, tc := range []struct {
		name   string
		values []string
		batch  int
		want   []int
	}{
		{"repeats dropped", []string{"a", "b", "a", "c", "b"}, 0, []int{3}},
		{"by count", []string{"a", "b", "c", "d", "e"}, 2, []int{2, 2, 1}},
		{"by bytes", []string{long, long + "1", "a", long + "2"}, 0, []int{1, 2, 1}},
		{"one value over the byte cap", []string{long + long}, 0, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			n := 0
			for _, c := range matchChunks(tc.values, tc.batch) {
				got = append(got, len(c))
				n += len(c)
				size := 0
				for _, v := range c {
					size += inlinedSize(v)
				}
				if len(c) > 1 && size > clickhouseMatchBytes {
					t.Errorf("a list of %d values takes %d bytes, over %d", len(c), size, clickhouseMatchBytes)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("list lengths = %v, want %v", got, tc.want)
			}
		})
	}
	if n := len(matchChunks(make([]string, 0), 0)); n != 0 {
		t.Errorf("%d lists for no values", n)
	}
	big := make([]string, stores.MaxBatch+1)
	for i := range big {
		big[i] = fmt.Sprintf("%036d", i)
	}
	if got := matchChunks(big, 0); len(got) != 2 || len(got[0]) != stores.MaxBatch || len(got[1]) != 1 {
		t.Errorf("%d values: %d lists, want one full batch and one of the rest", len(big), len(got))
	}
}

// Deletes of one table by concurrent callers share mutations: each caller
// gets its own count, its rows are gone when it returns, rows of no caller
// stay, and the table sees fewer mutations than callers.
func TestClickHouseConcurrentDeletesShareMutations(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	w := newClickHouseTestWarehouse(t, native, native, "native")
	ctx := t.Context()
	table := storetest.UniqueName("wh")
	if err := w.EnsureTable(ctx, table, []string{"contact_id", "payload"}); err != nil {
		t.Fatal(err)
	}
	const callers, each = 8, 50
	batches := make([][]string, callers)
	var rows []stores.Row
	for i := range batches {
		for j := range each {
			id := storetest.NewUUID()
			batches[i] = append(batches[i], id)
			rows = append(rows, stores.Row{"contact_id": id, "payload": "secret"})
			if j%10 == 0 { // some contacts have two rows
				rows = append(rows, stores.Row{"contact_id": id, "payload": "secret"})
			}
		}
	}
	kept := []string{storetest.NewUUID(), storetest.NewUUID()}
	for _, id := range kept {
		rows = append(rows, stores.Row{"contact_id": id, "payload": "keep"})
	}
	if err := w.Insert(ctx, table, rows...); err != nil {
		t.Fatal(err)
	}
	type result struct {
		i   int
		n   int64
		err error
		at  time.Duration
	}
	out := make(chan result, callers)
	start := time.Now()
	for i, b := range batches {
		go func() {
			n, err := w.Delete(ctx, table, "contact_id", b...)
			// Gone when Delete returns, whatever the other callers do.
			if err == nil {
				if left, cerr := w.Count(ctx, table, "contact_id", b...); cerr != nil || left != 0 {
					err = fmt.Errorf("count after its Delete returned: %d, %v", left, cerr)
				}
			}
			out <- result{i, n, err, time.Since(start)}
		}()
	}
	for range callers {
		r := <-out
		if r.err != nil || r.n != each+each/10 {
			t.Errorf("caller %d: Delete = %d, %v; want %d", r.i, r.n, r.err, each+each/10)
		}
	}
	t.Logf("%d concurrent deletes of %d IDs each: %s", callers, each, time.Since(start))
	var mutations uint64
	if err := w.conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND table = ?", w.db, table).Scan(&mutations); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d callers, %d mutations", callers, mutations)
	if mutations == 0 || mutations >= callers {
		t.Errorf("%d mutations for %d concurrent callers: want at least one, and fewer than one each", mutations, callers)
	}
	if n, err := w.Count(ctx, table, "contact_id", kept...); err != nil || n != int64(len(kept)) {
		t.Errorf("rows of no caller: %d, %v; want %d", n, err, len(kept))
	}
}
