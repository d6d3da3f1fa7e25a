package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

func TestSQLiteIndexContract(t *testing.T) {
	storetest.TestIndex(t, func(t *testing.T) stores.Index { return NewIndex(newTestDB(t)) })
}

func TestSQLiteIndexTermsOfNumbersBooleansAndArrays(t *testing.T) {
	ix := NewIndex(newTestDB(t))
	storetest.MustPutDocs(t, ix, "ctr", stores.Doc{ID: "d1", Fields: map[string]any{
		"n": 7, "f": 1.5, "ok": true, "contact_ids": []any{"c1", "c2"}, "nested": map[string]any{"x": "c1"}, "nil": nil,
	}})
	for _, tc := range []struct {
		field, value string
		want         int64
	}{
		{"n", "7", 1}, {"n", "7.0", 0}, {"f", "1.5", 1}, {"ok", "true", 1},
		{"contact_ids", "c1", 1}, {"contact_ids", "c2", 1}, {"contact_ids", "c3", 0},
	} {
		storetest.ExpectIndexCount(t, ix, "ctr", tc.field, tc.value, tc.want)
	}
	// Objects and nulls have no terms, so no exact match can ever find
	// them: like a field OpenSearch maps as an object, or not at all,
	// querying one is an error rather than a count of 0.
	for _, field := range []string{"nested", "nil"} {
		if _, err := ix.Count(t.Context(), "ctr", field, "c1"); !errors.Is(err, stores.ErrPermanent) {
			t.Errorf("Count(%s) = %v, want a permanent error", field, err)
		}
	}
}

func TestSQLiteIndexRejectsBadInput(t *testing.T) {
	ix := NewIndex(newTestDB(t))
	storetest.MustPutDocs(t, ix, "contacts", stores.Doc{ID: "d1", Fields: map[string]any{"contact_id": "c1"}})
	ctx := t.Context()
	checks := map[string]error{}
	_, checks["empty value"] = ix.Count(ctx, "contacts", "contact_id", "")
	_, checks["empty term delete"] = ix.DeleteTerm(ctx, "contacts", "contact_id", "")
	_, checks["no values"] = ix.Count(ctx, "contacts", "contact_id")
	_, checks["no values delete"] = ix.DeleteTerm(ctx, "contacts", "contact_id")
	_, checks["invalid UTF-8 in a batch"] = ix.DeleteTerm(ctx, "contacts", "contact_id", "c1", "\xff")
	_, checks["bad field"] = ix.DeleteTerm(ctx, "contacts", "contact_id OR 1", "c1")
	_, checks["bad index"] = ix.DeleteTerm(ctx, "Contacts", "contact_id", "c1")
	checks["empty doc ID"] = ix.Put(ctx, "contacts", stores.Doc{ID: ""})
	checks["long doc ID"] = ix.Put(ctx, "contacts", stores.Doc{ID: strings.Repeat("x", 513)})
	checks["bad index name"] = ix.EnsureIndex(ctx, "../x")
	for name, err := range checks {
		if !errors.Is(err, stores.ErrPermanent) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
	}
	storetest.ExpectIndexCount(t, ix, "contacts", "contact_id", "c1", 1)
}

func TestSQLiteIndexBatchMatchesWholeValuesExactly(t *testing.T) {
	ix := NewIndex(newTestDB(t))
	// Values the batch's JSON encoding escapes, and near relatives of them.
	vals := map[string]string{
		"nul": "a\x00b", "nul-other": "a\x00c", "plain": "a",
		"html": "<&>", "html-other": "<&",
		"line-sep": "x\u2028y", "line-feed": "x\ny",
		"composed": "\u00e9", "decomposed": "e\u0301",
		"quote": `"q\`, "quote-other": `"q`,
		"fffd": "\ufffd",
	}
	var docs []stores.Doc
	for id, v := range vals {
		docs = append(docs, stores.Doc{ID: id, Fields: map[string]any{"contact_id": v}})
	}
	storetest.MustPutDocs(t, ix, "contacts", docs...)
	gone := []string{"nul", "html", "line-sep", "composed", "quote"}
	var batch []string
	for _, id := range gone {
		batch = append(batch, vals[id])
	}
	storetest.ExpectIndexCount(t, ix, "contacts", "contact_id", vals["nul"], 1)
	if n, err := ix.Count(t.Context(), "contacts", "contact_id", batch...); err != nil || n != int64(len(gone)) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(gone))
	}
	if n, err := ix.DeleteTerm(t.Context(), "contacts", "contact_id", batch...); err != nil || n != int64(len(gone)) {
		t.Fatalf("DeleteTerm = %d, %v; want %d", n, err, len(gone))
	}
	for id := range vals {
		_, err := ix.Get(t.Context(), "contacts", id)
		if deleted := errors.Is(err, stores.ErrNotFound); deleted != slices.Contains(gone, id) {
			t.Errorf("document %s (%q): deleted = %v, err %v", id, vals[id], deleted, err)
		}
	}
}

