package sqlite

import (
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// An index file written before phone numbers were normalised gains the
// column, and its documents are found by any spelling of their numbers.
func TestIndexBackfillsNormalisedPhones(t *testing.T) {
	db := newTestDB(t)
	old := newIndex(db)
	// The schema as it was, without phone_e164.
	old.schema.stmts[1] = `CREATE TABLE IF NOT EXISTS erasure_index_docs (
			idx          TEXT NOT NULL REFERENCES erasure_indexes(name) ON DELETE CASCADE,
			id           TEXT NOT NULL,
			doc          TEXT NOT NULL,
			name_lc      TEXT NOT NULL DEFAULT '',
			phone_lc     TEXT NOT NULL DEFAULT '',
			email_lc     TEXT NOT NULL DEFAULT '',
			initiated_at TEXT,
			PRIMARY KEY (idx, id)
		)`
	if err := old.schema.ensure(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b"} {
		phone := []string{"+44 7700 900304", "n/a"}[i]
		if _, err := db.ExecContext(t.Context(), `INSERT OR IGNORE INTO erasure_indexes (name) VALUES ('contacts')`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(t.Context(), `INSERT INTO erasure_index_docs (idx, id, doc, phone_lc) VALUES ('contacts', ?, ?, ?)`,
			id, `{"customer_phone":"`+phone+`"}`, phone); err != nil {
			t.Fatal(err)
		}
	}
	ix := NewIndex(db, WithPhoneRegion("GB"))
	for _, q := range []string{"07700900304", "+447700900304"} {
		res, err := ix.Search(t.Context(), "contacts", stores.Query{Text: q})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Docs) != 1 || res.Docs[0].ID != "a" {
			t.Errorf("Search %q after the upgrade = %+v, want a", q, res.Docs)
		}
	}
	var unset int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM erasure_index_docs WHERE phone_e164 IS NULL`).Scan(&unset); err != nil || unset != 0 {
		t.Errorf("%d documents without a normalised phone (%v)", unset, err)
	}
}
