package opensearch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// A deleted document stays in its segment (and the translog) until a merge
// drops it, which the shard's retention lease holds off for about 30 s.
// Purge flushes, reports by when the background expunge will be done, and
// once it reports the documents gone, the index has no deleted document
// and the deleted customer's email, phone and contact ID are in none of
// the shard's files.
func TestOpenSearchPurgeExpungesDeletedDocuments(t *testing.T) {
	o := newTestOpenSearchIndex(t)
	t.Cleanup(func() { o.Close() })
	ctx := t.Context()
	index := storetest.UniqueName("ix")
	mark := strings.ReplaceAll(storetest.NewUUID(), "-", "")
	target := storetest.NewUUID()
	email, phone := "zq"+mark+"@example.com", "+44 7700 "+mark[:12]
	var docs []stores.Doc
	for i := range 300 { // one large segment, so the deletion is well under 10 %
		docs = append(docs, stores.Doc{ID: fmt.Sprintf("ctr-%03d", i), Fields: map[string]any{
			"contact_id": storetest.NewUUID(), "customer_email": fmt.Sprintf("kept%03d-%s@example.com", i, mark[:8]),
			"transcript": strings.Repeat("hello ", 100),
		}})
	}
	docs = append(docs, stores.Doc{ID: "ctr-target", Fields: map[string]any{
		"contact_id": target, "customer_email": email, "customer_phone": phone,
	}})
	storetest.MustPutDocs(t, o, index, docs...)
	name, _ := o.name(index)
	if status, body, err := o.do(ctx, http.MethodPost, "/"+name+"/_flush", nil, nil, ""); err != nil || status/100 != 2 {
		t.Fatalf("flush: %d %s %v", status, body, err)
	}
	dir := openSearchShardDir(t, o, name)
	// The personal strings begin uniquely, so Lucene stores them whole. A
	// random contact ID may not be: its terms and compressed source can
	// share a prefix or a run with another ID's, so it is sought only
	// afterwards.
	for _, s := range []string{email, phone, "kept000-" + mark[:8]} {
		if len(osFilesHolding(t, dir, s)) == 0 {
			t.Fatalf("%q not found in the shard's files before the delete: the check below would prove nothing", s)
		}
	}

	if n, err := o.DeleteTerm(ctx, index, "contact_id", target); err != nil || n != 1 {
		t.Fatalf("DeleteTerm = %d, %v", n, err)
	}
	deleted := time.Now()
	st, err := o.Purge(ctx, index)
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	storetest.ExpectPurgeState(t, st, deleted)
	if st.PurgeBy.IsZero() || st.Job != osExpungeJob || st.PurgeBy.After(deleted.Add(5*time.Minute)) {
		t.Fatalf("right after the delete: %+v; want pending on the expunge merge within minutes", st)
	}
	// A second deletion while the expunge is pending joins it.
	if again, err := o.Purge(ctx, index); err != nil || again.Job != osExpungeJob {
		t.Fatalf("second Purge = %+v, %v", again, err)
	}
	o.expunge.mu.Lock()
	pending := len(o.expunge.pending)
	o.expunge.mu.Unlock()
	if pending != 1 {
		t.Errorf("%d expunges pending, want the one for the index", pending)
	}
	for _, f := range osFilesHolding(t, dir, email) {
		if strings.Contains(f, "translog") {
			t.Errorf("the deleted email is still in the translog after Purge flushed: %s", f)
		}
	}

	deadline := time.Now().Add(90 * time.Second)
	for st.PurgedAt.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("Purge still pending 90 s after the delete: %+v (docs.deleted %d)", st, osDeletedDocs(t, o, name))
		}
		time.Sleep(2 * time.Second)
		if st, err = o.Purge(ctx, index); err != nil {
			t.Fatalf("Purge: %v", err)
		}
	}
	at, ok := o.Expunged(index)
	t.Logf("expunge done %.1fs after the delete (recorded at %s, %v)", time.Since(deleted).Seconds(), at.Format(time.RFC3339), ok)
	if !ok || at.Before(deleted) {
		t.Errorf("Expunged = %s, %v; want a time after the delete", at, ok)
	}
	if n := osDeletedDocs(t, o, name); n != 0 {
		t.Errorf("_stats docs.deleted = %d after Purge reported the documents gone", n)
	}
	// Lucene deletes a merged-away segment's files once nothing reads it;
	// that follows the refresh closely but not in the same instant.
	var left []string
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		left = nil
		for _, s := range []string{email, phone, target} {
			left = append(left, osFilesHolding(t, dir, s)...)
		}
		if len(left) == 0 || time.Now().After(end) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("the deleted customer's data is still in %v", left)
	}
	if len(osFilesHolding(t, dir, "kept000-"+mark[:8])) == 0 {
		t.Errorf("another customer's document is gone from the shard's files")
	}
	storetest.ExpectIndexCount(t, o, index, "contact_id", target, 0)
}

