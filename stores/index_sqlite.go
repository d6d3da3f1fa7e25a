package stores

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Search defaults, shared with the UI's expectations.
const (
	SearchDefaultLimit = 25
	SearchMaxLimit     = 500
)

// Fields the search index gives meaning to.
const (
	fieldInitiation = "initiation_timestamp"
	fieldContactID  = "contact_id"
)

// searchTextFields are the customer identifiers Query.Text matches.
var searchTextFields = [3]string{"customer_name", "customer_phone", "customer_email"}

// checkIndexName applies the data map's rule for index names.
func checkIndexName(name string) error { return CheckIdent("index", name) }

// checkField validates a field name used in an exact-match query; "_id" is the
// document ID.
func checkField(field string) error {
	if field == "_id" {
		return nil
	}
	return CheckIdent("field", field)
}

// checkTerm refuses an empty value: an empty term could only ever match
// documents whose field is empty, never one contact, so it is a caller bug.
// Invalid UTF-8 is refused too: stored text never holds it (JSON replaces
// it), so such a value could report "nothing left" without matching.
func checkTerm(value string) error {
	if value == "" {
		return Permanent(errors.New("empty match value"))
	}
	if !utf8.ValidString(value) {
		return Permanent(errors.New("match value is not valid UTF-8"))
	}
	return nil
}

// SQLiteIndex is the embedded search index. Documents are stored as JSON;
// every top-level string, number and boolean (and each such element of an
// array) is also written to a term table, so exact matches and deletes by
// term use an index and compare whole values, never patterns.
type SQLiteIndex struct {
	db     *sql.DB
	schema sqliteSchema
}

var _ Index = (*SQLiteIndex)(nil)

// NewSQLiteIndex returns an index stored in db (see OpenSQLite). Its tables
// are created on first use.
func NewSQLiteIndex(db *sql.DB) *SQLiteIndex {
	return &SQLiteIndex{db: db, schema: sqliteSchema{stmts: []string{
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
			PRIMARY KEY (idx, id)
		)`,
		`CREATE INDEX IF NOT EXISTS erasure_index_docs_time
			ON erasure_index_docs (idx, initiated_at DESC, id)`,
		`CREATE TABLE IF NOT EXISTS erasure_index_terms (
			idx   TEXT NOT NULL,
			id    TEXT NOT NULL,
			field TEXT NOT NULL,
			value TEXT NOT NULL,
			PRIMARY KEY (idx, field, value, id),
			FOREIGN KEY (idx, id) REFERENCES erasure_index_docs (idx, id) ON DELETE CASCADE
		) WITHOUT ROWID`,
		`CREATE INDEX IF NOT EXISTS erasure_index_terms_doc ON erasure_index_terms (idx, id)`,
	}}}
}

// EnsureIndex creates index if it does not exist.
func (s *SQLiteIndex) EnsureIndex(ctx context.Context, index string) error {
	if err := checkIndexName(index); err != nil {
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
func (s *SQLiteIndex) Put(ctx context.Context, index string, docs ...Doc) error {
	if err := checkIndexName(index); err != nil {
		return err
	}
	rows := make([]indexRow, 0, len(docs))
	for _, d := range docs {
		r, err := newIndexRow(d)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return err
	}
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO erasure_indexes (name) VALUES (?)`, index); err != nil {
			return err
		}
		upsert, err := tx.PrepareContext(ctx, `
			INSERT INTO erasure_index_docs (idx, id, doc, name_lc, phone_lc, email_lc, initiated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (idx, id) DO UPDATE SET
				doc = excluded.doc, name_lc = excluded.name_lc, phone_lc = excluded.phone_lc,
				email_lc = excluded.email_lc, initiated_at = excluded.initiated_at`)
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
		for _, r := range rows {
			if _, err := upsert.ExecContext(ctx, index, r.id, r.doc, r.text[0], r.text[1], r.text[2], r.initiatedAt); err != nil {
				return err
			}
			// An upsert replaces the whole document, so its old terms go too.
			if _, err := clearTerms.ExecContext(ctx, index, r.id); err != nil {
				return err
			}
			for _, t := range r.terms {
				if _, err := term.ExecContext(ctx, index, r.id, t[0], t[1]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return sqliteErr("index: put", err)
}

// indexRow is a document prepared for storage.
type indexRow struct {
	id          string
	doc         string
	text        [3]string // lower-cased searchTextFields
	initiatedAt any       // formatted time or nil
	terms       [][2]string
}

func newIndexRow(d Doc) (indexRow, error) {
	// 512 bytes is OpenSearch's limit on document IDs.
	if d.ID == "" || len(d.ID) > 512 {
		return indexRow{}, Permanent(errors.New("index: document ID must be 1 to 512 bytes"))
	}
	fields := d.Fields
	if fields == nil {
		fields = map[string]any{}
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return indexRow{}, Permanent(fmt.Errorf("index: encode document: %w", err))
	}
	// Terms come from the decoded JSON, not the Go values, so a field matches
	// the same way whatever Go type the caller used (int, float64, json.Number).
	var decoded map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&decoded); err != nil {
		return indexRow{}, Permanent(fmt.Errorf("index: decode document: %w", err))
	}
	r := indexRow{id: d.ID, doc: string(raw)}
	for i, f := range searchTextFields {
		if s, ok := decoded[f].(string); ok {
			r.text[i] = strings.ToLower(s)
		}
	}
	if s, ok := decoded[fieldInitiation].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.UTC().Year() >= 0 && t.UTC().Year() <= 9999 {
			r.initiatedAt = formatTime(t)
		}
	}
	for k, v := range decoded {
		if CheckIdent("field", k) != nil {
			continue // cannot be queried by Count or DeleteTerm anyway
		}
		add := func(v any) {
			if s, ok := termText(v); ok {
				r.terms = append(r.terms, [2]string{k, s})
			}
		}
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				add(e)
			}
		} else {
			add(v)
		}
	}
	return r, nil
}

