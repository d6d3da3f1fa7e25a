package demo

import (
	"encoding/json"
	"io"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
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

// A seed written in chunks holds every contact once: each in the index and
// the warehouse, and each data-lake record in exactly one part file.
func TestSeedInChunks(t *testing.T) {
	dm, err := locate.DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	objects := disk.New(filepath.Join(t.TempDir(), "objects"))
	st := Stores{Index: sqlite.NewIndex(db), Warehouse: sqlite.NewWarehouse(db), Objects: objects, DataMap: dm}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	contacts, err := Seed(t.Context(), st, Options{Contacts: 50, Seed: 4, Now: now, Chunk: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(contacts) != 50 {
		t.Fatalf("%d contacts returned, want 50", len(contacts))
	}
	ids := make([]string, len(contacts))
	for i, c := range contacts {
		ids[i] = c.ID
	}
	docs, err := st.Index.Count(t.Context(), "contacts", "contact_id", ids...)
	if err != nil || docs != 50 {
		t.Fatalf("contacts index: %d documents, %v; want 50", docs, err)
	}
	rows, err := st.Warehouse.Count(t.Context(), "dw_contact_records", "contact_id", ids...)
	if err != nil || rows != 50 {
		t.Fatalf("dw_contact_records: %d rows, %v; want 50", rows, err)
	}
	lake, ok := dm.Find(schemas.ChannelDataWarehouse, "data_lake_records")
	if !ok {
		t.Fatal("the default data map has no data lake")
	}
	seen := map[string]int{}
	parts := map[string]bool{}
	err = objects.List(t.Context(), lake.Bucket, "", func(key string) error {
		parts[path.Base(key)] = true
		r, err := objects.Get(t.Context(), lake.Bucket, key)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
			var rec struct {
				ContactID string `json:"contact_id"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				return err
			}
			seen[rec.ContactID]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range contacts {
		if seen[c.ID] != 1 {
			t.Errorf("contact %s has %d data-lake records, want 1", c.ID, seen[c.ID])
		}
	}
	if len(parts) != 8 { // 50 contacts in chunks of 7: parts 0 to 7
		t.Errorf("data-lake part files %v, want 8 distinct", parts)
	}
}