// A batch is one transaction: when deleting fails part-way, nothing goes.
func TestSQLiteIndexBatchDeleteIsAtomic(t *testing.T) {
	db := newTestDB(t)
	ix := NewIndex(db)
	storetest.MustPutDocs(t, ix, "contacts",
		stores.Doc{ID: "first", Fields: map[string]any{"contact_id": "c-first"}},
		stores.Doc{ID: "refused", Fields: map[string]any{"contact_id": "c-refused"}})
	if _, err := db.ExecContext(t.Context(), `CREATE TRIGGER refuse BEFORE DELETE ON erasure_index_docs
		WHEN OLD.id = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END`); err != nil {
		t.Fatal(err)
	}
	batch := []string{"c-first"}
	for i := range 1200 {
		batch = append(batch, fmt.Sprintf("c-%04d", i))
	}
	batch = append(batch, "c-refused")
	if _, err := ix.DeleteTerm(t.Context(), "contacts", "contact_id", batch...); err == nil {
		t.Fatal("DeleteTerm past a refused document: want an error")
	}
	storetest.ExpectIndexCount(t, ix, "contacts", "contact_id", "c-first", 1)
}

// FuzzSQLiteIndexBatch checks Count and DeleteTerm over two values against
// a model: the documents whose field equals either, each once.
func FuzzSQLiteIndexBatch(f *testing.F) {
	for _, s := range [][2]string{{"a", "ab"}, {"a", "a"}, {"%", "_"}, {"a*", "A"}, {"", "a"}, {"x y", "\x00"}, {"a", "\xff"}} {
		f.Add(s[0], s[1])
	}
	db := newMemDB(f)
	ix := NewIndex(db)
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		ctx := t.Context()
		resetIndex(t, db, ix)
		var docs []stores.Doc
		for i, v := range append(fuzzValues(v1), fuzzValues(v2)...) {
			docs = append(docs, stores.Doc{ID: fmt.Sprintf("doc-%02d", i), Fields: map[string]any{"contact_id": v}})
		}
		// One document holds both values.
		docs = append(docs, stores.Doc{ID: "both", Fields: map[string]any{"contact_id": []any{v1, v2}}})
		storetest.MustPutDocs(t, ix, "fuzz", docs...)
		matches := map[string]bool{}
		for _, d := range docs {
			stored, err := ix.Get(ctx, "fuzz", d.ID)
			if err != nil {
				t.Fatal(err)
			}
			// Compared as stored: JSON has no invalid UTF-8, so Put replaces it.
			vs, ok := stored.Fields["contact_id"].([]any)
			if !ok {
				vs = []any{stored.Fields["contact_id"]}
			}
			for _, v := range vs {
				if v == v1 || v == v2 {
					matches[d.ID] = true
				}
			}
		}
		n, err := ix.Count(ctx, "fuzz", "contact_id", v1, v2)
		if err != nil {
			if !errors.Is(err, stores.ErrPermanent) {
				t.Fatalf("Count(%q, %q): unclassified error %v", v1, v2, err)
			}
		} else if n != int64(len(matches)) {
			t.Fatalf("Count(%q, %q) = %d, want %d", v1, v2, n, len(matches))
		}
		n, err = ix.DeleteTerm(ctx, "fuzz", "contact_id", v1, v2)
		if err != nil {
			if !errors.Is(err, stores.ErrPermanent) {
				t.Fatalf("DeleteTerm(%q, %q): unclassified error %v", v1, v2, err)
			}
			clear(matches) // refused: nothing may go
			n = 0
		}
		if n != int64(len(matches)) {
			t.Errorf("DeleteTerm(%q, %q) = %d, want %d", v1, v2, n, len(matches))
		}
		for _, d := range docs {
			_, err := ix.Get(ctx, "fuzz", d.ID)
			if gone := errors.Is(err, stores.ErrNotFound); gone != matches[d.ID] {
				t.Errorf("DeleteTerm(%q, %q): document %s (%v) gone = %v", v1, v2, d.ID, d.Fields["contact_id"], gone)
			}
		}
	})
}

