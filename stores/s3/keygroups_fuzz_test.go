package s3

import (
	"slices"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// FuzzKeyGroups: the listing groups of a delete hold exactly the keys asked
// for, each once, and each group's prefix is a prefix of every key in it.
// Deletes are then made of listed versions whose key is exactly one of the
// group's keys (groupVersions), so what a prefix lists besides them is
// never deleted: no key list widens a delete.
func FuzzKeyGroups(f *testing.F) {
	f.Add("recordings/2026/11/01/a.wav\nrecordings/2026/11/01/b.wav\nrecordings/2026/11/02/a.wav")
	f.Add("a\na\nb/c\nb/\n")
	f.Add("x/é/1\nx/é/2\nx/è/1")
	f.Add("")
	f.Fuzz(func(t *testing.T, joined string) {
		keys := strings.Split(joined, "\n")
		var got []string
		for _, g := range keyGroups(keys) {
			if len(g.keys) == 0 {
				t.Fatalf("empty group under %q", g.prefix)
			}
			for _, k := range g.keys {
				if !strings.HasPrefix(k, g.prefix) {
					t.Fatalf("key %q outside its group's prefix %q", k, g.prefix)
				}
			}
			got = append(got, g.keys...)
		}
		want := stores.UniqueKeys(keys)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("groups hold %q, want %q", got, want)
		}
	})
}
