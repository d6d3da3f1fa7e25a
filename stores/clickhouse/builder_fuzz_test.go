package clickhouse

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// FuzzDeleteStatement: whatever the table, column and values, a delete is
// refused or it is one mutation per chunk of exactly the values asked for,
// every one a bound argument: no input widens it (a value cannot become
// query text, an identifier cannot leave its backquotes, and chunking
// neither drops nor adds a value).
func FuzzDeleteStatement(f *testing.F) {
	f.Add("warehouse_records", "contact_id", "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b\n7f1c2b3a-9e8d-4c6b-a5f4-e3d2c1b0a987", 2)
	f.Add("t", "c", "x') OR 1=1 --", 1)
	f.Add("t`; DROP TABLE x; --", "c", "a", 1)
	f.Add("t", "c` OR 1 --", "a\na\nb", 1)
	f.Add("erasure_audit", "seq", "1", 0)
	f.Add("t", "c", "", 3)
	shape := regexp.MustCompile("^ALTER TABLE `db`\\.`([^`]+)` DELETE WHERE `([^`]+)` IN \\((\\?(?:, ?\\?)*)\\)$")
	f.Fuzz(func(t *testing.T, table, column, joined string, batch int) {
		values := strings.Split(joined, "\n")
		if checkCHMatch(table, column, values) != nil {
			return
		}
		var got []string
		for _, chunk := range matchChunks(values, batch%50) {
			query, args := deleteStatement("db", table, column, chunk)
			m := shape.FindStringSubmatch(query)
			if m == nil || m[1] != table || m[2] != column {
				t.Fatalf("statement %q for table %q column %q", query, table, column)
			}
			if n := strings.Count(m[3], "?"); n != len(args) || n != len(chunk) {
				t.Fatalf("%d placeholders, %d args, %d values", n, len(args), len(chunk))
			}
			for i, a := range args {
				if s, ok := a.(string); !ok || s != chunk[i] {
					t.Fatalf("arg %d = %#v, want %q", i, a, chunk[i])
				}
			}
			got = append(got, chunk...)
		}
		want := stores.UniqueKeys(values)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("chunks hold %q, want %q", got, want)
		}
	})
}
