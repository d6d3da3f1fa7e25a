package demo

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/stores/disk"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/stores/sqlite"
)

// The erasure tests seek a contact's personal strings in raw bytes: each must
// be the contact's alone, never part of another contact's strings.
func TestPersonalStringsAreUnique(t *testing.T) {
	dm, err := locate.DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := Stores{Index: sqlite.NewIndex(db), Warehouse: sqlite.NewWarehouse(db),
		Objects: disk.New(filepath.Join(t.TempDir(), "objects")), DataMap: dm}
	contacts, err := Seed(t.Context(), st, Options{Contacts: 240, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{}
	for _, c := range contacts {
		ps := c.PersonalStrings()
		if c.Name == "" || c.Phone == "" || c.Email == "" || len(ps) < 5 {
			t.Fatalf("contact %s (%s): too few personal strings: %q", c.ID, c.Kind, ps)
		}
		for _, s := range ps {
			if strings.Contains(s, c.ID) {
				t.Errorf("personal string %q holds the contact ID", s)
			}
			owner[s] = c.ID
		}
	}
	// No string of one contact is found inside any string of another, as
	// written or lower-cased (the index keeps lower-cased copies).
	for s, id := range owner {
		for other, oid := range owner {
			if id != oid && (strings.Contains(other, s) || strings.Contains(strings.ToLower(other), strings.ToLower(s))) {
				t.Fatalf("%q of %s is part of %q of %s", s, id, other, oid)
			}
		}
	}
}