// fuzzValues is the document population the index and warehouse fuzz targets
// delete from: ordinary values, pattern characters, and near relatives of the
// fuzzed input.
func fuzzValues(v string) []string {
	vals := []string{"a", "ab", "A", "%", "_", "*", " ", "x y", "3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f"}
	if v != "" {
		vals = append(vals, v, v+"x", "x"+v, strings.ToUpper(v), strings.ToLower(v), v[:len(v)-1]+"", " "+v)
	}
	return vals
}

func FuzzSQLiteIndexDeleteTerm(f *testing.F) {
	for _, s := range []string{"%", "_", "*", "a*", "", "' OR 1=1 --", "a", "A", "3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5"} {
		f.Add("contact_id", s)
		f.Add("_id", s)
	}
	db := newMemDB(f)
	ix := NewIndex(db)
	f.Fuzz(func(t *testing.T, field, value string) {
		ctx := t.Context()
		resetIndex(t, db, ix)
		var docs []stores.Doc
		for i, v := range fuzzValues(value) {
			docs = append(docs, stores.Doc{ID: fmt.Sprintf("doc-%02d", i), Fields: map[string]any{"contact_id": v, "agent": v + "!"}})
		}
		if value != "" && len(value) <= 512 {
			docs = append(docs, stores.Doc{ID: value, Fields: map[string]any{"contact_id": "by-id"}})
		}
		storetest.MustPutDocs(t, ix, "fuzz", docs...)
		// Compare with the documents as stored: JSON has no invalid UTF-8,
		// so Put replaces it.
		for i, d := range docs {
			stored, err := ix.Get(ctx, "fuzz", d.ID)
			if err != nil {
				t.Fatal(err)
			}
			docs[i] = stored
		}
		matches := func(d stores.Doc) bool {
			if field == "_id" {
				return d.ID == value
			}
			s, ok := d.Fields[field].(string)
			return ok && s == value
		}
		n, err := ix.DeleteTerm(ctx, "fuzz", field, value)
		if err != nil {
			if !errors.Is(err, stores.ErrPermanent) {
				t.Fatalf("DeleteTerm(%q, %q): unclassified error %v", field, value, err)
			}
			n = 0
		}
		var want int64
		for _, d := range docs {
			_, getErr := ix.Get(ctx, "fuzz", d.ID)
			gone := errors.Is(getErr, stores.ErrNotFound)
			if getErr != nil && !gone {
				t.Fatal(getErr)
			}
			if err == nil && matches(d) {
				want++
				if !gone {
					t.Errorf("document %q matching %s=%q survived", d.ID, field, value)
				}
			} else if gone {
				t.Errorf("DeleteTerm(%q, %q) deleted document %q, which does not match", field, value, d.ID)
			}
		}
		if n != want {
			t.Errorf("DeleteTerm(%q, %q) = %d, want %d", field, value, n, want)
		}
	})
}

func FuzzSQLiteIndexDeleteIDs(f *testing.F) {
	for _, s := range []string{"%", "_", "*", "a*", "", "' OR 1=1 --", "doc-01", "doc-0", "DOC-01"} {
		f.Add(s)
	}
	db := newMemDB(f)
	ix := NewIndex(db)
	f.Fuzz(func(t *testing.T, id string) {
		ctx := t.Context()
		resetIndex(t, db, ix)
		ids := []string{"doc-01", "doc-02", "a", "%", "_"}
		if id != "" && len(id) < 512 && !slices.Contains(ids, id) {
			ids = append(ids, id, id+"x")
			if len(id) > 1 {
				ids = append(ids, id[:len(id)-1])
			}
		}
		var docs []stores.Doc
		for _, d := range ids {
			docs = append(docs, stores.Doc{ID: d, Fields: map[string]any{"contact_id": d}})
		}
		storetest.MustPutDocs(t, ix, "fuzz", docs...)
		n, err := ix.DeleteIDs(ctx, "fuzz", id)
		if err != nil {
			t.Fatalf("DeleteIDs(%q): %v", id, err)
		}
		var want int64
		if slices.Contains(ids, id) {
			want = 1
		}
		if n != want {
			t.Errorf("DeleteIDs(%q) = %d, want %d", id, n, want)
		}
		for _, d := range ids {
			_, err := ix.Get(ctx, "fuzz", d)
			if gone := errors.Is(err, stores.ErrNotFound); gone != (d == id) {
				t.Errorf("after DeleteIDs(%q): document %q gone=%v", id, d, gone)
			}
		}
	})
}

