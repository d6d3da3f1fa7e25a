package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

func TestSQLiteWarehouseContract(t *testing.T) {
	storetest.TestWarehouse(t, func(t *testing.T) stores.Warehouse { return NewWarehouse(newTestDB(t)) })
}

func TestSQLiteWarehouseReservedTables(t *testing.T) {
	db := newTestDB(t)
	l := NewLedger(db)
	if _, err := l.VerifyChain(t.Context()); err != nil { // creates the ledger tables
		t.Fatal(err)
	}
	w := NewWarehouse(db)
	for _, table := range []string{"erasure_audit", "erasure_ledger_requests", "erasure_index_docs", "sqlite_master", "sqlite_sequence"} {
		if _, err := w.Delete(t.Context(), table, "request_id", "x"); !errors.Is(err, stores.ErrPermanent) {
			t.Errorf("Delete from %s: err = %v, want permanent", table, err)
		}
		if err := w.EnsureTable(t.Context(), table, []string{"x"}); !errors.Is(err, stores.ErrPermanent) {
			t.Errorf("EnsureTable(%s): err = %v, want permanent", table, err)
		}
	}
}

func TestSQLiteWarehouseEnsureTableAddsColumns(t *testing.T) {
	w := NewWarehouse(newTestDB(t))
	if err := w.EnsureTable(t.Context(), "etr", []string{"contact_id"}); err != nil {
		t.Fatal(err)
	}
	storetest.MustInsert(t, w, "etr", stores.Row{"contact_id": "c1"})
	if err := w.EnsureTable(t.Context(), "etr", []string{"contact_id", "agent_id"}); err != nil {
		t.Fatal(err)
	}
	storetest.MustInsert(t, w, "etr", stores.Row{"contact_id": "c2", "agent_id": "a1"})
	storetest.ExpectRowCount(t, w, "etr", "agent_id", "a1", 1)
	storetest.ExpectRowCount(t, w, "etr", "contact_id", "c1", 1)
	if err := w.EnsureTable(t.Context(), "etr", []string{"x", "x"}); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("duplicate columns: err = %v, want permanent", err)
	}
	if err := w.EnsureTable(t.Context(), "etr", nil); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("no columns: err = %v, want permanent", err)
	}
}

func TestSQLiteWarehouseValuesAreStoredAsText(t *testing.T) {
	w := NewWarehouse(newTestDB(t))
	if err := w.EnsureTable(t.Context(), "t", []string{"k", "v"}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	storetest.MustInsert(t, w, "t",
		stores.Row{"k": "int", "v": 42},
		stores.Row{"k": "bytes", "v": []byte("raw")},
		stores.Row{"k": "time", "v": at},
		stores.Row{"k": "nil", "v": nil})
	storetest.ExpectRowCount(t, w, "t", "v", "42", 1)
	storetest.ExpectRowCount(t, w, "t", "v", "raw", 1)
	storetest.ExpectRowCount(t, w, "t", "v", stores.FormatTime(at), 1)
	if err := w.Insert(t.Context(), "t", stores.Row{"k": "bad", "v": struct{}{}}); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("unsupported value: err = %v, want permanent", err)
	}
	if err := w.Insert(t.Context(), "t", stores.Row{}); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("empty row: err = %v, want permanent", err)
	}
}

