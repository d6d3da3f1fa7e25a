package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
)

// Terms are written only for the fields something matches on: a field is
// registered the first time it is asked for (by the data map's check, a
// count or delete by term, a search or a field's values), its terms are
// then written for every document already there, and every later Put
// writes them too. A contact's document has a dozen fields and only a few
// are ever matched; writing terms for all of them made a batch delete
// touch pages all over a term table four times the size (measured with the
// demo's documents: 10 batches of 1,000 contacts of 20,000 took 9.1 s with
// every field's terms, 4.8 s with those of the fields matched on). The
// term table also holds fewer copies of personal data.
//
// Registration and Put both run in write transactions, one at a time, and
// Put reads the registry in its own: a document is either written before a
// registration, and its terms come from the backfill, or after, and Put
// writes them. A registration is never undone, so remembering one in the
// process is safe.
const termFieldsTable = `CREATE TABLE IF NOT EXISTS erasure_index_term_fields (
		idx   TEXT NOT NULL,
		field TEXT NOT NULL,
		PRIMARY KEY (idx, field)
	) WITHOUT ROWID`

// termFields remembers the fields registered through this process.
type termFields struct{ known sync.Map }

// backfillPage is how many documents a registration reads at a time.
const backfillPage = 500

// ensureTermFields registers each field of index that is not yet, writing
// its terms for the documents already stored. "_id" needs none.
func (s *Index) ensureTermFields(ctx context.Context, index string, fields ...string) error {
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return err
	}
	for _, field := range fields {
		if field == "_id" {
			continue
		}
		key := index + "\x00" + field
		if _, ok := s.terms.known.Load(key); ok {
			continue
		}
		err := inTx(ctx, s.db, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO erasure_index_term_fields (idx, field) VALUES (?, ?)`, index, field)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return err // registered before, by this process or another
			}
			return backfillTerms(ctx, tx, index, field, s.region)
		})
		if err != nil {
			return sqliteErr("index: register term field", err)
		}
		s.terms.known.Store(key, true)
	}
	return nil
}

// backfillTerms writes field's terms for every document of index, as Put
// would have: from the stored JSON, numbers as written.
func backfillTerms(ctx context.Context, tx *sql.Tx, index, field, region string) error {
	ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO erasure_index_terms (idx, id, field, value) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	after := ""
	for {
		type doc struct{ id, raw string }
		var page []doc
		rows, err := tx.QueryContext(ctx, `SELECT id, doc FROM erasure_index_docs WHERE idx = ? AND id > ? ORDER BY id LIMIT ?`,
			index, after, backfillPage)
		if err != nil {
			return err
		}
		for rows.Next() {
			var d doc
			if err := rows.Scan(&d.id, &d.raw); err != nil {
				rows.Close()
				return err
			}
			page = append(page, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range page {
			var fields map[string]any
			dec := json.NewDecoder(bytes.NewReader([]byte(d.raw)))
			dec.UseNumber()
			if err := dec.Decode(&fields); err != nil {
				return stores.Permanent(fmt.Errorf("index: decode stored document: %w", err))
			}
			r, err := stores.NewIndexRow(stores.Doc{ID: d.id, Fields: fields}, region)
			if err != nil {
				return err
			}
			for _, t := range r.Terms {
				if t[0] != field {
					continue
				}
				if _, err := ins.ExecContext(ctx, index, d.id, t[0], t[1]); err != nil {
					return err
				}
			}
		}
		if len(page) < backfillPage {
			return nil
		}
		after = page[len(page)-1].id
	}
}

// registeredTermFields returns the fields of index that get terms, read in
// the caller's transaction.
func registeredTermFields(ctx context.Context, tx *sql.Tx, index string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT field FROM erasure_index_term_fields WHERE idx = ?`, index)
	if err != nil {
		return nil, err
	}
	fields, err := sqlutil.ScanStrings(rows)
	out := make(map[string]bool, len(fields))
	for _, f := range fields {
		out[f] = true
	}
	return out, err
}
