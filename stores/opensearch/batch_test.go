package opensearch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// requestLog records the requests an Index sends, as "METHOD /path?query".
type requestLog struct {
	mu    sync.Mutex
	calls []string
	base  http.RoundTripper
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.calls = append(l.calls, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	l.mu.Unlock()
	return l.base.RoundTrip(r)
}

// take returns the requests logged since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

// logRequests makes ix send its requests through a requestLog.
func logRequests(t *testing.T, ix *Index) *requestLog {
	t.Helper()
	l := &requestLog{base: http.DefaultTransport}
	client, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{
		Addresses: strings.Split(os.Getenv("ERASURE_TEST_OPENSEARCH_URL"), ","),
		Transport: l,
	}})
	if err != nil {
		t.Fatal(err)
	}
	ix.client = client
	return l
}

// calls counts the requests whose path ends with suffix, and those of them
// that asked for a refresh of their own.
func calls(log []string, suffix string) (n, refreshing int) {
	for _, c := range log {
		path, query, _ := strings.Cut(c, "?")
		if strings.HasSuffix(path, suffix) {
			n++
			if strings.Contains(query, "refresh=true") || strings.Contains(query, "refresh=wait_for") {
				refreshing++
			}
		}
	}
	return n, refreshing
}

// A pipeline batch of 10,000 contacts is one _count and one
// _delete_by_query; 3,000 IDs are three _bulk requests of 1,000. Neither refreshes
// per request, each refreshes once at the end, and the deletions are
// visible when it returns.
func TestOpenSearchBatchDeletes(t *testing.T) {
	ix := newTestOpenSearchIndex(t)
	ctx := t.Context()
	index := storetest.UniqueName("ctr")
	contacts := make([]string, stores.MaxBatch)
	docs := make([]stores.Doc, 0, len(contacts)+3000)
	for i := range contacts {
		contacts[i] = storetest.NewUUID()
		docs = append(docs, stores.Doc{ID: "ctr-" + contacts[i], Fields: map[string]any{"contact_id": contacts[i]}})
	}
	// 3,000 IDs, the last of them without a document.
	ids := make([]string, 3000)
	for i := range ids {
		ids[i] = fmt.Sprintf("rec-%05d", i)
		if i < len(ids)-1 {
			docs = append(docs, stores.Doc{ID: ids[i], Fields: map[string]any{"contact_id": "kept"}})
		}
	}
	storetest.MustPutDocs(t, ix, index, docs...)
	log := logRequests(t, ix)

	if n, err := ix.Count(ctx, index, "contact_id", contacts...); err != nil || n != int64(len(contacts)) {
		t.Fatalf("Count(batch) = %d, %v; want %d", n, err, len(contacts))
	}
	if n, _ := calls(log.take(), "/_count"); n != 1 {
		t.Errorf("Count of %d values sent %d _count requests, want 1", len(contacts), n)
	}

	start := time.Now()
	n, err := ix.DeleteTerm(ctx, index, "contact_id", contacts...)
	if err != nil || n != int64(len(contacts)) {
		t.Fatalf("DeleteTerm(batch) = %d, %v; want %d", n, err, len(contacts))
	}
	t.Logf("DeleteTerm of %d values: %s", len(contacts), time.Since(start))
	sent := log.take()
	if dbq, refreshing := calls(sent, "/_delete_by_query"); dbq != 1 || refreshing != 0 {
		t.Errorf("DeleteTerm sent %d _delete_by_query (%d refreshing), want 1 without a refresh of its own", dbq, refreshing)
	}
	if r, _ := calls(sent, "/_refresh"); r != 1 {
		t.Errorf("DeleteTerm refreshed %d times, want once", r)
	}
	if n, err := ix.Count(ctx, index, "contact_id", contacts...); err != nil || n != 0 {
		t.Errorf("Count(batch) right after DeleteTerm = %d, %v; want 0", n, err)
	}

	start = time.Now()
	n, err = ix.DeleteIDs(ctx, index, ids...)
	if err != nil || n != int64(len(ids)-1) {
		t.Fatalf("DeleteIDs = %d, %v; want %d", n, err, len(ids)-1)
	}
	t.Logf("DeleteIDs of %d IDs: %s", len(ids), time.Since(start))
	sent = log.take()
	if b, refreshing := calls(sent, "/_bulk"); b != 3 || refreshing != 0 {
		t.Errorf("DeleteIDs sent %d _bulk requests (%d refreshing), want 3 without a refresh of their own", b, refreshing)
	}
	if r, _ := calls(sent, "/_refresh"); r != 1 {
		t.Errorf("DeleteIDs refreshed %d times, want once", r)
	}
	if n, err := ix.Count(ctx, index, "_id", ids...); err != nil || n != 0 {
		t.Errorf("Count(_id) right after DeleteIDs = %d, %v; want 0", n, err)
	}
}

