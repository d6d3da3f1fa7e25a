package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// A data map that names a store location wrongly (a misspelt index, field,
// table, column or bucket) must fail loudly, at start-up through the
// Require methods and at query time through the queries themselves: a
// count of 0 would let a deletion "succeed" with the data still there.

func expectPermanent(t *testing.T, what string, err error, mentions ...string) {
	t.Helper()
	if !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("%s: err = %v, want a permanent error", what, err)
		return
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s: error %q does not name %q", what, err, m)
		}
	}
}

func testIndexInspection(t *testing.T, newIndex func(t *testing.T) stores.Index) {
	t.Run("RequireField", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		MustPutDocs(t, ix, index, stores.Doc{ID: NewUUID(), Fields: map[string]any{"contact_id": NewUUID(), "segment": 1}})
		for _, field := range []string{"_id", "contact_id", "segment"} {
			if err := ix.RequireField(t.Context(), index, field); err != nil {
				t.Errorf("RequireField(%s): %v", field, err)
			}
		}
		expectPermanent(t, "RequireField of a field no document has", ix.RequireField(t.Context(), index, "contatc_id"), "contatc_id")
		expectPermanent(t, "RequireField with a malformed field", ix.RequireField(t.Context(), index, "contact id"))
		missing := UniqueName("missing")
		expectPermanent(t, "RequireField(_id) of a missing index", ix.RequireField(t.Context(), missing, "_id"), missing)
		expectPermanent(t, "RequireField of a missing index", ix.RequireField(t.Context(), missing, "contact_id"), missing)
	})

	t.Run("UnknownFieldIsAnErrorNotZero", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		id := NewUUID()
		MustPutDocs(t, ix, index, stores.Doc{ID: "ctr-1", Fields: map[string]any{"contact_id": id}})
		before := snapshotDocs(t, ix, index, "ctr-1")
		n, err := ix.Count(t.Context(), index, "contatc_id", id)
		expectPermanent(t, "Count on a field no document has", err)
		if n != 0 {
			t.Errorf("Count on a field no document has = %d", n)
		}
		_, err = ix.DeleteTerm(t.Context(), index, "contatc_id", id)
		expectPermanent(t, "DeleteTerm on a field no document has", err)
		expectDocsUnchanged(t, ix, index, before)
		ExpectIndexCount(t, ix, index, "contact_id", id, 1)
	})

	t.Run("EmptyIndexKnowsNoFieldYet", func(t *testing.T) {
		// A new deployment's index may hold nothing yet; nothing can be
		// missed there, so any well-formed field is accepted.
		ix, index := setupIndex(t, newIndex)
		if err := ix.RequireField(t.Context(), index, "contact_id"); err != nil {
			t.Errorf("RequireField on an empty index: %v", err)
		}
		ExpectIndexCount(t, ix, index, "contact_id", NewUUID(), 0)
	})

	t.Run("FieldStaysKnownAfterItsDocumentsGo", func(t *testing.T) {
		// The verification after a delete counts a field that the last
		// document having it has just lost; that is 0, not an error.
		ix, index := setupIndex(t, newIndex)
		id, other := NewUUID(), NewUUID()
		MustPutDocs(t, ix, index,
			stores.Doc{ID: "ctr-1", Fields: map[string]any{"contact_id": id}},
			stores.Doc{ID: "by-id", Fields: map[string]any{"queue": "q1"}},
			stores.Doc{ID: "keep", Fields: map[string]any{"agent": other}})
		if n, err := ix.DeleteTerm(t.Context(), index, "contact_id", id); err != nil || n != 1 {
			t.Fatalf("DeleteTerm = %d, %v; want 1, nil", n, err)
		}
		ExpectIndexCount(t, ix, index, "contact_id", id, 0)
		if n, err := ix.DeleteIDs(t.Context(), index, "by-id"); err != nil || n != 1 {
			t.Fatalf("DeleteIDs = %d, %v; want 1, nil", n, err)
		}
		ExpectIndexCount(t, ix, index, "queue", "q1", 0)
		for _, field := range []string{"contact_id", "queue"} {
			if err := ix.RequireField(t.Context(), index, field); err != nil {
				t.Errorf("RequireField(%s) after its documents went: %v", field, err)
			}
		}
	})
}