func TestSQLiteWarehouseBatchMatchesBytesExactly(t *testing.T) {
	w := NewWarehouse(newTestDB(t))
	if err := w.EnsureTable(t.Context(), "t", []string{"row_id", "contact_id"}); err != nil {
		t.Fatal(err)
	}
	// Invalid UTF-8 is a value like any other here: it must not match the
	// replacement character that a JSON encoding would turn it into.
	storetest.MustInsert(t, w, "t",
		stores.Row{"row_id": "ff", "contact_id": "\xff"},
		stores.Row{"row_id": "fffd", "contact_id": "\ufffd"},
		stores.Row{"row_id": "nul", "contact_id": "a\x00b"},
		stores.Row{"row_id": "nul-other", "contact_id": "a\x00c"},
		stores.Row{"row_id": "a", "contact_id": "a"})
	// Past the first chunk, so the matches are bound in a later one.
	var batch []string
	for i := range 2 * sqliteBatch {
		batch = append(batch, fmt.Sprintf("filler-%04d", i))
	}
	batch = append(batch, "\xff", "a\x00b")
	if n, err := w.Count(t.Context(), "t", "contact_id", batch...); err != nil || n != 2 {
		t.Fatalf("Count = %d, %v; want 2", n, err)
	}
	if got, err := w.Distinct(t.Context(), "t", "row_id", "contact_id", batch...); err != nil || !slices.Equal(got, []string{"ff", "nul"}) {
		t.Fatalf("Distinct = %q, %v; want [ff nul]", got, err)
	}
	if n, err := w.Delete(t.Context(), "t", "contact_id", batch...); err != nil || n != 2 {
		t.Fatalf("Delete = %d, %v; want 2", n, err)
	}
	if got, want := loadRows(t, w.db, "t", "contact_id"), 3; len(got) != want || got["fffd"] == nil || got["nul-other"] == nil || got["a"] == nil {
		t.Fatalf("rows left: %v, want fffd, nul-other and a", got)
	}
}

// A batch is one transaction: when a later chunk fails, the rows an
// earlier one deleted come back.
func TestSQLiteWarehouseBatchDeleteIsAtomic(t *testing.T) {
	w := NewWarehouse(newTestDB(t))
	if err := w.EnsureTable(t.Context(), "t", []string{"row_id", "contact_id"}); err != nil {
		t.Fatal(err)
	}
	storetest.MustInsert(t, w, "t",
		stores.Row{"row_id": "first", "contact_id": "c-first"},
		stores.Row{"row_id": "refused", "contact_id": "c-refused"})
	if _, err := w.db.ExecContext(t.Context(), `CREATE TRIGGER refuse BEFORE DELETE ON t
		WHEN OLD.row_id = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END`); err != nil {
		t.Fatal(err)
	}
	batch := []string{"c-first"}
	for i := range 2 * sqliteBatch {
		batch = append(batch, fmt.Sprintf("c-%04d", i))
	}
	batch = append(batch, "c-refused")
	if _, err := w.Delete(t.Context(), "t", "contact_id", batch...); err == nil {
		t.Fatal("Delete past a refused row: want an error")
	}
	storetest.ExpectRowCount(t, w, "t", "contact_id", "c-first", 1)
}

// warehouseModel is the fuzz targets' picture of a table: row_id → column →
// value.
type warehouseModel map[string]map[string]string

func loadRows(t *testing.T, db *sql.DB, table string, cols ...string) warehouseModel {
	t.Helper()
	q := "SELECT row_id"
	for _, c := range cols {
		q += ", " + quoteIdent(c)
	}
	rows, err := db.QueryContext(t.Context(), q+" FROM "+quoteIdent(table))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := warehouseModel{}
	for rows.Next() {
		vals := make([]string, len(cols)+1)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		r := map[string]string{}
		for i, c := range cols {
			r[c] = vals[i+1]
		}
		m[vals[0]] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func FuzzSQLiteWarehouseDelete(f *testing.F) {
	for _, s := range []string{"%", "_", "*", "a*", "", "' OR 1=1 --", "a", "A", "x y", "3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5"} {
		f.Add("contact_id", s)
	}
	f.Add("contact_id OR 1=1", "a")
	f.Add("payload", "keep")
	f.Add(`contact_id" = "contact_id`, "x")
	db := newMemDB(f)
	w := NewWarehouse(db)
	cols := []string{"row_id", "contact_id", "payload"}
	if err := w.EnsureTable(f.Context(), "fuzz_rows", cols); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, column, value string) {
		ctx := t.Context()
		if _, err := db.ExecContext(ctx, `DELETE FROM fuzz_rows`); err != nil {
			t.Fatal(err)
		}
		var rows []stores.Row
		for i, v := range fuzzValues(value) {
			rows = append(rows, stores.Row{"row_id": fmt.Sprintf("r%02d", i), "contact_id": v, "payload": "keep"})
		}
		storetest.MustInsert(t, w, "fuzz_rows", rows...)
		before := loadRows(t, db, "fuzz_rows", cols...)

		n, err := w.Delete(ctx, "fuzz_rows", column, value)
		after := loadRows(t, db, "fuzz_rows", cols...)
		if err != nil {
			if !errors.Is(err, stores.ErrPermanent) {
				t.Fatalf("Delete(%q, %q): unclassified error %v", column, value, err)
			}
			if len(after) != len(before) {
				t.Fatalf("Delete(%q, %q) failed but removed %d rows", column, value, len(before)-len(after))
			}
			return
		}
		var want int64
		for id, r := range before {
			v, known := r[column]
			match := known && v == value
			a, kept := after[id]
			switch {
			case match:
				want++
				if kept {
					t.Errorf("row %s (%s=%q) survived Delete(%q)", id, column, v, value)
				}
			case !kept:
				t.Errorf("Delete(%s=%q) removed row %s whose %s is %q", column, value, id, column, v)
			case fmt.Sprint(a) != fmt.Sprint(r):
				t.Errorf("row %s changed: %v, was %v", id, a, r)
			}
		}
		if n != want {
			t.Errorf("Delete(%q, %q) = %d, want %d", column, value, n, want)
		}
	})
}

