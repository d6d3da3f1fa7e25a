package opensearch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// newTestOpenSearchIndex connects to the server named by
// ERASURE_TEST_OPENSEARCH_URL with a prefix of its own, and deletes every
// index under that prefix when the test ends.
func newTestOpenSearchIndex(t *testing.T) *Index {
	t.Helper()
	addr := os.Getenv("ERASURE_TEST_OPENSEARCH_URL")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ERASURE_TEST_OPENSEARCH_URL not set")
		}
		t.Skip("ERASURE_TEST_OPENSEARCH_URL not set")
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	prefix := "t" + hex.EncodeToString(b) + "_"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ix, err := New(ctx, Config{URLs: strings.Split(addr, ","), IndexPrefix: prefix})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deleteOpenSearchIndexes(ctx, ix); err != nil {
			t.Errorf("delete test indexes: %v", err)
		}
	})
	return ix
}

// deleteOpenSearchIndexes removes every index under the adapter's prefix,
// naming each one (a wildcard delete may be disabled on the cluster).
func deleteOpenSearchIndexes(ctx context.Context, o *Index) error {
	if o.prefix == "" {
		return stores.Permanent(errorString("refusing to delete indexes without a prefix"))
	}
	status, body, err := o.do(ctx, http.MethodGet, "/_cat/indices/"+o.prefix+"*",
		url.Values{"format": {"json"}, "h": {"index"}, "expand_wildcards": {"all"}}, nil, "")
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return osStatusErr("list test indexes", status, body)
	}
	var rows []struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(body, &rows); err != nil {
		return err
	}
	for _, r := range rows {
		if !strings.HasPrefix(r.Index, o.prefix) {
			continue
		}
		status, body, err := o.do(ctx, http.MethodDelete, "/"+r.Index, nil, nil, "")
		if err != nil {
			return err
		}
		if status/100 != 2 && status != http.StatusNotFound {
			return osStatusErr("delete test index", status, body)
		}
	}
	return nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestOpenSearchIndexContract(t *testing.T) {
	storetest.TestIndex(t, func(t *testing.T) stores.Index { return newTestOpenSearchIndex(t) })
}

