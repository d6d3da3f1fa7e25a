package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
)

// Ledger is the embedded ledger: the aggregator's join state and the
// audit log, in one database so that an outcome and its audit entry are
// written in one transaction.
type Ledger struct {
	db     *sql.DB
	schema sqliteSchema
}

var _ stores.Ledger = (*Ledger)(nil)

// NewLedger returns a ledger stored in db (see Open). Its tables
// are created on first use.
func NewLedger(db *sql.DB) *Ledger {
	return &Ledger{db: db, schema: sqliteSchema{stmts: []string{
		`CREATE TABLE IF NOT EXISTS erasure_ledger_requests (
			request_id   TEXT PRIMARY KEY,
			request      TEXT NOT NULL,
			requested_at TEXT NOT NULL,
			deadline     TEXT NOT NULL,
			finalizing   INTEGER NOT NULL DEFAULT 0,
			outcome      TEXT,
			completed_at TEXT,
			published    INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX IF NOT EXISTS erasure_ledger_requests_open
			ON erasure_ledger_requests (deadline) WHERE outcome IS NULL`,
		// No foreign key to requests: results may arrive before their request.
		`CREATE TABLE IF NOT EXISTS erasure_ledger_results (
			request_id   TEXT NOT NULL,
			channel      TEXT NOT NULL,
			completed_at TEXT NOT NULL,
			result       TEXT NOT NULL,
			PRIMARY KEY (request_id, channel)
		) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS erasure_ledger_contacts (
			contact_id TEXT NOT NULL,
			request_id TEXT NOT NULL,
			PRIMARY KEY (contact_id, request_id)
		) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS erasure_audit (
			seq           INTEGER PRIMARY KEY,
			request_id    TEXT NOT NULL UNIQUE,
			setting       TEXT NOT NULL,
			functionality TEXT NOT NULL,
			actor         TEXT NOT NULL,
			contact_ids   TEXT NOT NULL,
			status        TEXT NOT NULL,
			error_code    TEXT NOT NULL,
			channels      TEXT NOT NULL,
			requested_at  TEXT NOT NULL,
			completed_at  TEXT NOT NULL,
			replay_of     TEXT NOT NULL,
			prev_hash     TEXT NOT NULL,
			hash          TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS erasure_audit_completed ON erasure_audit (completed_at)`,
		`CREATE INDEX IF NOT EXISTS erasure_audit_actor ON erasure_audit (actor)`,
		// The code has no update or delete path for the audit log; these make
		// the database refuse one too. (They can be dropped by whoever owns
		// the file, which is what the hash chain is for.)
		`CREATE TRIGGER IF NOT EXISTS erasure_audit_no_update BEFORE UPDATE ON erasure_audit
			BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
		`CREATE TRIGGER IF NOT EXISTS erasure_audit_no_delete BEFORE DELETE ON erasure_audit
			BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
	}}}
}

