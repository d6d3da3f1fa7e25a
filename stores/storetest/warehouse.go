package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// TestWarehouse checks a Warehouse implementation through the
// interface only. newWarehouse returns a ready store; every subtest creates
// its own freshly named tables.
func TestWarehouse(t *testing.T, newWarehouse func(t *testing.T) stores.Warehouse) {
	cols := []string{"row_id", "contact_id", "payload"}

	t.Run("EnsureTableIsIdempotent", func(t *testing.T) {
		w, table := newWarehouse(t), UniqueName("wh")
		for range 2 {
			if err := w.EnsureTable(t.Context(), table, cols); err != nil {
				t.Fatalf("EnsureTable: %v", err)
			}
		}
	})

	t.Run("CountDeleteVerify", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		target, other := NewUUID(), NewUUID()
		MustInsert(t, w, table,
			stores.Row{"row_id": "r1", "contact_id": target, "payload": "p1"},
			stores.Row{"row_id": "r2", "contact_id": target, "payload": "p2"},
			stores.Row{"row_id": "r3", "contact_id": other, "payload": "p3 ünïcödé 'quoted' %_*"})
		before := snapshotRows(t, w, table, "r3")
		ExpectRowCount(t, w, table, "contact_id", target, 2)
		if n, err := w.Delete(t.Context(), table, "contact_id", target); err != nil || n != 2 {
			t.Fatalf("Delete = %d, %v; want 2, nil", n, err)
		}
		ExpectRowCount(t, w, table, "contact_id", target, 0)
		ExpectRowCount(t, w, table, "contact_id", other, 1)
		expectRowsUnchanged(t, w, table, before)
	})

	t.Run("ValuesRoundTripExactly", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		id := NewUUID()
		payloads := []string{"it's", `back\slash`, "line\nbreak\ttab", "ünïcödé 😀", "''", `\'`, "[1, 'x']", "NULL", ""}
		var rows []stores.Row
		for i, p := range payloads {
			rows = append(rows, stores.Row{"row_id": fmt.Sprintf("r%d", i), "contact_id": id, "payload": p})
		}
		rows = append(rows, stores.Row{"row_id": "null", "contact_id": id, "payload": nil})
		MustInsert(t, w, table, rows...)
		for i, p := range payloads {
			got, err := w.Distinct(t.Context(), table, "payload", "row_id", fmt.Sprintf("r%d", i))
			if err != nil || !slices.Equal(got, []string{p}) {
				t.Errorf("payload of r%d = %q, %v; want %q", i, got, err, p)
			}
		}
		ExpectRowCount(t, w, table, "row_id", "null", 1)
		ExpectRowCount(t, w, table, "contact_id", id, int64(len(rows)))
	})

	t.Run("DeletingWhatIsGoneSucceedsWithZero", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		id := NewUUID()
		MustInsert(t, w, table, stores.Row{"row_id": "r1", "contact_id": id, "payload": "p"})
		for i, want := range []int64{1, 0, 0} {
			if n, err := w.Delete(t.Context(), table, "contact_id", id); err != nil || n != want {
				t.Fatalf("Delete #%d = %d, %v; want %d, nil", i+1, n, err, want)
			}
		}
	})

	t.Run("NoValueWidensADelete", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		id := "3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f"
		MustInsert(t, w, table,
			stores.Row{"row_id": "r1", "contact_id": id, "payload": ""},
			stores.Row{"row_id": "r2", "contact_id": "a", "payload": "ab"},
			stores.Row{"row_id": "r3", "contact_id": "ab", "payload": "A"})
		before := snapshotRows(t, w, table, "r1", "r2", "r3")
		for _, v := range hostileValues(id) {
			for _, col := range []string{"contact_id", "payload", "row_id"} {
				if n, err := w.Count(t.Context(), table, col, v); err == nil && n != 0 {
					t.Errorf("Count(%s, %q) = %d, want 0 or an error", col, v, n)
				}
				if n, err := w.Delete(t.Context(), table, col, v); err == nil && n != 0 {
					t.Errorf("Delete(%s, %q) = %d, want 0 or an error", col, v, n)
				}
			}
		}
		expectRowsUnchanged(t, w, table, before)
	})

	t.Run("SpecialCharactersMatchLiterally", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		MustInsert(t, w, table,
			stores.Row{"row_id": "r1", "contact_id": "a%"},
			stores.Row{"row_id": "r2", "contact_id": "a_"},
			stores.Row{"row_id": "r3", "contact_id": "a*"},
			stores.Row{"row_id": "r4", "contact_id": "ab"},
			stores.Row{"row_id": "r5", "contact_id": "a'"})
		before := snapshotRows(t, w, table, "r4")
		for _, v := range []string{"a%", "a_", "a*", "a'"} {
			if n, err := w.Delete(t.Context(), table, "contact_id", v); err != nil || n != 1 {
				t.Errorf("Delete(%q) = %d, %v; want 1, nil", v, n, err)
			}
		}
		expectRowsUnchanged(t, w, table, before)
	})

	t.Run("BadIdentifiersArePermanentErrors", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		id := NewUUID()
		MustInsert(t, w, table, stores.Row{"row_id": "r1", "contact_id": id, "payload": "p"})
		for _, bad := range []string{"", "Contact_ID", "contact_id; DROP TABLE x", `contact_id"`, "contact id", "1col", "a-b", "*"} {
			checks := map[string]error{}
			_, checks["Count(column)"] = w.Count(t.Context(), table, bad, id)
			_, checks["Delete(column)"] = w.Delete(t.Context(), table, bad, id)
			_, checks["Delete(table)"] = w.Delete(t.Context(), bad, "contact_id", id)
			_, checks["Distinct(column)"] = w.Distinct(t.Context(), table, bad, "contact_id", id)
			_, checks["Distinct(match)"] = w.Distinct(t.Context(), table, "payload", bad, id)
			_, checks["DeleteOrphans(key)"] = w.DeleteOrphans(t.Context(), table, table, bad, []string{id})
			checks["EnsureTable(table)"] = w.EnsureTable(t.Context(), bad, cols)
			checks["EnsureTable(column)"] = w.EnsureTable(t.Context(), table, []string{bad})
			checks["Insert(column)"] = w.Insert(t.Context(), table, stores.Row{bad: "x"})
			for name, err := range checks {
				if !errors.Is(err, stores.ErrPermanent) {
					t.Errorf("%s with %q: err = %v, want a permanent error", name, bad, err)
				}
			}
		}
		ExpectRowCount(t, w, table, "contact_id", id, 1)
	})

	t.Run("DeletePast1000Rows", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		target := NewUUID()
		rows := make([]stores.Row, 0, 1050)
		for i := range 1050 {
			rows = append(rows, stores.Row{"row_id": fmt.Sprintf("t%05d", i), "contact_id": target, "payload": "x"})
		}
		MustInsert(t, w, table, rows...)
		MustInsert(t, w, table, stores.Row{"row_id": "keep", "contact_id": NewUUID(), "payload": "keep me"})
		before := snapshotRows(t, w, table, "keep")
		ExpectRowCount(t, w, table, "contact_id", target, 1050)
		if n, err := w.Delete(t.Context(), table, "contact_id", target); err != nil || n != 1050 {
			t.Fatalf("Delete = %d, %v; want 1050, nil", n, err)
		}
		ExpectRowCount(t, w, table, "contact_id", target, 0)
		expectRowsUnchanged(t, w, table, before)
	})

	t.Run("DeleteOrphansKeepsReferencedParents", func(t *testing.T) {
		w := newWarehouse(t)
		threads, messages := UniqueName("threads"), UniqueName("messages")
		if err := w.EnsureTable(t.Context(), threads, []string{"thread_id", "subject"}); err != nil {
			t.Fatal(err)
		}
		if err := w.EnsureTable(t.Context(), messages, []string{"thread_id", "contact_id", "body"}); err != nil {
			t.Fatal(err)
		}
		gone, stays := NewUUID(), NewUUID()
		MustInsert(t, w, threads,
			stores.Row{"thread_id": "t-shared", "subject": "s1"}, // gone's and stays' thread
			stores.Row{"thread_id": "t-only", "subject": "s2"},   // only gone's thread
			stores.Row{"thread_id": "t-other", "subject": "s3"},  // unreferenced, but not asked about
			stores.Row{"thread_id": "t-%", "subject": "s4"})      // unreferenced, not asked about; "%" must stay literal
		MustInsert(t, w, messages,
			stores.Row{"thread_id": "t-shared", "contact_id": gone, "body": "b1"},
			stores.Row{"thread_id": "t-shared", "contact_id": stays, "body": "b2"},
			stores.Row{"thread_id": "t-only", "contact_id": gone, "body": "b3"})

		keys, err := w.Distinct(t.Context(), messages, "thread_id", "contact_id", gone)
		if err != nil || !slices.Equal(keys, []string{"t-only", "t-shared"}) {
			t.Fatalf("Distinct = %q, %v; want [t-only t-shared]", keys, err)
		}
		if n, err := w.Delete(t.Context(), messages, "contact_id", gone); err != nil || n != 2 {
			t.Fatalf("Delete messages = %d, %v; want 2, nil", n, err)
		}
		n, err := w.DeleteOrphans(t.Context(), threads, messages, "thread_id", append(keys, "t-", "t-_", "%", "t-o"))
		if err != nil || n != 1 {
			t.Fatalf("DeleteOrphans = %d, %v; want 1, nil", n, err)
		}
		ExpectRowCount(t, w, threads, "thread_id", "t-only", 0)
		for _, k := range []string{"t-shared", "t-other", "t-%"} {
			ExpectRowCount(t, w, threads, "thread_id", k, 1)
		}
		ExpectRowCount(t, w, messages, "contact_id", stays, 1)
		if n, err := w.DeleteOrphans(t.Context(), threads, messages, "thread_id", keys); err != nil || n != 0 {
			t.Fatalf("DeleteOrphans again = %d, %v; want 0, nil", n, err)
		}
		if n, err := w.DeleteOrphans(t.Context(), threads, messages, "thread_id", nil); err != nil || n != 0 {
			t.Fatalf("DeleteOrphans with no keys = %d, %v; want 0, nil", n, err)
		}
	})

	t.Run("Distinct", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		id := NewUUID()
		MustInsert(t, w, table,
			stores.Row{"row_id": "r1", "contact_id": id, "payload": "y"},
			stores.Row{"row_id": "r2", "contact_id": id, "payload": "x"},
			stores.Row{"row_id": "r3", "contact_id": id, "payload": "y"},
			stores.Row{"row_id": "r4", "contact_id": NewUUID(), "payload": "z"})
		got, err := w.Distinct(t.Context(), table, "payload", "contact_id", id)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, []string{"x", "y"}) {
			t.Fatalf("Distinct = %q, %v; want [x y]", got, err)
		}
		got, err = w.Distinct(t.Context(), table, "payload", "contact_id", NewUUID())
		if err != nil || len(got) != 0 {
			t.Fatalf("Distinct for an unknown contact = %q, %v; want nothing", got, err)
		}
	})

	t.Run("MissingTableIsAnError", func(t *testing.T) {
		// A misspelt table in the data map must fail the step, not verify
		// as "nothing left".
		w, table := newWarehouse(t), UniqueName("missing")
		if _, err := w.Count(t.Context(), table, "contact_id", NewUUID()); err == nil {
			t.Error("Count on a missing table: want an error")
		}
		if _, err := w.Delete(t.Context(), table, "contact_id", NewUUID()); err == nil {
			t.Error("Delete on a missing table: want an error")
		}
	})

	t.Run("Batch", func(t *testing.T) { testWarehouseBatch(t, newWarehouse, cols) })
	t.Run("Inspection", func(t *testing.T) { testWarehouseInspection(t, newWarehouse, cols) })
}

