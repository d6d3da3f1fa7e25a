package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"

	"github.com/erasure-project/erasure/stores"
)

// phoneColumn adds phone_e164 to an index file made before it existed and
// fills it for the documents already there, once per process. A document
// whose E.164 form was not computed yet holds NULL; one whose phone is not
// a number holds "".
type phoneColumn struct {
	mu   sync.Mutex
	done bool
}

// phoneBackfillBatch is how many documents one backfill transaction
// reads and updates.
const phoneBackfillBatch = 500

// ensure creates the schema and brings phone_e164 up to date.
func (s *Index) ensure(ctx context.Context) error {
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return err
	}
	s.phones.mu.Lock()
	defer s.phones.mu.Unlock()
	if s.phones.done {
		return nil
	}
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('erasure_index_docs') WHERE name = 'phone_e164'`).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE erasure_index_docs ADD COLUMN phone_e164 TEXT`); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS erasure_index_docs_phone ON erasure_index_docs (idx, phone_e164)`)
		return err
	})
	if err != nil {
		return sqliteErr("index: add phone column", err)
	}
	for {
		n, err := s.backfillPhones(ctx)
		if err != nil {
			return sqliteErr("index: normalise stored phone numbers", err)
		}
		if n < phoneBackfillBatch {
			break
		}
	}
	s.phones.done = true
	return nil
}

// backfillPhones computes phone_e164 for up to phoneBackfillBatch documents
// that lack it and returns how many it read.
func (s *Index) backfillPhones(ctx context.Context) (int, error) {
	n := 0
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT idx, id, doc FROM erasure_index_docs WHERE phone_e164 IS NULL LIMIT ?`, phoneBackfillBatch)
		if err != nil {
			return err
		}
		type pending struct{ idx, id, phone string }
		var todo []pending
		for rows.Next() {
			var p pending
			var raw string
			if err := rows.Scan(&p.idx, &p.id, &raw); err != nil {
				rows.Close()
				return err
			}
			var fields map[string]any
			if json.Unmarshal([]byte(raw), &fields) == nil {
				if v, ok := fields[stores.FieldCustomerPhone].(string); ok {
					p.phone, _ = stores.NormalizePhone(v, s.region)
				}
			}
			todo = append(todo, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, p := range todo {
			if _, err := tx.ExecContext(ctx, `UPDATE erasure_index_docs SET phone_e164 = ? WHERE idx = ? AND id = ?`, p.phone, p.idx, p.id); err != nil {
				return err
			}
		}
		n = len(todo)
		return nil
	})
	return n, err
}
