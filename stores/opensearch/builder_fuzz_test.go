package opensearch

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// FuzzTermsBodies: whatever the field and values, an exact-match query is
// refused or its bodies match exactly the values asked for and nothing
// else: each body is {"query":{"terms":{field:[values]}}} (ids for _id),
// values stay JSON strings (never query_string, wildcard or regexp
// syntax), and chunking neither drops nor adds a value.
func FuzzTermsBodies(f *testing.F) {
	f.Add("contacts", "contact_id", "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b\n7f1c2b3a-9e8d-4c6b-a5f4-e3d2c1b0a987", 2)
	f.Add("contacts", "_id", "a\nb\na", 1)
	f.Add("contacts", "contact_id", "*", 1)
	f.Add("contacts", "contact_id", `"},"match_all":{"`, 1)
	f.Add("contacts", "query", "a", 1)
	f.Add("Contacts*", "contact_id", "a", 1)
	f.Fuzz(func(t *testing.T, index, field, joined string, batch int) {
		values := strings.Split(joined, "\n")
		if stores.CheckTermQuery(index, field, values...) != nil {
			return
		}
		bodies, err := termsBodies(field, values, batch%50)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range bodies {
			var body map[string]map[string]map[string][]string
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil || len(body) != 1 || len(body["query"]) != 1 {
				t.Fatalf("body %s: %v", b, err)
			}
			kind, key := "terms", field
			if field == "_id" {
				kind, key = "ids", "values"
			}
			clause := body["query"][kind]
			if len(clause) != 1 || clause[key] == nil {
				t.Fatalf("body %s: want one %s clause on %q", b, kind, key)
			}
			got = append(got, clause[key]...)
		}
		want := stores.UniqueKeys(values)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("bodies match %q, want %q", got, want)
		}
	})
}