// testWarehouseBatch checks Count, Delete and Distinct over several values:
// they count, delete and read the union of the rows each value matches, each
// row once, and nothing else.
func testWarehouseBatch(t *testing.T, newWarehouse func(t *testing.T) stores.Warehouse, cols []string) {
	t.Run("CountDeleteDistinctTheUnion", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		a, b, c, other := NewUUID(), NewUUID(), NewUUID(), NewUUID()
		MustInsert(t, w, table,
			stores.Row{"row_id": "a-1", "contact_id": a, "payload": "thread-1"},
			stores.Row{"row_id": "a-2", "contact_id": a, "payload": "thread-2"},
			stores.Row{"row_id": "b-1", "contact_id": b, "payload": "thread-2"},
			stores.Row{"row_id": "c-1", "contact_id": c, "payload": "thread-3"},
			stores.Row{"row_id": "other", "contact_id": other, "payload": a})
		keep := []string{"other"}
		var near []stores.Row
		for i, target := range []string{a, b, c} {
			for j, v := range nearMisses(target) {
				id := fmt.Sprintf("near-%d-%02d", i, j)
				near = append(near, stores.Row{"row_id": id, "contact_id": v, "payload": "thread-9"})
				keep = append(keep, id)
			}
		}
		MustInsert(t, w, table, near...)
		before := snapshotRows(t, w, table, keep...)
		// A value matching nothing and repeated values change nothing: the
		// per-value counts add up to 7, the rows are 4.
		batch := []string{a, NewUUID(), b, a, c, b}
		expectRowCountOf(t, w, table, "contact_id", batch, 4)
		expectDistinct(t, w, table, "payload", "contact_id", batch, "thread-1", "thread-2", "thread-3")
		expectDistinct(t, w, table, "row_id", "contact_id", batch, "a-1", "a-2", "b-1", "c-1")
		if n, err := w.Delete(t.Context(), table, "contact_id", batch...); err != nil || n != 4 {
			t.Fatalf("Delete(%d values) = %d, %v; want 4, nil", len(batch), n, err)
		}
		expectRowCountOf(t, w, table, "contact_id", batch, 0)
		expectDistinct(t, w, table, "payload", "contact_id", batch)
		expectRowsUnchanged(t, w, table, before)
		if n, err := w.Delete(t.Context(), table, "contact_id", batch...); err != nil || n != 0 {
			t.Fatalf("Delete again = %d, %v; want 0, nil", n, err)
		}
	})

	t.Run("HostileValuesWidenNothing", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		id := "3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f"
		MustInsert(t, w, table,
			stores.Row{"row_id": "r1", "contact_id": id, "payload": ""},
			stores.Row{"row_id": "r2", "contact_id": "a", "payload": "ab"},
			stores.Row{"row_id": "r3", "contact_id": "ab", "payload": "A"})
		before := snapshotRows(t, w, table, "r1", "r2", "r3")
		batch := slices.DeleteFunc(hostileValues(id), func(v string) bool { return v == "" })
		for _, col := range []string{"contact_id", "payload", "row_id"} {
			if n, err := w.Count(t.Context(), table, col, batch...); err == nil && n != 0 {
				t.Errorf("Count(%s, %d hostile values) = %d, want 0 or an error", col, len(batch), n)
			}
			if got, err := w.Distinct(t.Context(), table, "row_id", col, batch...); err == nil && len(got) != 0 {
				t.Errorf("Distinct(row_id, %s, %d hostile values) = %q, want nothing or an error", col, len(batch), got)
			}
			if n, err := w.Delete(t.Context(), table, col, batch...); err == nil && n != 0 {
				t.Errorf("Delete(%s, %d hostile values) = %d, want 0 or an error", col, len(batch), n)
			}
		}
		expectRowsUnchanged(t, w, table, before)
	})

	t.Run("Past1000Values", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		const n = 2500
		values := make([]string, n)
		rows := make([]stores.Row, 0, n+n/100+3)
		var threads []string
		for i := range values {
			values[i] = fmt.Sprintf("contact-%05d", i)
			// Neighbours share a thread, across any boundary between pieces
			// of the batch at an even position.
			thread := fmt.Sprintf("thread-%04d", (i+1)/2)
			if len(threads) == 0 || threads[len(threads)-1] != thread {
				threads = append(threads, thread)
			}
			rows = append(rows, stores.Row{"row_id": fmt.Sprintf("r%05d", i), "contact_id": values[i], "payload": thread})
		}
		for i := 0; i < n; i += 100 {
			rows = append(rows, stores.Row{"row_id": fmt.Sprintf("r%05d-b", i), "contact_id": values[i], "payload": "thread-0000"})
		}
		keep := []string{"keep-past-end", "keep-prefix", "keep-other"}
		rows = append(rows,
			stores.Row{"row_id": keep[0], "contact_id": fmt.Sprintf("contact-%05d", n), "payload": "k"},
			stores.Row{"row_id": keep[1], "contact_id": "contact-0000", "payload": "k"},
			stores.Row{"row_id": keep[2], "contact_id": NewUUID(), "payload": "k"})
		MustInsert(t, w, table, rows...)
		before := snapshotRows(t, w, table, keep...)
		// Repeats that land in other pieces than their first occurrence.
		batch := append(slices.Clone(values), values[:300]...)
		want := int64(n + n/100)
		expectRowCountOf(t, w, table, "contact_id", batch, want)
		expectDistinct(t, w, table, "payload", "contact_id", batch, threads...)
		if got, err := w.Delete(t.Context(), table, "contact_id", batch...); err != nil || got != want {
			t.Fatalf("Delete(%d values) = %d, %v; want %d, nil", len(batch), got, err, want)
		}
		expectRowCountOf(t, w, table, "contact_id", batch, 0)
		expectRowsUnchanged(t, w, table, before)
	})

	t.Run("EmptyBatchOrEmptyValueIsPermanentAndDeletesNothing", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		targets := []string{NewUUID(), NewUUID(), NewUUID()}
		for i, id := range targets {
			MustInsert(t, w, table, stores.Row{"row_id": fmt.Sprintf("r%d", i), "contact_id": id, "payload": "p"})
		}
		before := snapshotRows(t, w, table, "r0", "r1", "r2")
		// The empty value comes after more values than a store takes in one
		// piece, so a store checking piece by piece would delete first.
		long := slices.Clone(targets)
		for len(long) < 1100 {
			long = append(long, NewUUID())
		}
		for name, batch := range map[string][]string{
			"no values":            nil,
			"an empty value":       {""},
			"an empty value too":   {targets[0], ""},
			"an empty value last":  append(slices.Clone(long), ""),
			"an empty value first": append([]string{""}, long...),
		} {
			n, err := w.Count(t.Context(), table, "contact_id", batch...)
			if !errors.Is(err, stores.ErrPermanent) || n != 0 {
				t.Errorf("Count with %s = %d, %v; want 0 and a permanent error", name, n, err)
			}
			got, err := w.Distinct(t.Context(), table, "payload", "contact_id", batch...)
			if !errors.Is(err, stores.ErrPermanent) || len(got) != 0 {
				t.Errorf("Distinct with %s = %q, %v; want nothing and a permanent error", name, got, err)
			}
			n, err = w.Delete(t.Context(), table, "contact_id", batch...)
			if !errors.Is(err, stores.ErrPermanent) || n != 0 {
				t.Errorf("Delete with %s = %d, %v; want 0 and a permanent error", name, n, err)
			}
		}
		expectRowsUnchanged(t, w, table, before)
		expectRowCountOf(t, w, table, "contact_id", targets, 3)
	})
}

