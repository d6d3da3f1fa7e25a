package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// TestIndex checks an Index implementation through the interface
// only. newIndex returns a ready store; every subtest works in its own
// freshly named index, so a shared cluster is fine.
func TestIndex(t *testing.T, newIndex func(t *testing.T) stores.Index) {
	t.Run("PhoneNumbersAndSubjects", func(t *testing.T) { testIndexPhoneSearch(t, newIndex) })
	t.Run("EnsureIndexIsIdempotent", func(t *testing.T) {
		ix, index := newIndex(t), UniqueName("ix")
		for range 2 {
			if err := ix.EnsureIndex(t.Context(), index); err != nil {
				t.Fatalf("EnsureIndex: %v", err)
			}
		}
	})

	t.Run("PutGet", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		d := stores.Doc{ID: NewUUID(), Fields: map[string]any{"contact_id": "c1", "channel": "VOICE", "n": 7}}
		MustPutDocs(t, ix, index, d)
		got, err := ix.Get(t.Context(), index, d.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.ID != d.ID || FieldsJSON(t, got.Fields) != FieldsJSON(t, d.Fields) {
			t.Fatalf("Get = %s %s, want %s %s", got.ID, FieldsJSON(t, got.Fields), d.ID, FieldsJSON(t, d.Fields))
		}
	})

	t.Run("PutReplacesDocument", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		id := NewUUID()
		MustPutDocs(t, ix, index, stores.Doc{ID: id, Fields: map[string]any{"agent": "old", "queue": "q1"}})
		MustPutDocs(t, ix, index, stores.Doc{ID: id, Fields: map[string]any{"agent": "new"}})
		ExpectIndexCount(t, ix, index, "agent", "old", 0)
		ExpectIndexCount(t, ix, index, "queue", "q1", 0)
		ExpectIndexCount(t, ix, index, "agent", "new", 1)
		ExpectIndexCount(t, ix, index, "_id", id, 1)
	})

	t.Run("GetMissingIsNotFound", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		if _, err := ix.Get(t.Context(), index, NewUUID()); !errors.Is(err, stores.ErrNotFound) {
			t.Fatalf("Get of a missing document: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("CountDeleteTermVerify", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		target, other := NewUUID(), NewUUID()
		docs := []stores.Doc{
			{ID: "ctr-1", Fields: map[string]any{"contact_id": target, "agent": "a1"}},
			{ID: "ctr-2", Fields: map[string]any{"contact_id": target, "agent": "a2"}},
			{ID: "ctr-3", Fields: map[string]any{"contact_id": other, "agent": "a1"}},
		}
		MustPutDocs(t, ix, index, docs...)
		before := snapshotDocs(t, ix, index, "ctr-3")
		ExpectIndexCount(t, ix, index, "contact_id", target, 2)
		n, err := ix.DeleteTerm(t.Context(), index, "contact_id", target)
		if err != nil || n != 2 {
			t.Fatalf("DeleteTerm = %d, %v; want 2, nil", n, err)
		}
		ExpectIndexCount(t, ix, index, "contact_id", target, 0)
		for _, id := range []string{"ctr-1", "ctr-2"} {
			if _, err := ix.Get(t.Context(), index, id); !errors.Is(err, stores.ErrNotFound) {
				t.Errorf("Get(%s) after delete: err = %v, want ErrNotFound", id, err)
			}
		}
		ExpectIndexCount(t, ix, index, "contact_id", other, 1)
		expectDocsUnchanged(t, ix, index, before)
	})

	t.Run("DeleteByID", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		a, b, c := NewUUID(), NewUUID(), NewUUID()
		MustPutDocs(t, ix, index,
			stores.Doc{ID: a, Fields: map[string]any{"contact_id": a}},
			stores.Doc{ID: b, Fields: map[string]any{"contact_id": b}},
			stores.Doc{ID: c, Fields: map[string]any{"contact_id": c}})
		before := snapshotDocs(t, ix, index, c)
		ExpectIndexCount(t, ix, index, "_id", a, 1)
		if n, err := ix.DeleteTerm(t.Context(), index, "_id", a); err != nil || n != 1 {
			t.Fatalf("DeleteTerm(_id) = %d, %v; want 1, nil", n, err)
		}
		// DeleteIDs counts only what existed: a is gone already.
		if n, err := ix.DeleteIDs(t.Context(), index, a, b, b, NewUUID()); err != nil || n != 1 {
			t.Fatalf("DeleteIDs = %d, %v; want 1, nil", n, err)
		}
		ExpectIndexCount(t, ix, index, "_id", a, 0)
		ExpectIndexCount(t, ix, index, "_id", b, 0)
		expectDocsUnchanged(t, ix, index, before)
	})

	t.Run("DeletingWhatIsGoneSucceedsWithZero", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		id := NewUUID()
		MustPutDocs(t, ix, index, stores.Doc{ID: id, Fields: map[string]any{"contact_id": id}})
		for i, want := range []int64{1, 0, 0} {
			n, err := ix.DeleteTerm(t.Context(), index, "contact_id", id)
			if err != nil || n != want {
				t.Fatalf("DeleteTerm #%d = %d, %v; want %d, nil", i+1, n, err, want)
			}
		}
		if n, err := ix.DeleteIDs(t.Context(), index, id); err != nil || n != 0 {
			t.Fatalf("DeleteIDs of a deleted document = %d, %v; want 0, nil", n, err)
		}
		if n, err := ix.DeleteIDs(t.Context(), index); err != nil || n != 0 {
			t.Fatalf("DeleteIDs with no IDs = %d, %v; want 0, nil", n, err)
		}
	})

	t.Run("NoInputWidensADelete", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		id := "3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f"
		docs := []stores.Doc{
			{ID: id, Fields: map[string]any{"contact_id": id, "agent": "alice", "customer_email": ""}},
			{ID: "doc-a", Fields: map[string]any{"contact_id": "a", "agent": "ab"}},
			{ID: "doc-b", Fields: map[string]any{"contact_id": "ab", "agent": "A"}},
		}
		MustPutDocs(t, ix, index, docs...)
		before := snapshotDocs(t, ix, index, id, "doc-a", "doc-b")
		for _, v := range hostileValues(id) {
			for _, field := range []string{"contact_id", "agent", "customer_email", "_id"} {
				if n, err := ix.Count(t.Context(), index, field, v); err == nil && n != 0 {
					t.Errorf("Count(%s, %q) = %d, want 0 or an error", field, v, n)
				}
				if n, err := ix.DeleteTerm(t.Context(), index, field, v); err == nil && n != 0 {
					t.Errorf("DeleteTerm(%s, %q) = %d, want 0 or an error", field, v, n)
				}
			}
			if n, err := ix.DeleteIDs(t.Context(), index, v); err == nil && n != 0 {
				t.Errorf("DeleteIDs(%q) = %d, want 0 or an error", v, n)
			}
		}
		for _, field := range []string{"", "*", "_all", "contact_id*", "contact_id OR 1=1", "$.contact_id"} {
			if n, err := ix.DeleteTerm(t.Context(), index, field, id); err == nil && n != 0 {
				t.Errorf("DeleteTerm(field %q) = %d, want 0 or an error", field, n)
			}
		}
		expectDocsUnchanged(t, ix, index, before)
	})

	t.Run("SpecialCharactersMatchLiterally", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		MustPutDocs(t, ix, index,
			stores.Doc{ID: "d1", Fields: map[string]any{"tag": "a*"}},
			stores.Doc{ID: "d2", Fields: map[string]any{"tag": "ab"}},
			stores.Doc{ID: "d3", Fields: map[string]any{"tag": "a%"}},
			stores.Doc{ID: "d4", Fields: map[string]any{"tag": "a_"}},
			stores.Doc{ID: "d5", Fields: map[string]any{"tag": "ax"}})
		before := snapshotDocs(t, ix, index, "d2", "d5")
		for _, v := range []string{"a*", "a%", "a_"} {
			if n, err := ix.DeleteTerm(t.Context(), index, "tag", v); err != nil || n != 1 {
				t.Errorf("DeleteTerm(tag, %q) = %d, %v; want 1, nil", v, n, err)
			}
		}
		expectDocsUnchanged(t, ix, index, before)
	})

	t.Run("MissingIndexIsAnError", func(t *testing.T) {
		// A misspelt index in the data map must fail the step, not verify
		// as "nothing left".
		ix := newIndex(t)
		index := UniqueName("missing")
		if _, err := ix.Count(t.Context(), index, "contact_id", NewUUID()); err == nil {
			t.Error("Count on a missing index: want an error")
		}
		if _, err := ix.DeleteTerm(t.Context(), index, "contact_id", NewUUID()); err == nil {
			t.Error("DeleteTerm on a missing index: want an error")
		}
	})

	t.Run("DeleteTermPast1000Documents", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		target := NewUUID()
		docs := make([]stores.Doc, 0, 1053)
		for i := range 1050 {
			docs = append(docs, stores.Doc{ID: fmt.Sprintf("ctr-%05d", i), Fields: map[string]any{"contact_id": target, "n": i}})
		}
		for i := range 3 {
			docs = append(docs, stores.Doc{ID: fmt.Sprintf("keep-%d", i), Fields: map[string]any{"contact_id": NewUUID()}})
		}
		for i := 0; i < len(docs); i += 500 {
			MustPutDocs(t, ix, index, docs[i:min(i+500, len(docs))]...)
		}
		before := snapshotDocs(t, ix, index, "keep-0", "keep-1", "keep-2")
		ExpectIndexCount(t, ix, index, "contact_id", target, 1050)
		n, err := ix.DeleteTerm(t.Context(), index, "contact_id", target)
		if err != nil || n != 1050 {
			t.Fatalf("DeleteTerm = %d, %v; want 1050, nil", n, err)
		}
		ExpectIndexCount(t, ix, index, "contact_id", target, 0)
		expectDocsUnchanged(t, ix, index, before)
	})

	t.Run("Batch", func(t *testing.T) { testIndexBatch(t, newIndex) })
	t.Run("Search", func(t *testing.T) { testIndexSearch(t, newIndex) })
	t.Run("Prefixes", func(t *testing.T) { testIndexPrefixes(t, newIndex) })
	t.Run("Inspection", func(t *testing.T) { testIndexInspection(t, newIndex) })
}

