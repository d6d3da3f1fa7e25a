package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// testIndexPhoneSearch: phone numbers are found however they were written,
// in the document or in the query, because both are normalised to E.164
// in the default region (GB unless configured); a subject's Phone and Email
// match one number or address exactly, never a part of one.
func testIndexPhoneSearch(t *testing.T, newIndex func(t *testing.T) stores.Index) {
	ix, index := setupIndex(t, newIndex)
	doc := func(id, phone, email string) stores.Doc {
		return stores.Doc{ID: id, Fields: map[string]any{"contact_id": id, "customer_name": "Name " + id,
			"customer_phone": phone, "customer_email": email}}
	}
	MustPutDocs(t, ix, index,
		doc("p1", "+44 7700 900304", "Alex.Example@Example.com"),
		doc("p2", "07700 900305", "example@example.com"),
		doc("p3", "020 7946 0123", ""),
		doc("p4", "0044 7700-900304", "alex.example@example.com.evil"),
		doc("p5", "not given", "p5@example.com"),
		doc("p6", "+1 415 555 0100", ""),
	)
	find := func(q stores.Query) string {
		t.Helper()
		res, err := ix.Search(t.Context(), index, q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		var ids []string
		for _, d := range res.Docs {
			ids = append(ids, d.ID)
		}
		slices.Sort(ids)
		if int(res.Total) != len(ids) {
			t.Errorf("Search(%+v): total %d, %d docs", q, res.Total, len(ids))
		}
		return strings.Join(ids, ",")
	}
	for _, c := range []struct {
		q    stores.Query
		want string
	}{
		// The same number written four ways finds both documents that hold it.
		{stores.Query{Text: "+447700900304"}, "p1,p4"},
		{stores.Query{Text: "07700900304"}, "p1,p4"},
		{stores.Query{Text: "+44 7700 900304"}, "p1,p4"},
		{stores.Query{Text: "0044 7700 900304"}, "p1,p4"},
		{stores.Query{Text: "(07700) 900-304"}, "p1,p4"},
		// Seven or more digits of it, as a fragment.
		{stores.Query{Text: "7700900304"}, "p1,p4"},
		{stores.Query{Text: "+447700900305"}, "p2"},
		{stores.Query{Text: "+442079460123"}, "p3"},
		{stores.Query{Text: "4155550100"}, "p6"},
		// A short fragment is a substring of what was written, as before.
		{stores.Query{Text: "900304"}, "p1,p4"},
		{stores.Query{Text: "7700 900"}, "p1,p2,p4"},
		{stores.Query{Text: "given"}, "p5"},
		// Exact subject searches.
		{stores.Query{Phone: "07700900304"}, "p1,p4"},
		{stores.Query{Phone: "+44 (0)7700 900304"}, "p1,p4"},
		{stores.Query{Phone: "+447700900305"}, "p2"},
		{stores.Query{Phone: "+447700900306"}, ""},
		{stores.Query{Email: "alex.example@example.com"}, "p1"},
		{stores.Query{Email: "ALEX.EXAMPLE@EXAMPLE.COM"}, "p1"},
		{stores.Query{Email: "example@example.com"}, "p2"},
		{stores.Query{Email: "example.com"}, ""},
		{stores.Query{Email: "%"}, ""},
		{stores.Query{Email: "*@example.com"}, ""},
		{stores.Query{Phone: "07700900304", Email: "alex.example@example.com"}, "p1"},
	} {
		if got := find(c.q); got != c.want {
			t.Errorf("Search(%+v) = %q, want %q", c.q, got, c.want)
		}
	}
	// A subject phone that is no phone number is an error, never a wider
	// match.
	for _, bad := range []string{"*", "%", "Alex", "123", "+44 7700 9003*"} {
		_, err := ix.Search(t.Context(), index, stores.Query{Phone: bad})
		if !errors.Is(err, stores.ErrNotAPhoneNumber) || stores.IsRetryable(err) {
			t.Errorf("Search(Phone %q): err = %v, want ErrNotAPhoneNumber", bad, err)
		}
	}
}
