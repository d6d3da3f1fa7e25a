package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
)

// Index is the embedded search index. Documents are stored as JSON; for
// the fields matched on (see termfields.go) every top-level string, number
// and boolean (and each such element of an array) is also written to a
// term table, so exact matches and deletes by term use an index and
// compare whole values, never patterns.
type Index struct {
	db     *sql.DB
	schema sqliteSchema
	purge  purger // scrubs the file after deletes
	// region reads national phone numbers (stores.NormalizePhone);
	// phones is the one-time addition of phone_e164 to older files.
	region string
	phones phoneColumn
	// deletes are committed together with concurrent ones (groupCommit).
	deletes groupCommit
	// terms remembers the fields registered for terms.
	terms termFields
}

var _ stores.Index = (*Index)(nil)

// IndexOption configures an Index.
type IndexOption func(*Index)

// WithPhoneRegion reads phone numbers without a country code, in documents
// and in searches, as numbers of region (default stores.DefaultPhoneRegion).
// Documents keep the E.164 form they were indexed with: after a change of
// region, put them again.
func WithPhoneRegion(region string) IndexOption {
	return func(s *Index) { s.region = region }
}

// NewIndex returns an index stored in db (see Open). Its tables
// are created on first use.
func NewIndex(db *sql.DB, opts ...IndexOption) *Index {
	s := newIndex(db)
	s.region = stores.DefaultPhoneRegion
	for _, o := range opts {
		o(s)
	}
	return s
}

func newIndex(db *sql.DB) *Index {
	return &Index{db: db, schema: sqliteSchema{stmts: []string{
		`CREATE TABLE IF NOT EXISTS erasure_indexes (
			name TEXT PRIMARY KEY
		) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS erasure_index_docs (
			idx          TEXT NOT NULL REFERENCES erasure_indexes(name) ON DELETE CASCADE,
			id           TEXT NOT NULL,
			doc          TEXT NOT NULL,
			name_lc      TEXT NOT NULL DEFAULT '',
			phone_lc     TEXT NOT NULL DEFAULT '',
			email_lc     TEXT NOT NULL DEFAULT '',
			initiated_at TEXT,
			phone_e164   TEXT,
			PRIMARY KEY (idx, id)
		)`,
		`CREATE INDEX IF NOT EXISTS erasure_index_docs_time
			ON erasure_index_docs (idx, initiated_at DESC, id)`,
		termsTable,
		termsByDoc,
		indexFieldsTable,
		indexFieldsTrigger,
		termFieldsTable,
	}, migrate: dropTermsForeignKey}}
}

// A document's terms go in the same statement set that deletes the
// document (deleteDocs, Put), not by a foreign-key cascade: the cascade
// ran a lookup per deleted document and doubled the cost of a batch.
const (
	termsTable = `CREATE TABLE IF NOT EXISTS erasure_index_terms (
			idx   TEXT NOT NULL,
			id    TEXT NOT NULL,
			field TEXT NOT NULL,
			value TEXT NOT NULL,
			PRIMARY KEY (idx, field, value, id)
		) WITHOUT ROWID`
	termsByDoc = `CREATE INDEX IF NOT EXISTS erasure_index_terms_doc ON erasure_index_terms (idx, id)`
)

// dropTermsForeignKey rebuilds a term table made with the cascade from
// documents, in the schema's transaction. Terms whose document is gone
// cannot exist under the cascade, and are not copied if they do.
func dropTermsForeignKey(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_list('erasure_index_terms')`).Scan(&n); err != nil || n == 0 {
		return err
	}
	for _, stmt := range []string{
		`ALTER TABLE erasure_index_terms RENAME TO erasure_index_terms_cascade`,
		`DROP INDEX IF EXISTS erasure_index_terms_doc`,
		`DROP TRIGGER IF EXISTS erasure_index_fields_seen`,
		termsTable,
		`INSERT INTO erasure_index_terms (idx, id, field, value)
			SELECT t.idx, t.id, t.field, t.value FROM erasure_index_terms_cascade t
			WHERE EXISTS (SELECT 1 FROM erasure_index_docs d WHERE d.idx = t.idx AND d.id = t.id)`,
		`DROP TABLE erasure_index_terms_cascade`,
		termsByDoc,
		indexFieldsTrigger,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// EnsureIndex creates index if it does not exist.
func (s *Index) EnsureIndex(ctx context.Context, index string) error {
	if err := stores.CheckIndexName(index); err != nil {
		return err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO erasure_indexes (name) VALUES (?)`, index)
	return sqliteErr("index: ensure", err)
}