// testIndexBatch checks Count and DeleteTerm over several values: they
// count and delete the union of what each value matches, each document once,
// and nothing else.
func testIndexBatch(t *testing.T, newIndex func(t *testing.T) stores.Index) {
	t.Run("CountAndDeleteTheUnion", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		a, b, c, other := NewUUID(), NewUUID(), NewUUID(), NewUUID()
		docs := []stores.Doc{
			{ID: "a-1", Fields: map[string]any{"contact_id": a, "agent": "x"}},
			{ID: "a-2", Fields: map[string]any{"contact_id": a}},
			{ID: "b-1", Fields: map[string]any{"contact_id": b}},
			// Matched by two values of the batch, and counted once.
			{ID: "a-and-b", Fields: map[string]any{"contact_id": []any{a, b}}},
			{ID: "c-1", Fields: map[string]any{"contact_id": c}},
			{ID: "other", Fields: map[string]any{"contact_id": other, "agent": a}},
		}
		keep := []string{"other"}
		for i, target := range []string{a, b, c} {
			for j, v := range nearMisses(target) {
				id := fmt.Sprintf("near-%d-%02d", i, j)
				docs = append(docs, stores.Doc{ID: id, Fields: map[string]any{"contact_id": v}})
				keep = append(keep, id)
			}
		}
		MustPutDocs(t, ix, index, docs...)
		before := snapshotDocs(t, ix, index, keep...)
		// A value matching nothing and repeated values change nothing: the
		// per-value counts add up to 7, the union is 5.
		batch := []string{a, NewUUID(), b, a, c, b}
		expectIndexCountOf(t, ix, index, "contact_id", batch, 5)
		if n, err := ix.DeleteTerm(t.Context(), index, "contact_id", batch...); err != nil || n != 5 {
			t.Fatalf("DeleteTerm(%d values) = %d, %v; want 5, nil", len(batch), n, err)
		}
		expectIndexCountOf(t, ix, index, "contact_id", batch, 0)
		for _, id := range []string{"a-1", "a-2", "b-1", "a-and-b", "c-1"} {
			if _, err := ix.Get(t.Context(), index, id); !errors.Is(err, stores.ErrNotFound) {
				t.Errorf("Get(%s) after delete: err = %v, want ErrNotFound", id, err)
			}
		}
		expectDocsUnchanged(t, ix, index, before)
		if n, err := ix.DeleteTerm(t.Context(), index, "contact_id", batch...); err != nil || n != 0 {
			t.Fatalf("DeleteTerm again = %d, %v; want 0, nil", n, err)
		}

		ids := []string{"near-0-00", "other", NewUUID(), "other"}
		expectIndexCountOf(t, ix, index, "_id", ids, 2)
		if n, err := ix.DeleteTerm(t.Context(), index, "_id", ids...); err != nil || n != 2 {
			t.Fatalf("DeleteTerm(_id, %d values) = %d, %v; want 2, nil", len(ids), n, err)
		}
		delete(before, "near-0-00")
		delete(before, "other")
		expectDocsUnchanged(t, ix, index, before)
	})

	t.Run("HostileValuesWidenNothing", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		id := "3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f"
		MustPutDocs(t, ix, index,
			stores.Doc{ID: id, Fields: map[string]any{"contact_id": id, "agent": "alice", "customer_email": ""}},
			stores.Doc{ID: "doc-a", Fields: map[string]any{"contact_id": "a", "agent": "ab"}},
			stores.Doc{ID: "doc-b", Fields: map[string]any{"contact_id": "ab", "agent": "A"}})
		before := snapshotDocs(t, ix, index, id, "doc-a", "doc-b")
		batch := slices.DeleteFunc(hostileValues(id), func(v string) bool { return v == "" })
		for _, field := range []string{"contact_id", "agent", "customer_email", "_id"} {
			if n, err := ix.Count(t.Context(), index, field, batch...); err == nil && n != 0 {
				t.Errorf("Count(%s, %d hostile values) = %d, want 0 or an error", field, len(batch), n)
			}
			if n, err := ix.DeleteTerm(t.Context(), index, field, batch...); err == nil && n != 0 {
				t.Errorf("DeleteTerm(%s, %d hostile values) = %d, want 0 or an error", field, len(batch), n)
			}
		}
		expectDocsUnchanged(t, ix, index, before)
	})

	t.Run("Past1000Values", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		const n = 2500
		values := make([]string, n)
		docs := make([]stores.Doc, 0, n+n/100+4)
		for i := range values {
			values[i] = fmt.Sprintf("contact-%05d", i)
			docs = append(docs, stores.Doc{ID: fmt.Sprintf("ctr-%05d", i), Fields: map[string]any{"contact_id": values[i]}})
		}
		for i := 0; i < n; i += 100 {
			docs = append(docs, stores.Doc{ID: fmt.Sprintf("ctr-%05d-b", i), Fields: map[string]any{"contact_id": values[i]}})
		}
		// Matched by the first value and the last, which no store takes in
		// one piece with the values between: still one document.
		docs = append(docs, stores.Doc{ID: "first-and-last", Fields: map[string]any{"contact_id": []any{values[0], values[n-1]}}})
		keep := []string{"keep-past-end", "keep-prefix", "keep-other"}
		docs = append(docs,
			stores.Doc{ID: keep[0], Fields: map[string]any{"contact_id": fmt.Sprintf("contact-%05d", n)}},
			stores.Doc{ID: keep[1], Fields: map[string]any{"contact_id": "contact-0000"}},
			stores.Doc{ID: keep[2], Fields: map[string]any{"contact_id": NewUUID()}})
		for i := 0; i < len(docs); i += 500 {
			MustPutDocs(t, ix, index, docs[i:min(i+500, len(docs))]...)
		}
		before := snapshotDocs(t, ix, index, keep...)
		// Repeats that land in other pieces than their first occurrence.
		batch := append(slices.Clone(values), values[:300]...)
		want := int64(n + n/100 + 1)
		expectIndexCountOf(t, ix, index, "contact_id", batch, want)
		if got, err := ix.DeleteTerm(t.Context(), index, "contact_id", batch...); err != nil || got != want {
			t.Fatalf("DeleteTerm(%d values) = %d, %v; want %d, nil", len(batch), got, err, want)
		}
		expectIndexCountOf(t, ix, index, "contact_id", batch, 0)
		for _, id := range []string{"ctr-00000", "ctr-01999", "ctr-02499", "ctr-02400-b", "first-and-last"} {
			if _, err := ix.Get(t.Context(), index, id); !errors.Is(err, stores.ErrNotFound) {
				t.Errorf("Get(%s) after delete: err = %v, want ErrNotFound", id, err)
			}
		}
		expectDocsUnchanged(t, ix, index, before)
	})

	t.Run("EmptyBatchOrEmptyValueIsPermanentAndDeletesNothing", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		targets := []string{NewUUID(), NewUUID(), NewUUID()}
		for _, id := range targets {
			MustPutDocs(t, ix, index, stores.Doc{ID: id, Fields: map[string]any{"contact_id": id}})
		}
		before := snapshotDocs(t, ix, index, targets...)
		// The empty value comes after more values than a store takes in one
		// piece, so a store checking piece by piece would delete first.
		long := slices.Clone(targets)
		for len(long) < 1100 {
			long = append(long, NewUUID())
		}
		for _, field := range []string{"contact_id", "_id"} {
			for name, batch := range map[string][]string{
				"no values":            nil,
				"an empty value":       {""},
				"an empty value too":   {targets[0], ""},
				"an empty value last":  append(slices.Clone(long), ""),
				"an empty value first": append([]string{""}, long...),
			} {
				n, err := ix.Count(t.Context(), index, field, batch...)
				if !errors.Is(err, stores.ErrPermanent) || n != 0 {
					t.Errorf("Count(%s) with %s = %d, %v; want 0 and a permanent error", field, name, n, err)
				}
				n, err = ix.DeleteTerm(t.Context(), index, field, batch...)
				if !errors.Is(err, stores.ErrPermanent) || n != 0 {
					t.Errorf("DeleteTerm(%s) with %s = %d, %v; want 0 and a permanent error", field, name, n, err)
				}
			}
		}
		expectDocsUnchanged(t, ix, index, before)
		expectIndexCountOf(t, ix, index, "contact_id", targets, 3)
	})
}