// FuzzSQLiteWarehouseBatch checks Count, Distinct and Delete over two
// values against a model: the rows whose contact_id equals either.
func FuzzSQLiteWarehouseBatch(f *testing.F) {
	for _, s := range [][2]string{{"a", "ab"}, {"a", "a"}, {"%", "_"}, {"a*", "A"}, {"", "a"}, {"x y", "\x00"}, {"\xff", "\ufffd"}} {
		f.Add(s[0], s[1])
	}
	db := newMemDB(f)
	w := NewWarehouse(db)
	cols := []string{"row_id", "contact_id", "payload"}
	if err := w.EnsureTable(f.Context(), "fuzz_rows", cols); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		ctx := t.Context()
		if _, err := db.ExecContext(ctx, `DELETE FROM fuzz_rows`); err != nil {
			t.Fatal(err)
		}
		var rows []stores.Row
		for i, v := range append(fuzzValues(v1), fuzzValues(v2)...) {
			rows = append(rows, stores.Row{"row_id": fmt.Sprintf("r%02d", i), "contact_id": v, "payload": fmt.Sprintf("p%02d", i%4)})
		}
		storetest.MustInsert(t, w, "fuzz_rows", rows...)
		before := loadRows(t, db, "fuzz_rows", cols...)
		var want int64
		payloads := map[string]bool{}
		for _, r := range before {
			if r["contact_id"] == v1 || r["contact_id"] == v2 {
				want++
				payloads[r["payload"]] = true
			}
		}
		refused := v1 == "" || v2 == ""

		n, err := w.Count(ctx, "fuzz_rows", "contact_id", v1, v2)
		if refused != errors.Is(err, stores.ErrPermanent) || (err == nil && n != want) {
			t.Fatalf("Count(%q, %q) = %d, %v; want %d (refused: %v)", v1, v2, n, err, want, refused)
		}
		got, err := w.Distinct(ctx, "fuzz_rows", "payload", "contact_id", v1, v2)
		if refused != errors.Is(err, stores.ErrPermanent) || (err == nil && !slices.Equal(got, slices.Sorted(maps.Keys(payloads)))) {
			t.Fatalf("Distinct(%q, %q) = %q, %v; want %d payloads (refused: %v)", v1, v2, got, err, len(payloads), refused)
		}
		n, err = w.Delete(ctx, "fuzz_rows", "contact_id", v1, v2)
		if refused != errors.Is(err, stores.ErrPermanent) || (err == nil && n != want) {
			t.Fatalf("Delete(%q, %q) = %d, %v; want %d (refused: %v)", v1, v2, n, err, want, refused)
		}
		after := loadRows(t, db, "fuzz_rows", cols...)
		for id, r := range before {
			match := !refused && (r["contact_id"] == v1 || r["contact_id"] == v2)
			a, kept := after[id]
			switch {
			case match && kept:
				t.Errorf("row %s (%q) survived Delete(%q, %q)", id, r["contact_id"], v1, v2)
			case !match && !kept:
				t.Errorf("Delete(%q, %q) removed row %s (%q)", v1, v2, id, r["contact_id"])
			case kept && fmt.Sprint(a) != fmt.Sprint(r):
				t.Errorf("row %s changed: %v, was %v", id, a, r)
			}
		}
	})
}