func FuzzSQLiteIndexSearchText(f *testing.F) {
	for _, s := range []string{"%", "_", "*", "a*", "", "' OR 1=1 --", "ann", "ANN", "a%e", "\\", "[a]", "é"} {
		f.Add(s)
	}
	db := newMemDB(f)
	ix := NewIndex(db)
	f.Fuzz(func(t *testing.T, text string) {
		ctx := t.Context()
		resetIndex(t, db, ix)
		names := []string{"Ann Lee", "ANNETTE", "per%cent", "under_score", "star*", `back\slash`, "Élodie", "x"}
		if text != "" {
			names = append(names, "pre"+text+"post", strings.ToUpper(text))
		}
		var docs []stores.Doc
		for i, n := range names {
			docs = append(docs, stores.Doc{ID: fmt.Sprintf("d%02d", i), Fields: map[string]any{
				"customer_name": n, "customer_phone": "+44" + fmt.Sprint(i), "customer_email": "", "queue": text,
			}})
		}
		storetest.MustPutDocs(t, ix, "fuzz", docs...)
		r, err := ix.Search(ctx, "fuzz", stores.Query{Text: text, Limit: 500})
		if err != nil {
			t.Fatalf("Search(%q): %v", text, err)
		}
		var got, want []string
		for _, d := range r.Docs {
			got = append(got, d.ID)
		}
		needle := strings.ToLower(text)
		for _, d := range docs {
			for _, f := range stores.SearchTextFields {
				if strings.Contains(strings.ToLower(d.Fields[f].(string)), needle) {
					want = append(want, d.ID)
					break
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) || r.Total != int64(len(want)) {
			t.Errorf("Search(%q) = %q (total %d), want %q (valid UTF-8: %v)", text, got, r.Total, want, utf8.ValidString(text))
		}
	})
}

// resetIndex empties the "fuzz" index, for fuzz iterations sharing one.
func resetIndex(t *testing.T, db *sql.DB, ix *Index) {
	t.Helper()
	if err := ix.EnsureIndex(t.Context(), "fuzz"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `DELETE FROM erasure_index_docs WHERE idx = 'fuzz'`); err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteIndexSearchPutsUndatedDocumentsLast(t *testing.T) {
	ix := NewIndex(newTestDB(t))
	storetest.MustPutDocs(t, ix, "contacts",
		stores.Doc{ID: "undated", Fields: map[string]any{"queue": "q"}},
		stores.Doc{ID: "bad-date", Fields: map[string]any{"queue": "q", "initiation_timestamp": "yesterday"}},
		stores.Doc{ID: "old", Fields: map[string]any{"queue": "q", "initiation_timestamp": "2025-03-01T10:00:00Z"}},
		// A later instant written with an offset and a fraction: ordering is
		// by instant, not by the text.
		stores.Doc{ID: "new", Fields: map[string]any{"queue": "q", "initiation_timestamp": "2025-03-01T11:30:00.5+01:00"}})
	r, err := ix.Search(t.Context(), "contacts", stores.Query{Queue: "q"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range r.Docs {
		got = append(got, d.ID)
	}
	if want := []string{"new", "old", "bad-date", "undated"}; !slices.Equal(got, want) {
		t.Fatalf("order = %q, want %q", got, want)
	}
}

// termRows counts the term rows of one document, whatever their field.
func termRows(t *testing.T, db *sql.DB, index, id string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM erasure_index_terms WHERE idx = ? AND id = ?`, index, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The term table holds copies of a document's values (a customer's name,
// phone, email): deleting the document by ID or by term takes every one.
func TestSQLiteIndexDeleteLeavesNoTerms(t *testing.T) {
	db := newTestDB(t)
	ix := NewIndex(db)
	for index, fields := range map[string][]string{"contacts": {"contact_id", "customer_name", "tags"}, "ctr": {"contact_id", "queue"}} {
		if err := ix.ensureTermFields(t.Context(), index, fields...); err != nil {
			t.Fatal(err)
		}
	}
	storetest.MustPutDocs(t, ix, "contacts",
		stores.Doc{ID: "c1", Fields: map[string]any{"contact_id": "c1", "customer_name": "Ada", "tags": []any{"a", "b"}}},
		stores.Doc{ID: "c2", Fields: map[string]any{"contact_id": "c2", "customer_name": "Bob"}},
		stores.Doc{ID: "c3", Fields: map[string]any{"contact_id": "c3", "customer_name": "Cy"}})
	storetest.MustPutDocs(t, ix, "ctr",
		stores.Doc{ID: "r1", Fields: map[string]any{"contact_id": "c1", "queue": "q"}},
		stores.Doc{ID: "r2", Fields: map[string]any{"contact_id": "c1", "queue": "q"}},
		stores.Doc{ID: "r3", Fields: map[string]any{"contact_id": "c3", "queue": "q"}})
	if termRows(t, db, "contacts", "c1") != 4 || termRows(t, db, "ctr", "r1") != 2 {
		t.Fatalf("terms before: %d, %d", termRows(t, db, "contacts", "c1"), termRows(t, db, "ctr", "r1"))
	}
	if n, err := ix.DeleteIDs(t.Context(), "contacts", "c1", "c1", "", "c2", "c9"); err != nil || n != 2 {
		t.Fatalf("DeleteIDs = %d, %v; want 2", n, err)
	}
	if n, err := ix.DeleteTerm(t.Context(), "ctr", "contact_id", "c1", "c9"); err != nil || n != 2 {
		t.Fatalf("DeleteTerm = %d, %v; want 2", n, err)
	}
	for _, d := range [][2]string{{"contacts", "c1"}, {"contacts", "c2"}, {"ctr", "r1"}, {"ctr", "r2"}} {
		if n := termRows(t, db, d[0], d[1]); n != 0 {
			t.Errorf("%s/%s: %d term rows left after its deletion", d[0], d[1], n)
		}
	}
	// The others keep theirs, and stay findable.
	if termRows(t, db, "contacts", "c3") != 2 || termRows(t, db, "ctr", "r3") != 2 {
		t.Errorf("terms of kept documents: %d, %d", termRows(t, db, "contacts", "c3"), termRows(t, db, "ctr", "r3"))
	}
	storetest.ExpectIndexCount(t, ix, "ctr", "contact_id", "c3", 1)
}

// A file made when terms went by a cascade from their document is rebuilt
// without it on first use: its terms are kept, search and deletes work,
// and a deletion still takes every term.
func TestSQLiteIndexDropsTheTermCascadeOfOlderFiles(t *testing.T) {
	db := newTestDB(t)
	for _, stmt := range []string{
		`CREATE TABLE erasure_indexes (name TEXT PRIMARY KEY) WITHOUT ROWID`,
		`CREATE TABLE erasure_index_docs (
			idx TEXT NOT NULL REFERENCES erasure_indexes(name) ON DELETE CASCADE, id TEXT NOT NULL, doc TEXT NOT NULL,
			name_lc TEXT NOT NULL DEFAULT '', phone_lc TEXT NOT NULL DEFAULT '', email_lc TEXT NOT NULL DEFAULT '',
			initiated_at TEXT, PRIMARY KEY (idx, id))`,
		`CREATE TABLE erasure_index_terms (
			idx TEXT NOT NULL, id TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
			PRIMARY KEY (idx, field, value, id),
			FOREIGN KEY (idx, id) REFERENCES erasure_index_docs (idx, id) ON DELETE CASCADE
		) WITHOUT ROWID`,
		`CREATE INDEX erasure_index_terms_doc ON erasure_index_terms (idx, id)`,
		`INSERT INTO erasure_indexes VALUES ('ctr')`,
		`INSERT INTO erasure_index_docs (idx, id, doc) VALUES ('ctr', 'r1', '{"contact_id":"c1","queue":"q"}'), ('ctr', 'r2', '{"contact_id":"c2","queue":"q"}')`,
		`INSERT INTO erasure_index_terms VALUES ('ctr', 'r1', 'contact_id', 'c1'), ('ctr', 'r1', 'queue', 'q'),
			('ctr', 'r2', 'contact_id', 'c2'), ('ctr', 'r2', 'queue', 'q')`,
	} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	ix := NewIndex(db)
	storetest.ExpectIndexCount(t, ix, "ctr", "contact_id", "c1", 1)
	var fks int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pragma_foreign_key_list('erasure_index_terms')`).Scan(&fks); err != nil || fks != 0 {
		t.Fatalf("foreign keys of the term table after first use: %d, %v", fks, err)
	}
	if termRows(t, db, "ctr", "r1") != 2 || termRows(t, db, "ctr", "r2") != 2 {
		t.Fatal("terms lost in the rebuild")
	}
	if n, err := ix.DeleteTerm(t.Context(), "ctr", "contact_id", "c1"); err != nil || n != 1 {
		t.Fatalf("DeleteTerm = %d, %v", n, err)
	}
	if termRows(t, db, "ctr", "r1") != 0 {
		t.Error("terms left after the deletion")
	}
	// Fields are still known after the trigger was rebuilt with the table.
	storetest.MustPutDocs(t, ix, "ctr", stores.Doc{ID: "r3", Fields: map[string]any{"contact_id": "c3", "segment": 1}})
	storetest.ExpectIndexCount(t, ix, "ctr", "segment", "1", 1)
	if err := ix.RequireField(t.Context(), "ctr", "segment"); err != nil {
		t.Error(err)
	}
}

// Terms are written for the fields matched on and no others. A field first
// matched on after documents were put gets their terms then, exactly as
// Put would write them (numbers as written, booleans, array elements), and
// a field registered through another handle of the same file gets terms
// from every Put after it, whatever this handle remembers.
func TestSQLiteIndexTermsForMatchedFieldsOnly(t *testing.T) {
	db := newTestDB(t)
	ix := NewIndex(db)
	ctx := t.Context()
	doc := func(id string) stores.Doc {
		return stores.Doc{ID: id, Fields: map[string]any{"contact_id": "c-" + id, "customer_name": "Ada " + id,
			"amount": json.Number("1.50"), "vip": true, "tags": []any{"x", json.Number("2")}}}
	}
	storetest.MustPutDocs(t, ix, "ctr", doc("r1"), doc("r2"))
	if n := termRows(t, db, "ctr", "r1"); n != 0 {
		t.Fatalf("%d term rows before any field is matched on; want none", n)
	}
	// Known to RequireField all the same (which registers it).
	if err := ix.RequireField(ctx, "ctr", "vip"); err != nil {
		t.Fatalf("RequireField of a put field: %v", err)
	}
	storetest.ExpectIndexCount(t, ix, "ctr", "amount", "1.50", 2)
	storetest.ExpectIndexCount(t, ix, "ctr", "vip", "true", 2)
	storetest.ExpectIndexCount(t, ix, "ctr", "tags", "2", 2)
	storetest.ExpectIndexCount(t, ix, "ctr", "contact_id", "c-r2", 1)

	other := NewIndex(db) // another process's handle on the same file
	if err := other.ensureTermFields(ctx, "ctr", "queue"); err != nil {
		t.Fatal(err)
	}
	d := doc("r3")
	d.Fields["queue"] = "billing"
	storetest.MustPutDocs(t, ix, "ctr", d)
	storetest.ExpectIndexCount(t, other, "ctr", "queue", "billing", 1)
	storetest.ExpectIndexCount(t, ix, "ctr", "amount", "1.50", 3)
	// customer_name, matched on by no one, has no terms: r3 has one row
	// each for the six matched fields' values (tags has two).
	if n := termRows(t, db, "ctr", "r3"); n != 6 {
		t.Errorf("%d term rows for r3; want 6 (contact_id, amount, vip, tags x and 2, queue)", n)
	}
	if n, err := ix.DeleteTerm(ctx, "ctr", "contact_id", "c-r1", "c-r3"); err != nil || n != 2 {
		t.Fatalf("DeleteTerm = %d, %v", n, err)
	}
	for _, id := range []string{"r1", "r3"} {
		if n := termRows(t, db, "ctr", id); n != 0 {
			t.Errorf("%s: %d term rows left after its deletion", id, n)
		}
	}
}
