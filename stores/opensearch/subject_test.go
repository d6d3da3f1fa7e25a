package opensearch

import (
	"net/http"
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// Documents written before the subject fields existed are found by a
// subject search once backfilled; one deleted between the backfill's read
// and its write stays deleted.
func TestOpenSearchBackfillsSubjectFields(t *testing.T) {
	ix := newTestOpenSearchIndex(t)
	ctx := t.Context()
	if err := ix.EnsureIndex(ctx, "contacts"); err != nil {
		t.Fatal(err)
	}
	name, _ := ix.name("contacts")
	// As an older version wrote them: no phone, email or subject fields.
	old := map[string]string{
		"old1": `{"@erasure_id":"old1","contact_id":"old1","customer_phone":"+44 7700 900304","customer_email":"Pat@Example.com"}`,
		"old2": `{"@erasure_id":"old2","contact_id":"old2","customer_phone":"07700 900304"}`,
		"gone": `{"@erasure_id":"gone","contact_id":"gone","customer_phone":"07700 900304"}`,
	}
	for id, doc := range old {
		status, data, err := ix.do(ctx, http.MethodPut, "/"+name+"/_doc/"+id, map[string][]string{"refresh": {"true"}}, []byte(doc), "")
		if err != nil || status/100 != 2 {
			t.Fatalf("index %s: %d %s %v", id, status, data, err)
		}
	}
	find := func(q stores.Query) int {
		t.Helper()
		res, err := ix.Search(ctx, "contacts", q)
		if err != nil {
			t.Fatal(err)
		}
		return int(res.Total)
	}
	if n := find(stores.Query{Phone: "07700900304"}); n != 0 {
		t.Fatalf("before the backfill the subject search found %d: the test would prove nothing", n)
	}

	// A deletion between the backfill's read and its write wins.
	hits, err := ix.subjectBackfillPage(ctx, "contacts", name, nil)
	if err != nil || len(hits) != 3 {
		t.Fatalf("backfill page: %d hits, %v", len(hits), err)
	}
	if n, err := ix.DeleteIDs(ctx, "contacts", "gone"); err != nil || n != 1 {
		t.Fatalf("delete: %d %v", n, err)
	}
	if n, err := ix.rewriteSubjects(ctx, name, hits); err != nil || n != 2 {
		t.Fatalf("rewrite: %d %v, want the two documents still there", n, err)
	}
	if _, err := ix.Get(ctx, "contacts", "gone"); err == nil {
		t.Fatal("the backfill brought a deleted document back")
	}

	// The rest, and a second run that finds nothing left to do.
	if _, err := ix.BackfillSubjectFields(ctx, "contacts"); err != nil {
		t.Fatal(err)
	}
	if n, err := ix.BackfillSubjectFields(ctx, "contacts"); err != nil || n != 0 {
		t.Fatalf("second backfill rewrote %d (%v)", n, err)
	}
	if n := find(stores.Query{Phone: "07700900304"}); n != 2 {
		t.Errorf("subject search by phone after the backfill: %d, want 2", n)
	}
	if n := find(stores.Query{Email: "pat@example.com"}); n != 1 {
		t.Errorf("subject search by email after the backfill: %d, want 1", n)
	}
	d, err := ix.Get(ctx, "contacts", "old1")
	if err != nil || len(d.Fields) != 3 {
		t.Errorf("document after the backfill: %+v %v, want its own three fields only", d.Fields, err)
	}
}