// Put upserts docs. Like OpenSearch with default settings, it creates the
// index if needed.
func (s *Index) Put(ctx context.Context, index string, docs ...stores.Doc) error {
	if err := stores.CheckIndexName(index); err != nil {
		return err
	}
	rows := make([]stores.IndexRow, 0, len(docs))
	for _, d := range docs {
		r, err := stores.NewIndexRow(d, s.region)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO erasure_indexes (name) VALUES (?)`, index); err != nil {
			return err
		}
		upsert, err := tx.PrepareContext(ctx, `
			INSERT INTO erasure_index_docs (idx, id, doc, name_lc, phone_lc, email_lc, initiated_at, phone_e164)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (idx, id) DO UPDATE SET
				doc = excluded.doc, name_lc = excluded.name_lc, phone_lc = excluded.phone_lc,
				email_lc = excluded.email_lc, initiated_at = excluded.initiated_at, phone_e164 = excluded.phone_e164`)
		if err != nil {
			return err
		}
		defer upsert.Close()
		clearTerms, err := tx.PrepareContext(ctx, `DELETE FROM erasure_index_terms WHERE idx = ? AND id = ?`)
		if err != nil {
			return err
		}
		defer clearTerms.Close()
		term, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO erasure_index_terms (idx, id, field, value) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer term.Close()
		matched, err := registeredTermFields(ctx, tx, index)
		if err != nil {
			return err
		}
		// Every field with a term is known to RequireField, whether or not
		// its terms are written.
		seen := map[string]bool{}
		for _, r := range rows {
			for _, t := range r.Terms {
				if seen[t[0]] {
					continue
				}
				seen[t[0]] = true
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO erasure_index_fields (idx, field) VALUES (?, ?)`, index, t[0]); err != nil {
					return err
				}
			}
		}
		for _, r := range rows {
			if _, err := upsert.ExecContext(ctx, index, r.ID, r.Doc, r.Text[0], r.Text[1], r.Text[2], r.InitiatedAt, r.Phone); err != nil {
				return err
			}
			// An upsert replaces the whole document, so its old terms go too.
			if _, err := clearTerms.ExecContext(ctx, index, r.ID); err != nil {
				return err
			}
			for _, t := range r.Terms {
				if !matched[t[0]] {
					continue
				}
				if _, err := term.ExecContext(ctx, index, r.ID, t[0], t[1]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return sqliteErr("index: put", err)
}

// Get returns one document, or ErrNotFound.
func (s *Index) Get(ctx context.Context, index, id string) (stores.Doc, error) {
	if err := stores.CheckIndexName(index); err != nil {
		return stores.Doc{}, err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return stores.Doc{}, err
	}
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT doc FROM erasure_index_docs WHERE idx = ? AND id = ?`, index, id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return stores.Doc{}, fmt.Errorf("index %s: document: %w", index, stores.ErrNotFound)
	}
	if err != nil {
		return stores.Doc{}, sqliteErr("index: get", err)
	}
	d := stores.Doc{ID: id}
	if err := json.Unmarshal([]byte(raw), &d.Fields); err != nil {
		return stores.Doc{}, stores.Permanent(fmt.Errorf("index: decode stored document: %w", err))
	}
	return d, nil
}

// requireIndex fails for an index that was never created, so a misspelt
// index name in the data map is an error rather than a verified-empty count.
func requireIndex(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, index string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM erasure_indexes WHERE name = ?`, index).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return stores.Permanent(fmt.Errorf("index %q does not exist", index))
	}
	return err
}

// termFilter returns the SQL that selects the IDs of documents whose field
// equals one of values exactly, and its arguments.
//
// The batch goes in as one JSON array read by json_each, not as chunks of
// bound parameters: one statement takes a batch of any size, so a document
// matching two values of it (an array field) is counted once by
// count(DISTINCT), where counts of chunks would add it up twice. This is
// exact because CheckTerm admits only valid UTF-8, which encoding/json and
// SQLite's JSON parser carry through unchanged, NULs included. For 10,000
// values it also measured faster than chunks or a temporary table.
func termFilter(index, field string, values []string) (string, []any, error) {
	raw, err := json.Marshal(values)
	if err != nil {
		return "", nil, stores.Permanent(fmt.Errorf("encode match values: %w", err))
	}
	if field == "_id" {
		return `SELECT id FROM erasure_index_docs WHERE idx = ? AND id IN (SELECT value FROM json_each(?))`,
			[]any{index, string(raw)}, nil
	}
	return `SELECT id FROM erasure_index_terms WHERE idx = ? AND field = ? AND value IN (SELECT value FROM json_each(?))`,
		[]any{index, field, string(raw)}, nil
}