// PutRequest records a request; recording it again changes nothing, not even
// the deadline.
func (l *Ledger) PutRequest(ctx context.Context, r schemas.DeletionRequested, deadline time.Time) error {
	if err := sqlutil.CheckRequestID(r.RequestID); err != nil {
		return err
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return stores.Permanent(fmt.Errorf("ledger: encode request: %w", err))
	}
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return err
	}
	err = inTx(ctx, l.db, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO erasure_ledger_requests
			(request_id, request, requested_at, deadline) VALUES (?, ?, ?, ?)`,
			r.RequestID, string(raw), stores.FormatTime(r.RequestedAt), stores.FormatTime(deadline))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return putContacts(ctx, tx, r.RequestID, r.ContactIDs)
	})
	return sqliteErr("ledger: put request", err)
}

func putContacts(ctx context.Context, tx *sql.Tx, requestID string, contactIDs []string) error {
	stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO erasure_ledger_contacts (contact_id, request_id) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, c := range contactIDs {
		if _, err := stmt.ExecContext(ctx, c, requestID); err != nil {
			return err
		}
	}
	return nil
}

// PutResult upserts a channel result on (request, channel). A redelivered
// older result (earlier CompletedAt) does not overwrite a newer one.
func (l *Ledger) PutResult(ctx context.Context, r schemas.ChannelCompleted) error {
	if err := sqlutil.CheckRequestID(r.RequestID); err != nil {
		return err
	}
	if r.Channel == "" {
		return stores.Permanent(errors.New("ledger: result without channel"))
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return stores.Permanent(fmt.Errorf("ledger: encode result: %w", err))
	}
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return err
	}
	_, err = l.db.ExecContext(ctx, `INSERT INTO erasure_ledger_results (request_id, channel, completed_at, result)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (request_id, channel) DO UPDATE SET completed_at = excluded.completed_at, result = excluded.result
		WHERE excluded.completed_at >= erasure_ledger_results.completed_at`,
		r.RequestID, string(r.Channel), stores.FormatTime(r.CompletedAt), string(raw))
	return sqliteErr("ledger: put result", err)
}

type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// State returns the join state of a request, or ErrNotFound.
func (l *Ledger) State(ctx context.Context, requestID string) (stores.RequestState, error) {
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return stores.RequestState{}, err
	}
	var st stores.RequestState
	err := inTx(ctx, l.db, func(tx *sql.Tx) error {
		var err error
		st, err = loadState(ctx, tx, requestID)
		return err
	})
	if errors.Is(err, stores.ErrNotFound) {
		return stores.RequestState{}, err
	}
	return st, sqliteErr("ledger: state", err)
}

func loadState(ctx context.Context, q queryer, requestID string) (stores.RequestState, error) {
	var (
		st         stores.RequestState
		rawReq     string
		deadline   string
		finalizing bool
		published  bool
		rawOut     sql.NullString
	)
	err := q.QueryRowContext(ctx, `SELECT request, deadline, finalizing, outcome, published
		FROM erasure_ledger_requests WHERE request_id = ?`, requestID).Scan(&rawReq, &deadline, &finalizing, &rawOut, &published)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("ledger: request: %w", stores.ErrNotFound)
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(rawReq), &st.Request); err != nil {
		return st, stores.Permanent(fmt.Errorf("ledger: decode stored request: %w", err))
	}
	if st.Deadline, err = stores.ParseTime(deadline); err != nil {
		return st, stores.Permanent(fmt.Errorf("ledger: stored deadline: %w", err))
	}
	st.Finalizing = finalizing
	st.Published = published
	if rawOut.Valid {
		st.Outcome = new(schemas.DeletionCompleted)
		if err := json.Unmarshal([]byte(rawOut.String), st.Outcome); err != nil {
			return st, stores.Permanent(fmt.Errorf("ledger: decode stored outcome: %w", err))
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT result FROM erasure_ledger_results WHERE request_id = ?`, requestID)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	st.Results, err = sqlutil.ScanResults(rows)
	return st, err
}

// MarkFinalizing records that phase 2 was started; ErrNotFound for an
// unknown request.
func (l *Ledger) MarkFinalizing(ctx context.Context, requestID string) error {
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return err
	}
	res, err := l.db.ExecContext(ctx, `UPDATE erasure_ledger_requests SET finalizing = 1 WHERE request_id = ?`, requestID)
	if err != nil {
		return sqliteErr("ledger: mark finalizing", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return sqliteErr("ledger: mark finalizing", err)
	}
	if n == 0 {
		return fmt.Errorf("ledger: mark finalizing: %w", stores.ErrNotFound)
	}
	return nil
}

// MarkPublished records that the outcome event was published. It is
// ErrNotFound for an unknown request and a permanent error for one without
// an outcome: publishing comes after Complete.
func (l *Ledger) MarkPublished(ctx context.Context, requestID string) error {
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return err
	}
	err := inTx(ctx, l.db, func(tx *sql.Tx) error {
		var hasOutcome bool
		err := tx.QueryRowContext(ctx, `SELECT outcome IS NOT NULL FROM erasure_ledger_requests WHERE request_id = ?`,
			requestID).Scan(&hasOutcome)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("request: %w", stores.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !hasOutcome {
			return stores.Permanent(errors.New("request has no outcome to publish"))
		}
		_, err = tx.ExecContext(ctx, `UPDATE erasure_ledger_requests SET published = 1 WHERE request_id = ?`, requestID)
		return err
	})
	if errors.Is(err, stores.ErrNotFound) {
		return fmt.Errorf("ledger: mark published: %w", err)
	}
	return sqliteErr("ledger: mark published", err)
}