func setupTable(t *testing.T, newWarehouse func(t *testing.T) stores.Warehouse, cols []string) (stores.Warehouse, string) {
	t.Helper()
	w, table := newWarehouse(t), UniqueName("wh")
	if err := w.EnsureTable(t.Context(), table, cols); err != nil {
		t.Fatalf("EnsureTable: %v", err)
	}
	return w, table
}

func MustInsert(t *testing.T, w stores.Warehouse, table string, rows ...stores.Row) {
	t.Helper()
	if err := w.Insert(t.Context(), table, rows...); err != nil {
		t.Fatalf("Insert: %v", err)
	}
}

func ExpectRowCount(t *testing.T, w stores.Warehouse, table, column, value string, want int64) {
	t.Helper()
	n, err := w.Count(t.Context(), table, column, value)
	if err != nil || n != want {
		t.Fatalf("Count(%s=%q) = %d, %v; want %d, nil", column, value, n, err, want)
	}
}

// expectRowCountOf checks the count of rows matching any of values.
func expectRowCountOf(t *testing.T, w stores.Warehouse, table, column string, values []string, want int64) {
	t.Helper()
	n, err := w.Count(t.Context(), table, column, values...)
	if err != nil || n != want {
		t.Fatalf("Count(%s, %d values) = %d, %v; want %d, nil", column, len(values), n, err, want)
	}
}