// termTx checks an exact-match query and runs fn in one transaction with
// the subquery selecting the matching document IDs; a write's transaction
// may be shared with other deletes (groupCommit).
func (s *Index) termTx(ctx context.Context, index, field string, values []string, write bool, fn func(ctx context.Context, tx *sql.Tx, sub string, args []any) error) error {
	if err := stores.CheckTermQuery(index, field, values...); err != nil {
		return err
	}
	sub, args, err := termFilter(index, field, values)
	if err != nil {
		return err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return err
	}
	if err := s.ensureTermFields(ctx, index, field); err != nil {
		return err
	}
	run := func(ctx context.Context, tx *sql.Tx) error {
		if err := requireIndex(ctx, tx, index); err != nil {
			return err
		}
		if err := requireField(ctx, tx, index, field); err != nil {
			return err
		}
		return fn(ctx, tx, sub, args)
	}
	if write {
		return s.deletes.do(ctx, s.db, run)
	}
	return inTx(ctx, s.db, func(tx *sql.Tx) error { return run(ctx, tx) })
}

// Count counts documents whose field equals one of values exactly, each
// document once.
func (s *Index) Count(ctx context.Context, index, field string, values ...string) (int64, error) {
	var n int64
	err := s.termTx(ctx, index, field, values, false, func(ctx context.Context, tx *sql.Tx, sub string, args []any) error {
		return tx.QueryRowContext(ctx, `SELECT count(DISTINCT id) FROM (`+sub+`)`, args...).Scan(&n)
	})
	return n, sqliteErr("index: count", err)
}