// Overdue lists unfinished requests whose deadline is before now, earliest
// deadline first.
func (l *Ledger) Overdue(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		limit = sqlutil.OverdueDefaultLimit
	}
	limit = min(limit, sqlutil.OverdueMaxLimit)
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, `SELECT request_id FROM erasure_ledger_requests
		WHERE outcome IS NULL AND deadline < ? ORDER BY deadline, request_id LIMIT ?`, stores.FormatTime(now), limit)
	if err != nil {
		return nil, sqliteErr("ledger: overdue", err)
	}
	ids, err := sqlutil.ScanStrings(rows)
	return ids, sqliteErr("ledger: overdue", err)
}

// Complete stores the outcome and appends its audit entry in one
// transaction. A request that already has an outcome keeps it: the stored
// outcome is returned with created=false and nothing is written.
func (l *Ledger) Complete(ctx context.Context, out schemas.DeletionCompleted, functionality string) (schemas.DeletionCompleted, bool, error) {
	if err := sqlutil.CheckRequestID(out.RequestID); err != nil {
		return out, false, err
	}
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return out, false, err
	}
	if out.CompletedAt.IsZero() {
		out.CompletedAt = time.Now()
	}
	out.RequestedAt = out.RequestedAt.UTC()
	out.CompletedAt = out.CompletedAt.UTC()

	var (
		stored  schemas.DeletionCompleted
		created bool
	)
	err := inTx(ctx, l.db, func(tx *sql.Tx) error {
		var existing sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT outcome FROM erasure_ledger_requests WHERE request_id = ?`,
			out.RequestID).Scan(&existing)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if existing.Valid {
			if err := json.Unmarshal([]byte(existing.String), &stored); err != nil {
				return stores.Permanent(fmt.Errorf("decode stored outcome: %w", err))
			}
			return nil
		}
		if errors.Is(err, sql.ErrNoRows) {
			// An outcome for a request never recorded (a deadline sweep after
			// the request row was lost, say) still needs a home for State and
			// ByContact; rebuild the request from what the outcome carries.
			if err := insertRequestFromOutcome(ctx, tx, out); err != nil {
				return err
			}
		}

		var prevSeq int64
		var prevHash string
		err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM erasure_audit ORDER BY seq DESC LIMIT 1`).Scan(&prevSeq, &prevHash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		e, err := stores.NewAuditEntry(out, functionality, prevSeq+1, prevHash)
		if err != nil {
			return err
		}
		contactIDs, _ := json.Marshal(e.ContactIDs)
		channels, err := json.Marshal(e.Channels)
		if err != nil {
			return stores.Permanent(fmt.Errorf("encode channels: %w", err))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO erasure_audit (seq, request_id, setting, functionality,
			actor, contact_ids, status, error_code, channels, requested_at, completed_at, replay_of, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, e.RequestID, e.Setting, e.Functionality, e.Actor, string(contactIDs), string(e.Status),
			e.ErrorCode, string(channels), stores.FormatTime(e.RequestedAt), stores.FormatTime(e.CompletedAt), e.ReplayOf,
			e.PrevHash, e.Hash); err != nil {
			return err
		}

		out.AuditSeq, out.AuditHash = e.Seq, e.Hash
		raw, err := json.Marshal(out)
		if err != nil {
			return stores.Permanent(fmt.Errorf("encode outcome: %w", err))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE erasure_ledger_requests SET outcome = ?, completed_at = ?
			WHERE request_id = ?`, string(raw), stores.FormatTime(out.CompletedAt), out.RequestID); err != nil {
			return err
		}
		if err := putContacts(ctx, tx, out.RequestID, out.ContactIDs); err != nil {
			return err
		}
		stored, created = out, true
		return nil
	})
	if err != nil {
		return schemas.DeletionCompleted{}, false, sqliteErr("ledger: complete", err)
	}
	return stored, created, nil
}

func insertRequestFromOutcome(ctx context.Context, tx *sql.Tx, out schemas.DeletionCompleted) error {
	r := stores.RequestFromOutcome(out)
	raw, err := json.Marshal(r)
	if err != nil {
		return stores.Permanent(fmt.Errorf("encode request: %w", err))
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO erasure_ledger_requests (request_id, request, requested_at, deadline)
		VALUES (?, ?, ?, ?)`, r.RequestID, string(raw), stores.FormatTime(r.RequestedAt), stores.FormatTime(out.CompletedAt))
	return err
}

func scanAudit(rows *sql.Rows) (stores.AuditEntry, error) {
	var (
		e                        stores.AuditEntry
		contactIDs, channels     string
		status                   string
		requestedAt, completedAt string
	)
	if err := rows.Scan(&e.Seq, &e.RequestID, &e.Setting, &e.Functionality, &e.Actor, &contactIDs, &status,
		&e.ErrorCode, &channels, &requestedAt, &completedAt, &e.ReplayOf, &e.PrevHash, &e.Hash); err != nil {
		return e, err
	}
	return e, sqlutil.DecodeAudit(&e, status, contactIDs, channels, requestedAt, completedAt)
}

// ByContact returns the latest request states for a contact, newest request
// first.
func (l *Ledger) ByContact(ctx context.Context, contactID string, limit int) ([]stores.RequestState, error) {
	if limit <= 0 {
		limit = stores.AuditDefaultLimit
	}
	limit = min(limit, sqlutil.ByContactMaxLimit)
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return nil, err
	}
	var out []stores.RequestState
	err := inTx(ctx, l.db, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT r.request_id FROM erasure_ledger_contacts c
			JOIN erasure_ledger_requests r ON r.request_id = c.request_id
			WHERE c.contact_id = ? ORDER BY r.requested_at DESC, r.request_id DESC LIMIT ?`, contactID, limit)
		if err != nil {
			return err
		}
		ids, err := sqlutil.ScanStrings(rows)
		if err != nil {
			return err
		}
		for _, id := range ids {
			st, err := loadState(ctx, tx, id)
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, sqliteErr("ledger: by contact", err)
}

// Audit queries the audit log, newest entry first. From and To bound
// CompletedAt inclusively.
func (l *Ledger) Audit(ctx context.Context, f stores.AuditFilter) ([]stores.AuditEntry, error) {
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return nil, err
	}
	q, args := sqlutil.AuditQuery(f, "erasure_audit", "erasure_ledger_contacts")
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, sqliteErr("ledger: audit", err)
	}
	defer rows.Close()
	var out []stores.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, sqliteErr("ledger: audit", err)
		}
		out = append(out, e)
	}
	return out, sqliteErr("ledger: audit", rows.Err())
}

// VerifyChain walks the audit log in seq order, recomputing every hash, and
// returns how many entries verified before the first broken link, which it
// reports by seq. Seqs must run 1, 2, 3…, so a deleted entry is a break too.
// (Removing entries from the end leaves a valid, shorter chain: compare the
// head hash with one kept elsewhere to detect that.)
func (l *Ledger) VerifyChain(ctx context.Context) (int64, error) {
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return 0, err
	}
	var n int64
	prev := ""
	// Read in pages so a long log does not hold the single connection for
	// the whole walk; entries are append-only, so paging by seq is stable.
	for {
		rows, err := l.db.QueryContext(ctx, `SELECT `+sqlutil.AuditColumns+` FROM erasure_audit
			WHERE seq > ? ORDER BY seq LIMIT ?`, n, sqlutil.VerifyPage)
		if err != nil {
			return n, sqliteErr("ledger: verify chain", err)
		}
		var page []stores.AuditEntry
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				rows.Close()
				return n, sqliteErr("ledger: verify chain", err)
			}
			page = append(page, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, sqliteErr("ledger: verify chain", err)
		}
		for _, e := range page {
			if err := stores.VerifyAuditLink(e, n, prev); err != nil {
				return n, err
			}
			prev = e.Hash
			n++
		}
		if len(page) < sqlutil.VerifyPage {
			return n, nil
		}
	}
}