// TestOpenSearchSearchTextIsLiteral checks that wildcard characters in the
// search text are escaped: "*", "?" and "\" match only themselves.
func TestOpenSearchSearchTextIsLiteral(t *testing.T) {
	ix := newTestOpenSearchIndex(t)
	ctx := t.Context()
	index := storetest.UniqueName("ix")
	if err := ix.EnsureIndex(ctx, index); err != nil {
		t.Fatalf("EnsureIndex: %v", err)
	}
	storetest.MustPutDocs(t, ix, index,
		stores.Doc{ID: "plain", Fields: map[string]any{"customer_name": "Ann Lee", "customer_email": "ann@example.com"}},
		stores.Doc{ID: "star", Fields: map[string]any{"customer_name": "St*r Person"}},
		stores.Doc{ID: "question", Fields: map[string]any{"customer_phone": "+44 7700 ?00"}},
		stores.Doc{ID: "backslash", Fields: map[string]any{"customer_email": `back\slash@example.com`}},
		stores.Doc{ID: "other", Fields: map[string]any{"agent": "*", "queue": `\`}},
	)
	for _, tc := range []struct{ text, want string }{
		{"*", "star"},
		{"?", "question"},
		{`\`, "backslash"},
		{"t*r", "star"},
		{"st*", "star"},
		{"s?r", ""},
		{"a??", ""},
		{`\*`, ""},
		{`*\`, ""},
		{"**", ""},
		{"ann*", ""},
		{"?00", "question"},
		{`k\s`, "backslash"},
		{"ANN", "plain"},
	} {
		r, err := ix.Search(ctx, index, stores.Query{Text: tc.text})
		if err != nil {
			t.Fatalf("Search(%q): %v", tc.text, err)
		}
		var got []string
		for _, d := range r.Docs {
			got = append(got, d.ID)
		}
		if strings.Join(got, ",") != tc.want || r.Total != int64(len(got)) {
			t.Errorf("Search(Text %q) = %v total %d, want %q", tc.text, got, r.Total, tc.want)
		}
	}
}

// TestOpenSearchIndexDetails covers adapter-specific behaviour: document IDs
// that need escaping in a URL, hidden fields never leaking into documents,
// scalar types matching by their JSON text, and missing indexes.
func TestOpenSearchIndexDetails(t *testing.T) {
	ix := newTestOpenSearchIndex(t)
	ctx := t.Context()
	index := storetest.UniqueName("ix")
	odd := []string{"a/b", "a?b", "a#b", "..", "a b", "ü%20"}
	var docs []stores.Doc
	for i, id := range odd {
		docs = append(docs, stores.Doc{ID: id, Fields: map[string]any{"i": i, "flag": true, "obj": map[string]any{"x": "y"}}})
	}
	// Put creates the index with the mapping.
	storetest.MustPutDocs(t, ix, index, docs...)
	for _, d := range docs {
		got, err := ix.Get(ctx, index, d.ID)
		if err != nil {
			t.Fatalf("Get(%q): %v", d.ID, err)
		}
		if got.ID != d.ID || storetest.FieldsJSON(t, got.Fields) != storetest.FieldsJSON(t, d.Fields) {
			t.Errorf("Get(%q) = %s %s, want %s", d.ID, got.ID, storetest.FieldsJSON(t, got.Fields), storetest.FieldsJSON(t, d.Fields))
		}
	}
	storetest.ExpectIndexCount(t, ix, index, "i", "3", 1)
	storetest.ExpectIndexCount(t, ix, index, "flag", "true", int64(len(odd)))
	storetest.ExpectIndexCount(t, ix, index, "_id", "a/b", 1)
	r, err := ix.Search(ctx, index, stores.Query{})
	if err != nil || r.Total != int64(len(odd)) {
		t.Fatalf("Search = %v, %v", r, err)
	}
	for _, d := range r.Docs {
		for k := range d.Fields {
			if strings.HasPrefix(k, "@") {
				t.Errorf("document %q has hidden field %q", d.ID, k)
			}
		}
	}
	if n, err := ix.DeleteIDs(ctx, index, odd...); err != nil || n != int64(len(odd)) {
		t.Fatalf("DeleteIDs = %d, %v; want %d", n, err, len(odd))
	}

	missing := storetest.UniqueName("missing")
	if _, err := ix.DeleteIDs(ctx, missing, "x"); err == nil || stores.IsRetryable(err) {
		t.Errorf("DeleteIDs on a missing index: err = %v, want a permanent error", err)
	}
	if _, err := ix.Search(ctx, missing, stores.Query{}); err == nil || stores.IsRetryable(err) {
		t.Errorf("Search on a missing index: err = %v, want a permanent error", err)
	}
	if _, err := ix.Count(ctx, missing, "contact_id", "x"); err == nil || stores.IsRetryable(err) {
		t.Errorf("Count on a missing index: err = %v, want a permanent error", err)
	}
}

func TestOpenSearchUnreachableIsRetryable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := New(ctx, Config{URLs: []string{"http://127.0.0.1:1"}})
	if err == nil || !stores.IsRetryable(err) {
		t.Fatalf("New(unreachable) err = %v, want a retryable error", err)
	}
}

// An index that maps the contact field as analysed text would make a term
// query match nothing, so deletion and verification would both "succeed"
// with the documents still there. The adapter refuses such a field.
func TestOpenSearchRefusesTextMappedField(t *testing.T) {
	o := newTestOpenSearchIndex(t)
	ctx := t.Context()
	name, err := o.name("legacy_ctr")
	if err != nil {
		t.Fatal(err)
	}
	mapping := []byte(`{"mappings":{"properties":{"contact_id":{"type":"text"}}}}`)
	status, body, err := o.do(ctx, http.MethodPut, "/"+name, nil, mapping, "")
	if err != nil || status/100 != 2 {
		t.Fatalf("create index: %d %s %v", status, body, err)
	}
	t.Cleanup(func() { o.do(context.Background(), http.MethodDelete, "/"+name, nil, nil, "") })
	doc := []byte(`{"contact_id":"` + idA + `"}`)
	if status, body, err := o.do(ctx, http.MethodPut, "/"+name+"/_doc/1", url.Values{"refresh": {"true"}}, doc, ""); err != nil || status/100 != 2 {
		t.Fatalf("index doc: %d %s %v", status, body, err)
	}
	if _, err := o.Count(ctx, "legacy_ctr", "contact_id", idA); err == nil || stores.IsRetryable(err) {
		t.Fatalf("Count on a text field: %v, want a permanent error", err)
	}
	if _, err := o.DeleteTerm(ctx, "legacy_ctr", "contact_id", idA); err == nil || stores.IsRetryable(err) {
		t.Fatalf("DeleteTerm on a text field: %v, want a permanent error", err)
	}
}

const idA = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"