// expectDistinct checks Distinct over a batch, in any order.
func expectDistinct(t *testing.T, w stores.Warehouse, table, column, matchColumn string, values []string, want ...string) {
	t.Helper()
	got, err := w.Distinct(t.Context(), table, column, matchColumn, values...)
	if err != nil {
		t.Fatalf("Distinct(%s, %s, %d values): %v", column, matchColumn, len(values), err)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("Distinct(%s, %s, %d values) = %d values %q…, want %d %q…", column, matchColumn, len(values),
			len(got), got[:min(len(got), 5)], len(want), want[:min(len(want), 5)])
	}
}

// snapshotRows reads back each row (by row_id) through the interface: its
// contact_id and payload.
func snapshotRows(t *testing.T, w stores.Warehouse, table string, rowIDs ...string) map[string][2][]string {
	t.Helper()
	snap := map[string][2][]string{}
	for _, id := range rowIDs {
		var s [2][]string
		for i, col := range []string{"contact_id", "payload"} {
			v, err := w.Distinct(t.Context(), table, col, "row_id", id)
			if err != nil {
				t.Fatalf("Distinct(%s of %s): %v", col, id, err)
			}
			if len(v) == 0 {
				v = nil
			}
			s[i] = v
		}
		snap[id] = s
	}
	return snap
}

func expectRowsUnchanged(t *testing.T, w stores.Warehouse, table string, before map[string][2][]string) {
	t.Helper()
	for id, want := range before {
		got := snapshotRows(t, w, table, id)[id]
		if !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
			t.Errorf("row %s changed: %q, want %q", id, got, want)
		}
		if n, err := w.Count(t.Context(), table, "row_id", id); err != nil || n != 1 {
			t.Errorf("row %s: count %d, %v; want 1 (untouched)", id, n, err)
		}
	}
}