// nearMisses are the values of hostileValues derived from id: each differs
// from it by a character, a case, padding or a pattern, and so must never
// be matched by it.
func nearMisses(id string) []string {
	var out []string
	for _, v := range hostileValues(id) {
		if v != id && strings.Contains(strings.ToLower(v), strings.ToLower(id[:8])) {
			out = append(out, v)
		}
	}
	return out
}

func testIndexSearch(t *testing.T, newIndex func(t *testing.T) stores.Index) {
	ix, index := setupIndex(t, newIndex)
	day := func(d int) string { return time.Date(2025, 3, d, 10, 0, 0, 0, time.UTC).Format(time.RFC3339) }
	doc := func(id, name, phone, email, channel, agent, queue, ts string) stores.Doc {
		return stores.Doc{ID: id, Fields: map[string]any{
			"contact_id": id, "customer_name": name, "customer_phone": phone, "customer_email": email,
			"channel": channel, "agent": agent, "queue": queue, "initiation_timestamp": ts,
		}}
	}
	docs := []stores.Doc{
		doc("c01", "Ann Lee", "+447700900001", "ann.lee@example.com", "VOICE", "agent1", "sales", day(1)),
		doc("c02", "Bob Stone", "+447700900002", "bob@example.com", "CHAT", "agent2", "support", day(2)),
		doc("c03", "ANNETTE Marsh", "+447700900003", "marsh@example.org", "EMAIL", "agent1", "support", day(3)),
		doc("c04", "Carl Ng", "+447700900004", "under_score@example.com", "VOICE", "agent3", "sales", day(4)),
		doc("c05", "Dee Percent", "+447700900005", "per%cent@example.com", "VOICE", "agent1", "sales", day(5)),
		doc("c06", "Eve Adams", "+447700900006", "eve@example.net", "CHAT", "agent10", "sales", day(5)),
		doc("c07", "Finn Ó Briain", "+447700900007", "finn@example.ie", "VOICE", "Agent1", "Sales", day(7)),
	}
	MustPutDocs(t, ix, index, docs...)

	ids := func(r stores.SearchResult) string {
		var s []string
		for _, d := range r.Docs {
			s = append(s, d.ID)
		}
		return strings.Join(s, ",")
	}
	// Newest First, ties (c05, c06 share a timestamp) by ID.
	tests := []struct {
		name  string
		q     stores.Query
		want  string
		total int64
	}{
		{"all", stores.Query{}, "c07,c05,c06,c04,c03,c02,c01", 7},
		{"contact ID exact", stores.Query{ContactID: "c03"}, "c03", 1},
		{"contact ID near miss", stores.Query{ContactID: "c0"}, "", 0},
		{"text name case-insensitive", stores.Query{Text: "ann"}, "c03,c01", 2},
		{"text upper case", stores.Query{Text: "LEE"}, "c01", 1},
		{"text phone substring", stores.Query{Text: "900004"}, "c04", 1},
		{"text email", stores.Query{Text: "@EXAMPLE.ORG"}, "c03", 1},
		{"text non-ASCII", stores.Query{Text: "ó briain"}, "c07", 1},
		{"text underscore is literal", stores.Query{Text: "_"}, "c04", 1},
		{"text percent is literal", stores.Query{Text: "%"}, "c05", 1},
		{"text star is literal", stores.Query{Text: "*"}, "", 0},
		{"text pattern is literal", stores.Query{Text: "a%e"}, "", 0},
		{"text quote", stores.Query{Text: "' OR 1=1 --"}, "", 0},
		{"text not in other fields", stores.Query{Text: "agent1"}, "", 0},
		{"channel exact", stores.Query{Channel: "CHAT"}, "c06,c02", 2},
		{"channel is not a prefix", stores.Query{Channel: "CHA"}, "", 0},
		{"agent prefix ignoring case", stores.Query{Agent: "agent1"}, "c07,c05,c06,c03,c01", 5},
		{"queue ignoring case", stores.Query{Queue: "sales"}, "c07,c05,c06,c04,c01", 5},
		{"combined", stores.Query{Agent: "agent1", Queue: "sales", Channel: "VOICE"}, "c07,c05,c01", 3},
		{"from", stores.Query{From: mustTime(t, day(4))}, "c07,c05,c06,c04", 4},
		{"to", stores.Query{To: mustTime(t, day(2))}, "c02,c01", 2},
		{"from and to", stores.Query{From: mustTime(t, day(2)).Add(time.Hour), To: mustTime(t, day(5)).Add(-time.Hour)}, "c04,c03", 2},
		{"offset and limit", stores.Query{Offset: 2, Limit: 3}, "c06,c04,c03", 7},
		{"offset past the end", stores.Query{Offset: 50}, "", 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ix.Search(t.Context(), index, tc.q)
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			if got := ids(r); got != tc.want || r.Total != tc.total {
				t.Errorf("Search(%+v) = %q total %d, want %q total %d", tc.q, got, r.Total, tc.want, tc.total)
			}
		})
	}

	t.Run("returns whole documents", func(t *testing.T) {
		r, err := ix.Search(t.Context(), index, stores.Query{ContactID: "c01"})
		if err != nil || len(r.Docs) != 1 {
			t.Fatalf("Search = %v, %v", r, err)
		}
		if got, want := FieldsJSON(t, r.Docs[0].Fields), FieldsJSON(t, docs[0].Fields); got != want {
			t.Errorf("document = %s, want %s", got, want)
		}
	})

	t.Run("default and maximum limit", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		many := make([]stores.Doc, 0, 510)
		for i := range 510 {
			many = append(many, stores.Doc{ID: fmt.Sprintf("m%04d", i), Fields: map[string]any{"queue": "bulk"}})
		}
		MustPutDocs(t, ix, index, many...)
		for _, tc := range []struct{ limit, want int }{{0, 25}, {-1, 25}, {10, 10}, {500, 500}, {100000, 500}} {
			r, err := ix.Search(t.Context(), index, stores.Query{Queue: "bulk", Limit: tc.limit})
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			if len(r.Docs) != tc.want || r.Total != 510 {
				t.Errorf("Limit %d: %d docs total %d, want %d total 510", tc.limit, len(r.Docs), r.Total, tc.want)
			}
		}
	})
}