func FuzzSQLiteWarehouseDeleteOrphans(f *testing.F) {
	for _, s := range []string{"%", "_", "*", "t-%", "t-_", "", "' OR 1=1 --", "t-only", "t-shared", "T-ONLY"} {
		f.Add(s)
	}
	db := newMemDB(f)
	w := NewWarehouse(db)
	if err := w.EnsureTable(f.Context(), "fuzz_threads", []string{"row_id", "thread_id"}); err != nil {
		f.Fatal(err)
	}
	if err := w.EnsureTable(f.Context(), "fuzz_messages", []string{"row_id", "thread_id"}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		ctx := t.Context()
		for _, tbl := range []string{"fuzz_threads", "fuzz_messages"} {
			if _, err := db.ExecContext(ctx, `DELETE FROM `+tbl); err != nil {
				t.Fatal(err)
			}
		}
		threads := []string{"t-only", "t-shared", "t-%", "t-_", "%"}
		if key != "" {
			threads = append(threads, key, key+"x", "x"+key)
		}
		var rows []stores.Row
		for i, th := range threads {
			rows = append(rows, stores.Row{"row_id": fmt.Sprintf("p%02d", i), "thread_id": th})
		}
		storetest.MustInsert(t, w, "fuzz_threads", rows...)
		// Every other thread is still referenced.
		referenced := map[string]bool{}
		var msgs []stores.Row
		for i, th := range threads {
			if i%2 == 1 {
				referenced[th] = true
				msgs = append(msgs, stores.Row{"row_id": fmt.Sprintf("m%02d", i), "thread_id": th})
			}
		}
		storetest.MustInsert(t, w, "fuzz_messages", msgs...)
		before := loadRows(t, db, "fuzz_threads", "thread_id")

		n, err := w.DeleteOrphans(ctx, "fuzz_threads", "fuzz_messages", "thread_id", []string{key})
		after := loadRows(t, db, "fuzz_threads", "thread_id")
		if err != nil {
			if !errors.Is(err, stores.ErrPermanent) || len(after) != len(before) {
				t.Fatalf("DeleteOrphans(%q) = %v with %d rows removed", key, err, len(before)-len(after))
			}
			return
		}
		var want int64
		for id, r := range before {
			th := r["thread_id"]
			_, kept := after[id]
			if th == key && !referenced[th] {
				want++
				if kept {
					t.Errorf("orphan %q survived", th)
				}
			} else if !kept {
				t.Errorf("DeleteOrphans(%q) removed thread %q", key, th)
			}
		}
		if n != want {
			t.Errorf("DeleteOrphans(%q) = %d, want %d", key, n, want)
		}
	})
}

func TestSQLiteWarehouseDeleteOrphansIgnoresEmptyKeys(t *testing.T) {
	w := NewWarehouse(newTestDB(t))
	for _, tbl := range []string{"threads", "messages"} {
		if err := w.EnsureTable(t.Context(), tbl, []string{"thread_id"}); err != nil {
			t.Fatal(err)
		}
	}
	storetest.MustInsert(t, w, "threads", stores.Row{"thread_id": ""}, stores.Row{"thread_id": "t1"})
	n, err := w.DeleteOrphans(t.Context(), "threads", "messages", "thread_id", []string{"", "t1", "t1"})
	if err != nil || n != 1 {
		t.Fatalf("DeleteOrphans = %d, %v; want 1 (t1 only), nil", n, err)
	}
	storetest.ExpectRowCount(t, w, "threads", "thread_id", "t1", 0)
	var left int
	if err := w.db.QueryRowContext(t.Context(), `SELECT count(*) FROM threads WHERE thread_id = ''`).Scan(&left); err != nil || left != 1 {
		t.Fatalf("rows with an empty key = %d, %v; want 1 (untouched)", left, err)
	}
}