// termText renders a scalar JSON value as the string an exact match compares
// with; objects and null have no term.
func termText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// Get returns one document, or ErrNotFound.
func (s *SQLiteIndex) Get(ctx context.Context, index, id string) (Doc, error) {
	if err := checkIndexName(index); err != nil {
		return Doc{}, err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return Doc{}, err
	}
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT doc FROM erasure_index_docs WHERE idx = ? AND id = ?`, index, id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return Doc{}, fmt.Errorf("index %s: document: %w", index, ErrNotFound)
	}
	if err != nil {
		return Doc{}, sqliteErr("index: get", err)
	}
	d := Doc{ID: id}
	if err := json.Unmarshal([]byte(raw), &d.Fields); err != nil {
		return Doc{}, Permanent(fmt.Errorf("index: decode stored document: %w", err))
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
		return Permanent(fmt.Errorf("index %q does not exist", index))
	}
	return err
}

// termFilter returns the SQL that selects the IDs of documents whose field
// equals value exactly, and its arguments.
func termFilter(index, field, value string) (string, []any) {
	if field == "_id" {
		return `SELECT id FROM erasure_index_docs WHERE idx = ? AND id = ?`, []any{index, value}
	}
	return `SELECT id FROM erasure_index_terms WHERE idx = ? AND field = ? AND value = ?`, []any{index, field, value}
}

func checkTermQuery(index, field, value string) error {
	if err := checkIndexName(index); err != nil {
		return err
	}
	if err := checkField(field); err != nil {
		return err
	}
	return checkTerm(value)
}

// Count counts documents whose field equals value exactly.
func (s *SQLiteIndex) Count(ctx context.Context, index, field, value string) (int64, error) {
	if err := checkTermQuery(index, field, value); err != nil {
		return 0, err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return 0, err
	}
	var n int64
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if err := requireIndex(ctx, tx, index); err != nil {
			return err
		}
		sub, args := termFilter(index, field, value)
		return tx.QueryRowContext(ctx, `SELECT count(DISTINCT id) FROM (`+sub+`)`, args...).Scan(&n)
	})
	return n, sqliteErr("index: count", err)
}

// DeleteTerm deletes every document whose field equals value exactly.
func (s *SQLiteIndex) DeleteTerm(ctx context.Context, index, field, value string) (int64, error) {
	if err := checkTermQuery(index, field, value); err != nil {
		return 0, err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return 0, err
	}
	var n int64
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if err := requireIndex(ctx, tx, index); err != nil {
			return err
		}
		sub, args := termFilter(index, field, value)
		// The subquery is evaluated before any row goes, so the cascade
		// removing terms cannot disturb it.
		res, err := tx.ExecContext(ctx,
			`DELETE FROM erasure_index_docs WHERE idx = ? AND id IN (`+sub+`)`,
			append([]any{index}, args...)...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, sqliteErr("index: delete term", err)
}

// DeleteIDs deletes documents by ID and returns how many existed.
func (s *SQLiteIndex) DeleteIDs(ctx context.Context, index string, ids ...string) (int64, error) {
	if err := checkIndexName(index); err != nil {
		return 0, err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return 0, err
	}
	uniq := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	var n int64
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if err := requireIndex(ctx, tx, index); err != nil {
			return err
		}
		for len(uniq) > 0 {
			batch := uniq[:min(len(uniq), sqliteBatch)]
			uniq = uniq[len(batch):]
			args := make([]any, 0, len(batch)+1)
			args = append(args, index)
			for _, id := range batch {
				args = append(args, id)
			}
			res, err := tx.ExecContext(ctx,
				`DELETE FROM erasure_index_docs WHERE idx = ? AND id IN (`+placeholders(len(batch))+`)`, args...)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	return n, sqliteErr("index: delete IDs", err)
}

// Search pages through an index. ContactID matches the document ID or the
// contact_id field; Text is a case-insensitive substring of the customer's
// name, phone or email (compared with instr, so no character in it is a
// wildcard); Channel, Agent and Queue match their fields exactly; From and To
// bound initiation_timestamp inclusively. Results are newest first, then by
// ID; Limit defaults to SearchDefaultLimit and is capped at SearchMaxLimit.
func (s *SQLiteIndex) Search(ctx context.Context, index string, q Query) (SearchResult, error) {
	if err := checkIndexName(index); err != nil {
		return SearchResult{}, err
	}
	if err := s.schema.ensure(ctx, s.db); err != nil {
		return SearchResult{}, err
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
		args = append(args, q.ContactID, fieldContactID, q.ContactID)
	}
	if q.Text != "" {
		needle := strings.ToLower(q.Text)
		where = append(where, `(instr(d.name_lc, ?) > 0 OR instr(d.phone_lc, ?) > 0 OR instr(d.email_lc, ?) > 0)`)
		args = append(args, needle, needle, needle)
	}
	if q.Channel != "" {
		hasTerm("channel", q.Channel)
	}
	if q.Agent != "" {
		hasTerm("agent", q.Agent)
	}
	if q.Queue != "" {
		hasTerm("queue", q.Queue)
	}
	if !q.From.IsZero() {
		where = append(where, "d.initiated_at >= ?")
		args = append(args, formatTime(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "d.initiated_at <= ?")
		args = append(args, formatTime(q.To))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = SearchDefaultLimit
	}
	limit = min(limit, SearchMaxLimit)
	offset := max(q.Offset, 0)
	cond := strings.Join(where, " AND ")

	var res SearchResult
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
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
			var d Doc
			var raw string
			if err := rows.Scan(&d.ID, &raw); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(raw), &d.Fields); err != nil {
				return Permanent(fmt.Errorf("decode stored document: %w", err))
			}
			res.Docs = append(res.Docs, d)
		}
		return rows.Err()
	})
	if err != nil {
		return SearchResult{}, sqliteErr("index: search", err)
	}
	return res, nil
}