// hostileValues are inputs that a pattern-, wildcard- or query-building store
// would turn into "more than the one thing named": none may match anything
// but a value equal to it.
func hostileValues(realID string) []string {
	differ := "0"
	if strings.HasSuffix(realID, differ) {
		differ = "1"
	}
	return []string{
		"", " ", "%", "_", "*", "?", "a*", "a%", "a_", "a?", "*:*", ".*", "^", "$",
		"' OR 1=1 --", `" OR ""="`, "'; DROP TABLE x; --", `\`, "NULL", "null",
		"contact_id:*", `{"match_all":{}}`, "\x00",
		realID[:len(realID)-1],          // prefix
		realID + "0",                    // longer
		realID[:len(realID)-1] + differ, // last character differs
		strings.ToUpper(realID),         // case differs
		" " + realID, realID + " ",      // padding
		realID[:8] + "%", realID[:8] + "*", realID[:8] + "_",
	}
}

// UniqueName returns a name that passes CheckIdent and CheckBucket (after
// swapping "_" for "-"), unique per call, so suites can share a server.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + "_" + hex.EncodeToString(b)
}

// NewUUID returns a random UUID in the form contact and request IDs take.
func NewUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func setupIndex(t *testing.T, newIndex func(t *testing.T) stores.Index) (stores.Index, string) {
	t.Helper()
	ix, index := newIndex(t), UniqueName("ix")
	if err := ix.EnsureIndex(t.Context(), index); err != nil {
		t.Fatalf("EnsureIndex: %v", err)
	}
	return ix, index
}

func MustPutDocs(t *testing.T, ix stores.Index, index string, docs ...stores.Doc) {
	t.Helper()
	if err := ix.Put(t.Context(), index, docs...); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

// expectIndexCountOf checks the count of documents matching any of values.
func expectIndexCountOf(t *testing.T, ix stores.Index, index, field string, values []string, want int64) {
	t.Helper()
	n, err := ix.Count(t.Context(), index, field, values...)
	if err != nil || n != want {
		t.Fatalf("Count(%s, %d values) = %d, %v; want %d, nil", field, len(values), n, err, want)
	}
}

func ExpectIndexCount(t *testing.T, ix stores.Index, index, field, value string, want int64) {
	t.Helper()
	n, err := ix.Count(t.Context(), index, field, value)
	if err != nil || n != want {
		t.Fatalf("Count(%s=%q) = %d, %v; want %d, nil", field, value, n, err, want)
	}
}

// FieldsJSON renders fields canonically (sorted keys), for byte-for-byte
// comparison.
func FieldsJSON(t *testing.T, f map[string]any) string {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func snapshotDocs(t *testing.T, ix stores.Index, index string, ids ...string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	for _, id := range ids {
		d, err := ix.Get(t.Context(), index, id)
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		snap[id] = FieldsJSON(t, d.Fields)
	}
	return snap
}

func expectDocsUnchanged(t *testing.T, ix stores.Index, index string, before map[string]string) {
	t.Helper()
	for id, want := range before {
		d, err := ix.Get(t.Context(), index, id)
		if err != nil {
			t.Errorf("document %s: %v (it should be untouched)", id, err)
			continue
		}
		if got := FieldsJSON(t, d.Fields); got != want {
			t.Errorf("document %s changed: %s, want %s", id, got, want)
		}
	}
}