// DeleteTerm deletes every document whose field equals one of values
// exactly, with its terms.
func (s *Index) DeleteTerm(ctx context.Context, index, field string, values ...string) (int64, error) {
	var n int64
	err := s.termTx(ctx, index, field, values, true, func(ctx context.Context, tx *sql.Tx, sub string, args []any) error {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT id FROM (`+sub+`)`, args...)
		if err != nil {
			return err
		}
		ids, err := sqlutil.ScanStrings(rows)
		if err != nil {
			return err
		}
		n, err = deleteDocs(ctx, tx, index, ids)
		return err
	})
	if err != nil {
		return 0, sqliteErr("index: delete term", err)
	}
	s.purge.noteDelete(n) // Purge makes it physical
	return n, nil
}

// DeleteIDs deletes documents by ID, with their terms, and returns how
// many existed.
func (s *Index) DeleteIDs(ctx context.Context, index string, ids ...string) (int64, error) {
	if err := stores.CheckIndexName(index); err != nil {
		return 0, err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return 0, err
	}
	var n int64
	err := s.deletes.do(ctx, s.db, func(ctx context.Context, tx *sql.Tx) error {
		if err := requireIndex(ctx, tx, index); err != nil {
			return err
		}
		var err error
		n, err = deleteDocs(ctx, tx, index, ids)
		return err
	})
	if err != nil {
		return 0, sqliteErr("index: delete IDs", err)
	}
	s.purge.noteDelete(n) // Purge makes it physical
	return n, nil
}

// deleteDocs deletes the documents of index with these IDs and their
// terms, and returns how many documents there were. IDs go in as bound
// parameters, not JSON: a document ID need not be valid UTF-8, which JSON
// would alter. Repeats and empty IDs match nothing twice.
func deleteDocs(ctx context.Context, tx *sql.Tx, index string, ids []string) (int64, error) {
	var n int64
	for batch := range slices.Chunk(ids, sqliteBatch) {
		args := make([]any, 0, len(batch)+1)
		args = append(args, index)
		for _, id := range batch {
			args = append(args, id)
		}
		in := sqlutil.Placeholders(len(batch))
		if _, err := tx.ExecContext(ctx, `DELETE FROM erasure_index_terms WHERE idx = ? AND id IN (`+in+`)`, args...); err != nil {
			return n, err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM erasure_index_docs WHERE idx = ? AND id IN (`+in+`)`, args...)
		if err != nil {
			return n, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// Search pages through an index. ContactID matches the document ID or the
// contact_id field; Text is a case-insensitive substring of the customer's
// name, phone or email (compared with instr, so no character in it is a
// wildcard), or a phone number however written (its E.164 form, or seven
// or more of its digits, within the document's normalised number); Phone
// is the same E.164 number and Email the same address ignoring case;
// Channel matches exactly; Agent and Queue are prefixes ignoring
// ASCII case (a byte range on lower(value), so no character is a pattern);
// From and To bound initiation_timestamp inclusively. Results are newest first, then by
// ID; Limit defaults to SearchDefaultLimit and is capped at SearchMaxLimit.
func (s *Index) Search(ctx context.Context, index string, q stores.Query) (stores.SearchResult, error) {
	if err := stores.CheckIndexName(index); err != nil {
		return stores.SearchResult{}, err
	}
	phone, err := stores.SubjectPhone(q, s.region)
	if err != nil {
		return stores.SearchResult{}, err
	}
	if err := s.ensure(ctx); err != nil {
		return stores.SearchResult{}, err
	}
	var matched []string
	for f, used := range map[string]bool{stores.FieldContactID: q.ContactID != "", "channel": q.Channel != "", "agent": q.Agent != "", "queue": q.Queue != ""} {
		if used {
			matched = append(matched, f)
		}
	}
	if err := s.ensureTermFields(ctx, index, matched...); err != nil {
		return stores.SearchResult{}, err
	}
	where := []string{"d.idx = ?"}
	args := []any{index}
	hasTerm := func(field, value string) {
		where = append(where, `EXISTS (SELECT 1 FROM erasure_index_terms t
			WHERE t.idx = d.idx AND t.id = d.id AND t.field = ? AND t.value = ?)`)
		args = append(args, field, value)
	}
	if q.ContactID != "" {
		where = append(where, `(d.id = ? OR EXISTS (SELECT 1 FROM erasure_index_terms t
			WHERE t.idx = d.idx AND t.id = d.id AND t.field = ? AND t.value = ?))`)
		args = append(args, q.ContactID, stores.FieldContactID, q.ContactID)
	}
	if q.Text != "" {
		needle := strings.ToLower(q.Text)
		cond := `instr(d.name_lc, ?) > 0 OR instr(d.phone_lc, ?) > 0 OR instr(d.email_lc, ?) > 0`
		args = append(args, needle, needle, needle)
		for _, pn := range stores.PhoneNeedles(q.Text, s.region) {
			cond += ` OR instr(d.phone_e164, ?) > 0`
			args = append(args, pn)
		}
		where = append(where, "("+cond+")")
	}
	if phone != "" {
		where = append(where, "d.phone_e164 = ?")
		args = append(args, phone)
	}
	if q.Email != "" {
		where = append(where, "d.email_lc = ?")
		args = append(args, strings.ToLower(strings.TrimSpace(q.Email)))
	}
	if q.Channel != "" {
		hasTerm("channel", q.Channel)
	}
	hasPrefix := func(field, prefix string) {
		lo, hi := stores.PrefixRange(prefix)
		where = append(where, `EXISTS (SELECT 1 FROM erasure_index_terms t
			WHERE t.idx = d.idx AND t.id = d.id AND t.field = ? AND lower(t.value) >= ? AND lower(t.value) < ?)`)
		args = append(args, field, lo, hi)
	}
	if q.Agent != "" {
		hasPrefix("agent", q.Agent)
	}
	if q.Queue != "" {
		hasPrefix("queue", q.Queue)
	}
	if !q.From.IsZero() {
		where = append(where, "d.initiated_at >= ?")
		args = append(args, stores.FormatTime(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "d.initiated_at <= ?")
		args = append(args, stores.FormatTime(q.To))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = stores.SearchDefaultLimit
	}
	limit = min(limit, stores.SearchMaxLimit)
	offset := max(q.Offset, 0)
	cond := strings.Join(where, " AND ")

	var res stores.SearchResult
	err = inTx(ctx, s.db, func(tx *sql.Tx) error {
		if err := requireIndex(ctx, tx, index); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM erasure_index_docs d WHERE `+cond, args...).Scan(&res.Total); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT d.id, d.doc FROM erasure_index_docs d WHERE `+cond+`
			ORDER BY d.initiated_at DESC, d.id -- NULLs sort lowest, so undated documents come last
			LIMIT ? OFFSET ?`, append(args, limit, offset)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d stores.Doc
			var raw string
			if err := rows.Scan(&d.ID, &raw); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(raw), &d.Fields); err != nil {
				return stores.Permanent(fmt.Errorf("decode stored document: %w", err))
			}
			res.Docs = append(res.Docs, d)
		}
		return rows.Err()
	})
	if err != nil {
		return stores.SearchResult{}, sqliteErr("index: search", err)
	}
	return res, nil
}

// FieldValues lists distinct values of a field by prefix, ignoring ASCII
// case, from the term table.
func (s *Index) FieldValues(ctx context.Context, index, field, prefix string, limit int) ([]string, error) {
	limit, err := stores.CheckFieldValues(index, field, prefix, limit)
	if err != nil {
		return nil, err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return nil, err
	}
	if err := s.ensureTermFields(ctx, index, field); err != nil {
		return nil, err
	}
	q := `SELECT DISTINCT value FROM erasure_index_terms WHERE idx = ? AND field = ?`
	args := []any{index, field}
	if prefix != "" {
		lo, hi := stores.PrefixRange(prefix)
		q += ` AND lower(value) >= ? AND lower(value) < ?`
		args = append(args, lo, hi)
	}
	q += ` ORDER BY value LIMIT ?`
	args = append(args, limit)
	var out []string
	err = inTx(ctx, s.db, func(tx *sql.Tx) error {
		if err := requireIndex(ctx, tx, index); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = sqlutil.ScanStrings(rows)
		return err
	})
	if err != nil {
		return nil, sqliteErr("index: field values", err)
	}
	return out, nil
}