// A batch longer than a terms query takes is split; counts add up, values
// repeated or absent change nothing, and only exact matches go.
func TestOpenSearchBatchAcrossTermsQueries(t *testing.T) {
	ix := newTestOpenSearchIndex(t)
	ix.termsBatch = 4
	ctx := t.Context()
	index := storetest.UniqueName("ctr")
	var batch []string
	var docs []stores.Doc
	for i := range 10 {
		c := fmt.Sprintf("c%d", i)
		batch = append(batch, c)
		docs = append(docs,
			stores.Doc{ID: c + "-a", Fields: map[string]any{"contact_id": c}},
			stores.Doc{ID: c + "-b", Fields: map[string]any{"contact_id": c}})
	}
	// Near misses: a longer value, another case, a value with spaces.
	near := []stores.Doc{
		{ID: "n1", Fields: map[string]any{"contact_id": "c10"}},
		{ID: "n2", Fields: map[string]any{"contact_id": "C1"}},
		{ID: "n3", Fields: map[string]any{"contact_id": "c1 c2"}},
	}
	storetest.MustPutDocs(t, ix, index, append(docs, near...)...)
	log := logRequests(t, ix)
	values := append(append([]string{}, batch...), "c3", "absent", "c0")
	if n, err := ix.Count(ctx, index, "contact_id", values...); err != nil || n != 20 {
		t.Fatalf("Count = %d, %v; want 20", n, err)
	}
	if n, _ := calls(log.take(), "/_count"); n != 3 {
		t.Errorf("%d _count requests for 11 distinct values in lists of 4, want 3", n)
	}
	if n, err := ix.DeleteTerm(ctx, index, "contact_id", values...); err != nil || n != 20 {
		t.Fatalf("DeleteTerm = %d, %v; want 20", n, err)
	}
	sent := log.take()
	if dbq, _ := calls(sent, "/_delete_by_query"); dbq != 3 {
		t.Errorf("%d _delete_by_query requests, want 3", dbq)
	}
	if r, _ := calls(sent, "/_refresh"); r != 1 {
		t.Errorf("%d refreshes, want 1", r)
	}
	for _, d := range near {
		if _, err := ix.Get(ctx, index, d.ID); err != nil {
			t.Errorf("near miss %s: %v", d.ID, err)
		}
	}
	if n, err := ix.Count(ctx, index, "_id", "n1", "n2", "n3", "c0-a", "c9-b"); err != nil || n != 3 {
		t.Errorf("Count(_id) = %d, %v; want the 3 near misses", n, err)
	}
	for name, call := range map[string]func() error{
		"Count":      func() error { _, err := ix.Count(ctx, index, "contact_id"); return err },
		"DeleteTerm": func() error { _, err := ix.DeleteTerm(ctx, index, "contact_id"); return err },
		"empty":      func() error { _, err := ix.DeleteTerm(ctx, index, "contact_id", "c10", ""); return err },
	} {
		if err := call(); !errors.Is(err, stores.ErrPermanent) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
	}
	storetest.ExpectIndexCount(t, ix, index, "contact_id", "c10", 1)
}

// A cluster that turns requests away (a full write queue, a tripped
// breaker) fails them retryably, whether it says so by status or only by
// error type, for the whole request or for items of it.
func TestOpenSearchRejectionsAreRetryable(t *testing.T) {
	const rejected = `{"type":"es_rejected_execution_exception","reason":"rejected execution of c-secret"}`
	var mode string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/":
			fmt.Fprint(w, `{"version":{"number":"2.19.6"}}`)
		case r.Method == http.MethodHead:
		case strings.Contains(r.URL.Path, "/_mapping/field/"):
			fmt.Fprint(w, `{"ix":{"mappings":{"contact_id":{"mapping":{"contact_id":{"type":"keyword"}}}}}}`)
		case strings.HasSuffix(r.URL.Path, "/_refresh"):
			fmt.Fprint(w, `{"_shards":{"total":1,"successful":1,"failed":0}}`)
		case r.URL.Path == "/_bulk":
			fmt.Fprint(w, `{"errors":true,"items":[{"delete":{"_id":"c-secret","status":429,"error":`+rejected+`}}]}`)
		case mode == "status":
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":`+rejected+`,"status":429}`)
		case mode == "type":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"type":"circuit_breaking_exception","reason":"c-secret"},"status":400}`)
		case mode == "failures":
			fmt.Fprint(w, `{"deleted":3,"version_conflicts":0,"timed_out":false,"failures":[{"index":"ix","id":"c-secret","cause":`+rejected+`,"status":429}]}`)
		case mode == "bad request":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"type":"parsing_exception","reason":"c-secret"},"status":400}`)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ix, err := New(ctx, Config{URLs: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error, wantRetryable bool) {
		t.Helper()
		if err == nil || errors.Is(err, stores.ErrRetryable) != wantRetryable || errors.Is(err, stores.ErrPermanent) == wantRetryable {
			t.Errorf("%s: err = %v, want retryable %v", what, err, wantRetryable)
		}
		if err != nil && strings.Contains(err.Error(), "c-secret") {
			t.Errorf("%s: error %q quotes a value", what, err)
		}
	}
	_, err = ix.DeleteIDs(ctx, "ix", "c-secret")
	check("bulk item rejected", err, true)
	for _, tc := range []struct {
		mode      string
		retryable bool
	}{{"status", true}, {"type", true}, {"failures", true}, {"bad request", false}} {
		mode = tc.mode
		_, err = ix.DeleteTerm(ctx, "ix", "contact_id", "c-secret")
		check("delete by query, "+tc.mode, err, tc.retryable)
		_, err = ix.Count(ctx, "ix", "contact_id", "c-secret")
		if tc.mode != "failures" {
			check("count, "+tc.mode, err, tc.retryable)
		}
	}
}