// Purge of an index with no deleted document reports the data gone now.
func TestOpenSearchPurgeWithNothingDeleted(t *testing.T) {
	o := newTestOpenSearchIndex(t)
	t.Cleanup(func() { o.Close() })
	index := storetest.UniqueName("ix")
	storetest.MustPutDocs(t, o, index, stores.Doc{ID: "a", Fields: map[string]any{"contact_id": storetest.NewUUID()}})
	start := time.Now()
	st, err := o.Purge(t.Context(), index)
	if err != nil {
		t.Fatal(err)
	}
	storetest.ExpectPurgeState(t, st, start)
	if st.PurgedAt.IsZero() {
		t.Errorf("Purge = %+v, want PurgedAt", st)
	}
	if _, err := o.Purge(t.Context(), storetest.UniqueName("missing")); err == nil || stores.IsRetryable(err) {
		t.Errorf("Purge of a missing index: %v, want a permanent error", err)
	}
}

func TestParseOSDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"12h": 12 * time.Hour, "30s": 30 * time.Second, "500ms": 500 * time.Millisecond, "1d": 24 * time.Hour} {
		if got, ok := parseOSDuration(in); !ok || got != want {
			t.Errorf("parseOSDuration(%q) = %s, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "12", "-1s", "1.5h", "h"} {
		if _, ok := parseOSDuration(in); ok {
			t.Errorf("parseOSDuration(%q) accepted", in)
		}
	}
}

// openSearchShardDir is the directory of shard 0 of an index. The test
// server runs on this machine, so its files can be read directly.
func openSearchShardDir(t *testing.T, o *Index, name string) string {
	t.Helper()
	status, body, err := o.do(t.Context(), http.MethodGet, "/"+name+"/_stats/docs", map[string][]string{"level": {"shards"}}, nil, "")
	if err != nil || status/100 != 2 {
		t.Fatalf("shard stats: %d %v", status, err)
	}
	var r struct {
		Indices map[string]struct {
			Shards map[string][]struct {
				ShardPath struct {
					DataPath string `json:"data_path"`
				} `json:"shard_path"`
			} `json:"shards"`
		} `json:"indices"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Indices[name].Shards["0"]) == 0 {
		t.Fatalf("shard stats: %v", err)
	}
	status, body, err = o.do(t.Context(), http.MethodGet, "/"+name+"/_settings/index.uuid", map[string][]string{"flat_settings": {"true"}}, nil, "")
	var s map[string]struct {
		Settings map[string]string `json:"settings"`
	}
	if err != nil || status/100 != 2 || json.Unmarshal(body, &s) != nil {
		t.Fatalf("index settings: %d %v", status, err)
	}
	dir := filepath.Join(r.Indices[name].Shards["0"][0].ShardPath.DataPath, "indices", s[name].Settings["index.uuid"], "0")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("shard directory %s not readable here (%v): this test needs the server on this machine", dir, err)
	}
	return dir
}

// osFilesHolding lists the files under dir whose bytes contain s.
func osFilesHolding(t *testing.T, dir, s string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while walking
			}
			return err
		}
		if d.IsDir() || d.Name() == "write.lock" {
			return nil
		}
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			found = append(found, strings.TrimPrefix(path, dir))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return found
}

// osDeletedDocs is docs.deleted of the index over all its shard copies.
func osDeletedDocs(t *testing.T, o *Index, name string) int64 {
	t.Helper()
	status, body, err := o.do(t.Context(), http.MethodGet, "/"+name+"/_stats/docs", nil, nil, "")
	if err != nil || status/100 != 2 {
		t.Fatalf("stats: %d %v", status, err)
	}
	var r struct {
		All struct {
			Total struct {
				Docs struct {
					Deleted *int64 `json:"deleted"`
				} `json:"docs"`
			} `json:"total"`
		} `json:"_all"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.All.Total.Docs.Deleted == nil {
		t.Fatalf("stats: unexpected response")
	}
	return *r.All.Total.Docs.Deleted
}