func testObjectsInspection(t *testing.T, newObjects func(t *testing.T) stores.Objects) {
	o, bucket := setupBucket(t, newObjects)
	if err := o.RequireBucket(t.Context(), bucket); err != nil {
		t.Errorf("RequireBucket of an existing bucket: %v", err)
	}
	missing := uniqueBucket()
	expectPermanent(t, "RequireBucket of a missing bucket", o.RequireBucket(t.Context(), missing), missing)
	expectPermanent(t, "RequireBucket with a malformed name", o.RequireBucket(t.Context(), "Not_A_Bucket"))
}

func testWarehouseInspection(t *testing.T, newWarehouse func(t *testing.T) stores.Warehouse, cols []string) {
	t.Run("RequireColumns", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		if err := w.RequireColumns(t.Context(), table, cols...); err != nil {
			t.Errorf("RequireColumns of every column: %v", err)
		}
		if err := w.RequireColumns(t.Context(), table); err != nil {
			t.Errorf("RequireColumns of the table alone: %v", err)
		}
		expectPermanent(t, "RequireColumns with a missing column",
			w.RequireColumns(t.Context(), table, "contact_id", "contatc_id"), table, "contatc_id")
		expectPermanent(t, "RequireColumns with a malformed column", w.RequireColumns(t.Context(), table, "contact id"))
		missing := UniqueName("missing")
		expectPermanent(t, "RequireColumns of a missing table", w.RequireColumns(t.Context(), missing, "contact_id"), missing)
	})

	t.Run("UnknownColumnIsAnErrorNotZero", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		id := NewUUID()
		MustInsert(t, w, table,
			stores.Row{"row_id": "r1", "contact_id": id, "payload": "p"},
			stores.Row{"row_id": "r2", "contact_id": NewUUID(), "payload": "q"})
		before := snapshotRows(t, w, table, "r1", "r2")
		// The value equal to the name is the worst case: an unknown name
		// read as a string literal would match every row.
		for _, v := range []string{id, "contatc_id"} {
			checks := map[string]error{}
			_, checks["Count"] = w.Count(t.Context(), table, "contatc_id", v)
			_, checks["Delete"] = w.Delete(t.Context(), table, "contatc_id", v)
			_, checks["Distinct(match)"] = w.Distinct(t.Context(), table, "payload", "contatc_id", v)
			_, checks["Distinct(column)"] = w.Distinct(t.Context(), table, "contatc_id", "contact_id", id)
			_, checks["DeleteOrphans(key)"] = w.DeleteOrphans(t.Context(), table, table, "contatc_id", []string{v})
			for name, err := range checks {
				expectPermanent(t, name+" with an unknown column", err)
			}
		}
		expectRowsUnchanged(t, w, table, before)
	})

	t.Run("ColumnAddedLaterIsFound", func(t *testing.T) {
		w, table := setupTable(t, newWarehouse, cols)
		ExpectRowCount(t, w, table, "contact_id", NewUUID(), 0)
		if err := w.EnsureTable(t.Context(), table, append(slices.Clone(cols), "added_id")); err != nil {
			t.Fatalf("EnsureTable with a new column: %v", err)
		}
		MustInsert(t, w, table, stores.Row{"row_id": "r1", "contact_id": NewUUID(), "added_id": "a1"})
		ExpectRowCount(t, w, table, "added_id", "a1", 1)
		if err := w.RequireColumns(t.Context(), table, "added_id"); err != nil {
			t.Errorf("RequireColumns of the added column: %v", err)
		}
	})
}
