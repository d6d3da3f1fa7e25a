package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// testIndexPrefixes checks the Agent and Queue filters of Search and
// FieldValues, the UI's suggestions: a value matches when it starts with
// the prefix, ignoring the case of ASCII letters, and every other character
// of the prefix is literal.
func testIndexPrefixes(t *testing.T, newIndex func(t *testing.T) stores.Index) {
	ix, index := setupIndex(t, newIndex)
	doc := func(id, agent, queue string) stores.Doc {
		return stores.Doc{ID: id, Fields: map[string]any{"contact_id": id, "agent": agent, "queue": queue}}
	}
	MustPutDocs(t, ix, index,
		doc("p01", "Dale.Smith", "Sales EMEA"),
		doc("p02", "dale.jones", "sales-uk"),
		doc("p03", "DALEK", "Support"),
		doc("p04", "Zoë.Martin", "Ventes Île"),
		doc("p05", "zoë.ng", "ventes"),
		doc("p06", "a%b_c*d", "x?y"),
		doc("p07", "Dale.Smith", "Sales EMEA"),
		stores.Doc{ID: "p08", Fields: map[string]any{"contact_id": "p08", "tags": []any{"alpha", "beta"}}},
	)

	// Undated documents come in ID order.
	for _, tc := range []struct {
		name string
		q    stores.Query
		want string
	}{
		{"agent prefix", stores.Query{Agent: "dale"}, "p01,p02,p03,p07"},
		{"agent prefix in capitals", stores.Query{Agent: "DALE."}, "p01,p02,p07"},
		{"whole agent in other case", stores.Query{Agent: "dale.SMITH"}, "p01,p07"},
		{"agent is not a substring", stores.Query{Agent: "ale"}, ""},
		{"agent longer than any value", stores.Query{Agent: "dale.smith2"}, ""},
		{"non-ASCII agent", stores.Query{Agent: "zoë"}, "p04,p05"},
		{"percent is literal", stores.Query{Agent: "%"}, ""},
		{"underscore is literal", stores.Query{Agent: "_"}, ""},
		{"star is literal", stores.Query{Agent: "*"}, ""},
		{"pattern characters match themselves", stores.Query{Agent: "a%b_c*"}, "p06"},
		{"question mark is literal", stores.Query{Queue: "?"}, ""},
		{"queue with a question mark", stores.Query{Queue: "X?"}, "p06"},
		{"queue prefix ignoring case", stores.Query{Queue: "sales"}, "p01,p02,p07"},
		{"queue with a space", stores.Query{Queue: "SALES e"}, "p01,p07"},
		{"non-ASCII queue", stores.Query{Queue: "ventes"}, "p04,p05"},
		{"query syntax", stores.Query{Agent: "' OR 1=1 --"}, ""},
		{"agent and queue", stores.Query{Agent: "d", Queue: "s"}, "p01,p02,p03,p07"},
		{"agent and queue disagree", stores.Query{Agent: "zoë", Queue: "sales"}, ""},
	} {
		t.Run("Search/"+tc.name, func(t *testing.T) {
			r, err := ix.Search(t.Context(), index, tc.q)
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			var got []string
			for _, d := range r.Docs {
				got = append(got, d.ID)
			}
			if strings.Join(got, ",") != tc.want || r.Total != int64(len(got)) {
				t.Errorf("Search(%+v) = %q total %d, want %q", tc.q, got, r.Total, tc.want)
			}
		})
	}

	// Distinct values in byte order, each once however many documents hold it.
	for _, tc := range []struct {
		field, prefix string
		limit         int
		want          []string
	}{
		{"agent", "dale", 10, []string{"DALEK", "Dale.Smith", "dale.jones"}},
		{"agent", "", 10, []string{"DALEK", "Dale.Smith", "Zoë.Martin", "a%b_c*d", "dale.jones", "zoë.ng"}},
		{"agent", "", 2, []string{"DALEK", "Dale.Smith"}},
		{"agent", "ZOË", 10, nil}, // ASCII letters fold; others compare exactly
		{"agent", "Zoë", 10, []string{"Zoë.Martin", "zoë.ng"}},
		{"agent", "%", 10, nil},
		{"agent", "a%", 10, []string{"a%b_c*d"}},
		{"agent", "nobody", 10, nil},
		{"queue", "SALES", 10, []string{"Sales EMEA", "sales-uk"}},
		{"queue", "x?", 10, []string{"x?y"}},
		// Another value of a matching document is not a match.
		{"tags", "al", 10, []string{"alpha"}},
		{"tags", "", 10, []string{"alpha", "beta"}},
		{"no_such_field", "", 10, nil},
	} {
		t.Run(fmt.Sprintf("FieldValues/%s/%q/%d", tc.field, tc.prefix, tc.limit), func(t *testing.T) {
			got, err := ix.FieldValues(t.Context(), index, tc.field, tc.prefix, tc.limit)
			if err != nil {
				t.Fatalf("FieldValues: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("FieldValues(%s, %q, %d) = %q, want %q", tc.field, tc.prefix, tc.limit, got, tc.want)
			}
		})
	}

	t.Run("FieldValues/bounded", func(t *testing.T) {
		ix, index := setupIndex(t, newIndex)
		docs := make([]stores.Doc, 0, 60)
		for i := range 60 {
			docs = append(docs, stores.Doc{ID: fmt.Sprintf("q%02d", i), Fields: map[string]any{"queue": fmt.Sprintf("bulk-%02d", i)}})
		}
		MustPutDocs(t, ix, index, docs...)
		for _, tc := range []struct{ limit, want int }{{0, 10}, {-1, 10}, {3, 3}, {1000, stores.FieldValuesMaxLimit}} {
			got, err := ix.FieldValues(t.Context(), index, "queue", "BULK-", tc.limit)
			if err != nil {
				t.Fatalf("FieldValues: %v", err)
			}
			if len(got) != tc.want || got[0] != "bulk-00" {
				t.Errorf("FieldValues limit %d = %d values from %q, want %d from bulk-00", tc.limit, len(got), got, tc.want)
			}
		}
	})

	t.Run("FieldValues/refused", func(t *testing.T) {
		for _, field := range []string{"_id", "Agent", "a b", ""} {
			if _, err := ix.FieldValues(t.Context(), index, field, "", 10); !errors.Is(err, stores.ErrPermanent) {
				t.Errorf("FieldValues(field %q): err = %v, want a permanent error", field, err)
			}
		}
		if _, err := ix.FieldValues(t.Context(), index, "agent", "\xff", 10); !errors.Is(err, stores.ErrPermanent) {
			t.Errorf("FieldValues(invalid UTF-8): err = %v, want a permanent error", err)
		}
		if _, err := ix.FieldValues(t.Context(), UniqueName("missing"), "agent", "", 10); err == nil {
			t.Error("FieldValues on a missing index: want an error")
		}
	})
}

// testAuditPrefixes checks AuditFilter.ActorPrefix, AuditCount and
// AuditActors: principals by prefix ignoring ASCII case, no character a
// pattern, and counts that ignore paging.
func testAuditPrefixes(t *testing.T, l stores.Ledger) {
	actors := []string{"Jane.DPO", "jane.dpo", "jake", "bulk_ops", "sso:ab12cd34:Jane", "jane.dpo"}
	var ids []string
	for i, actor := range actors {
		r := Request(LedgerBase.Add(time.Duration(i)*time.Hour), NewUUID())
		r.RequestedBy = actor
		MustPutRequest(t, l, r, r.RequestedAt.Add(time.Minute))
		if _, _, err := l.Complete(t.Context(), Outcome(r, schemas.StatusSucceeded, r.RequestedAt.Add(time.Second)), "Delete Contact"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RequestID)
	}
	for _, tc := range []struct {
		name string
		f    stores.AuditFilter
		want []int // indexes into actors, newest first
	}{
		{"prefix", stores.AuditFilter{ActorPrefix: "jane"}, []int{5, 1, 0}},
		{"prefix in capitals", stores.AuditFilter{ActorPrefix: "JANE.D"}, []int{5, 1, 0}},
		{"short prefix", stores.AuditFilter{ActorPrefix: "ja"}, []int{5, 2, 1, 0}},
		{"not a substring", stores.AuditFilter{ActorPrefix: "ane"}, nil},
		{"underscore is literal", stores.AuditFilter{ActorPrefix: "bulk_"}, []int{3}},
		{"underscore matches only itself", stores.AuditFilter{ActorPrefix: "bulk-"}, nil},
		{"percent is literal", stores.AuditFilter{ActorPrefix: "%"}, nil},
		{"star is literal", stores.AuditFilter{ActorPrefix: "*"}, nil},
		{"single sign-on principal", stores.AuditFilter{ActorPrefix: "SSO:AB12"}, []int{4}},
		{"exact actor stays exact", stores.AuditFilter{Actor: "jane.dpo"}, []int{5, 1}},
		{"exact actor and prefix", stores.AuditFilter{Actor: "jane.dpo", ActorPrefix: "JANE"}, []int{5, 1}},
		{"exact actor and another prefix", stores.AuditFilter{Actor: "jane.dpo", ActorPrefix: "jak"}, nil},
		{"paging does not change the count", stores.AuditFilter{ActorPrefix: "j", Offset: 1, Limit: 2}, []int{5, 2, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, i := range tc.want {
				want = append(want, ids[i])
			}
			page := want
			if tc.f.Limit > 0 {
				page = want[tc.f.Offset:min(len(want), tc.f.Offset+tc.f.Limit)]
			}
			var got []string
			for _, e := range MustAudit(t, l, tc.f) {
				got = append(got, e.RequestID)
			}
			if !slices.Equal(got, page) {
				t.Errorf("Audit(%+v) = %q, want %q", tc.f, got, page)
			}
			n, err := l.AuditCount(t.Context(), tc.f)
			if err != nil || n != int64(len(want)) {
				t.Errorf("AuditCount(%+v) = %d, %v; want %d", tc.f, n, err, len(want))
			}
		})
	}
	t.Run("count of everything", func(t *testing.T) {
		if n, err := l.AuditCount(t.Context(), stores.AuditFilter{}); err != nil || n != int64(len(actors)) {
			t.Errorf("AuditCount() = %d, %v; want %d", n, err, len(actors))
		}
	})
	for _, tc := range []struct {
		prefix string
		limit  int
		want   []string
	}{
		{"ja", 10, []string{"Jane.DPO", "jake", "jane.dpo"}},
		{"JANE", 10, []string{"Jane.DPO", "jane.dpo"}},
		{"", 10, []string{"Jane.DPO", "bulk_ops", "jake", "jane.dpo", "sso:ab12cd34:Jane"}},
		{"", 2, []string{"Jane.DPO", "bulk_ops"}},
		{"%", 10, nil},
		{"_", 10, nil},
		{"nobody", 10, nil},
	} {
		t.Run(fmt.Sprintf("AuditActors/%q/%d", tc.prefix, tc.limit), func(t *testing.T) {
			got, err := l.AuditActors(t.Context(), tc.prefix, tc.limit)
			if err != nil {
				t.Fatalf("AuditActors: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("AuditActors(%q, %d) = %q, want %q", tc.prefix, tc.limit, got, tc.want)
			}
		})
	}
}
