package sqlite

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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

	migrateMu sync.Mutex
	migrated  bool

	auditKey ed25519.PrivateKey
}

var _ stores.Ledger = (*Ledger)(nil)

// LedgerOption configures a Ledger.
type LedgerOption func(*Ledger)

// WithAuditKey signs every audit entry the ledger appends with key, and
// checks signatures with its public half in VerifyChain.
func WithAuditKey(key ed25519.PrivateKey) LedgerOption {
	return func(l *Ledger) { l.auditKey = key }
}

// NewLedger returns a ledger stored in db (see Open). Its tables
// are created on first use.
func NewLedger(db *sql.DB, opts ...LedgerOption) *Ledger {
	l := newLedger(db)
	for _, o := range opts {
		o(l)
	}
	return l
}

func newLedger(db *sql.DB) *Ledger {
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
		// First writer wins: a request ID is bound to the content digest
		// first seen with it, and never rebound.
		`CREATE TABLE IF NOT EXISTS erasure_ledger_bindings (
			request_id TEXT PRIMARY KEY,
			digest     TEXT NOT NULL,
			bound_at   TEXT NOT NULL
		) WITHOUT ROWID`,
		`CREATE INDEX IF NOT EXISTS erasure_ledger_requests_unpublished
			ON erasure_ledger_requests (completed_at) WHERE outcome IS NOT NULL AND published = 0`,
		auditTableSQL("erasure_audit"),
		holdsTableSQL,
		runsTableSQL,
		revocationsTableSQL,
		attemptsTableSQL,
		attemptsIndexSQL,
	}}}
}

// auditTableSQL creates the audit table under name. A request has several
// entries (decision, late, refused), so request_id is not unique.
func auditTableSQL(name string) string {
	return `CREATE TABLE IF NOT EXISTS ` + name + ` (
			seq            INTEGER PRIMARY KEY,
			request_id     TEXT NOT NULL,
			setting        TEXT NOT NULL,
			functionality  TEXT NOT NULL,
			actor          TEXT NOT NULL,
			contact_ids    TEXT NOT NULL,
			status         TEXT NOT NULL,
			error_code     TEXT NOT NULL,
			channels       TEXT NOT NULL,
			requested_at   TEXT NOT NULL,
			completed_at   TEXT NOT NULL,
			replay_of      TEXT NOT NULL,
			prev_hash      TEXT NOT NULL,
			hash           TEXT NOT NULL,
			amends         INTEGER NOT NULL DEFAULT 0,
			request_digest TEXT NOT NULL DEFAULT '',
			signature      TEXT NOT NULL DEFAULT '',
			reason_code    TEXT NOT NULL DEFAULT '',
			ticket         TEXT NOT NULL DEFAULT '',
			held_contact_ids TEXT NOT NULL DEFAULT '',
			producer       TEXT NOT NULL DEFAULT ''
		)`
}

// auditExtras are the audit table's indexes and triggers, created after the
// table and again after a migration rebuilt it.
var auditExtras = []string{
	`CREATE INDEX IF NOT EXISTS erasure_audit_request ON erasure_audit (request_id)`,
	`CREATE INDEX IF NOT EXISTS erasure_audit_completed ON erasure_audit (completed_at)`,
	`CREATE INDEX IF NOT EXISTS erasure_audit_actor ON erasure_audit (actor)`,
	// The code has no update or delete path for the audit log; these make
	// the database refuse one too. (They can be dropped by whoever owns
	// the file, which is what the hash chain is for.)
	`CREATE TRIGGER IF NOT EXISTS erasure_audit_no_update BEFORE UPDATE ON erasure_audit
		BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
	`CREATE TRIGGER IF NOT EXISTS erasure_audit_no_delete BEFORE DELETE ON erasure_audit
		BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
}

// ensure creates the tables on first use and migrates an audit table made
// before a request could have more than one entry.
func (l *Ledger) ensure(ctx context.Context) error {
	if err := l.schema.ensure(ctx, l.db); err != nil {
		return err
	}
	l.migrateMu.Lock()
	defer l.migrateMu.Unlock()
	if l.migrated {
		return nil
	}
	if err := inTx(ctx, l.db, func(tx *sql.Tx) error { return migrateAudit(ctx, tx) }); err != nil {
		return sqliteErr("ledger: migrate audit table", err)
	}
	l.migrated = true
	return nil
}

// migrateAudit rebuilds an audit table that lacks the amends column (and
// has a unique request_id) with every entry copied as it is: SQLite cannot
// drop a constraint in place. Stored columns keep their values, so the
// chain verifies as before. Dropping the old table drops its triggers first,
// so they do not fire.
func migrateAudit(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('erasure_audit') WHERE name = 'amends'`).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		const old = `seq, request_id, setting, functionality, actor, contact_ids, status, error_code,
			channels, requested_at, completed_at, replay_of, prev_hash, hash`
		for _, stmt := range []string{
			`DROP TABLE IF EXISTS erasure_audit_next`,
			auditTableSQL("erasure_audit_next"),
			`INSERT INTO erasure_audit_next (` + old + `) SELECT ` + old + ` FROM erasure_audit ORDER BY seq`,
			`DROP TABLE erasure_audit`,
			`ALTER TABLE erasure_audit_next RENAME TO erasure_audit`,
		} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
	}
	// Entries from before signing read as unsigned, which is what they are;
	// entries from before reasons, tickets, holds and producers read as
	// without them, which is how they were hashed.
	for _, col := range []string{"signature", "reason_code", "ticket", "held_contact_ids", "producer"} {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('erasure_audit') WHERE name = ?`, col).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE erasure_audit ADD COLUMN `+col+` TEXT NOT NULL DEFAULT ''`); err != nil {
				return err
			}
		}
	}
	for _, stmt := range auditExtras {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
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
	if err := l.ensure(ctx); err != nil {
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
	if err := l.ensure(ctx); err != nil {
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
	if err := l.ensure(ctx); err != nil {
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
	if err := l.ensure(ctx); err != nil {
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
	if err := l.ensure(ctx); err != nil {
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
	if err := l.ensure(ctx); err != nil {
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
	if err := l.ensure(ctx); err != nil {
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

		e, err := l.chainAudit(ctx, tx, stores.OutcomeEntry(out, functionality))
		if err != nil {
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

// chainAudit appends the entry build makes as the next link of the chain,
// signed with the audit key: the one place entries are chained and signed.
func (l *Ledger) chainAudit(ctx context.Context, tx *sql.Tx, build func(seq int64, prevHash string) (stores.AuditEntry, error)) (stores.AuditEntry, error) {
	prevSeq, prevHash, err := auditHead(ctx, tx)
	if err != nil {
		return stores.AuditEntry{}, err
	}
	e, err := build(prevSeq+1, prevHash)
	if err != nil {
		return e, err
	}
	stores.SignAudit(&e, l.auditKey)
	return e, insertAudit(ctx, tx, e)
}

// auditHead returns the seq and hash of the last audit entry, or 0 and ""
// for an empty log.
func auditHead(ctx context.Context, tx *sql.Tx) (int64, string, error) {
	var seq int64
	var hash string
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM erasure_audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	return seq, hash, err
}

// insertAudit appends e; the only write to the audit table.
func insertAudit(ctx context.Context, tx *sql.Tx, e stores.AuditEntry) error {
	contactIDs, err := json.Marshal(e.ContactIDs)
	if err != nil {
		return stores.Permanent(fmt.Errorf("encode contact IDs: %w", err))
	}
	channels, err := json.Marshal(e.Channels)
	if err != nil {
		return stores.Permanent(fmt.Errorf("encode channels: %w", err))
	}
	held, err := sqlutil.EncodeHeld(e.HeldContactIDs)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO erasure_audit (`+sqlutil.AuditColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.RequestID, e.Setting, e.Functionality, e.Actor, string(contactIDs), string(e.Status),
		e.ErrorCode, string(channels), stores.FormatTime(e.RequestedAt), stores.FormatTime(e.CompletedAt), e.ReplayOf,
		e.PrevHash, e.Hash, e.Amends, e.RequestDigest, e.Signature, e.ReasonCode, e.Ticket, held, e.Producer)
	return err
}

// auditWhere reads the entries matching cond, in seq order.
func auditWhere(ctx context.Context, q queryer, cond string, args ...any) ([]stores.AuditEntry, error) {
	return queryAudit(ctx, q, `SELECT `+sqlutil.AuditColumns+` FROM erasure_audit WHERE `+cond+` ORDER BY seq`, args...)
}

// queryAudit reads the audit entries a query selects.
func queryAudit(ctx context.Context, q queryer, query string, args ...any) ([]stores.AuditEntry, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []stores.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// BindRequest binds requestID to digest unless it is bound already, in one
// transaction, and returns the digest it is bound to. A request recorded
// before bindings existed is bound to the digest of its recorded content.
func (l *Ledger) BindRequest(ctx context.Context, requestID, digest string) (string, error) {
	if err := sqlutil.CheckRequestID(requestID); err != nil {
		return "", err
	}
	if err := sqlutil.CheckDigest(digest); err != nil {
		return "", err
	}
	if err := l.ensure(ctx); err != nil {
		return "", err
	}
	var bound string
	err := inTx(ctx, l.db, func(tx *sql.Tx) error {
		first := digest
		var raw string
		err := tx.QueryRowContext(ctx, `SELECT request FROM erasure_ledger_requests WHERE request_id = ?`, requestID).Scan(&raw)
		switch {
		case err == nil:
			var r schemas.DeletionRequested
			if err := json.Unmarshal([]byte(raw), &r); err != nil {
				return stores.Permanent(fmt.Errorf("decode stored request: %w", err))
			}
			first = r.ContentDigest()
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO erasure_ledger_bindings (request_id, digest, bound_at)
			VALUES (?, ?, ?)`, requestID, first, stores.FormatTime(time.Now())); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT digest FROM erasure_ledger_bindings WHERE request_id = ?`, requestID).Scan(&bound)
	})
	return bound, sqliteErr("ledger: bind request", err)
}

// Unpublished lists requests whose outcome is not marked published,
// earliest completion first.
func (l *Ledger) Unpublished(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		limit = sqlutil.OverdueDefaultLimit
	}
	limit = min(limit, sqlutil.OverdueMaxLimit)
	if err := l.ensure(ctx); err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, `SELECT request_id FROM erasure_ledger_requests
		WHERE outcome IS NOT NULL AND published = 0 ORDER BY completed_at, request_id LIMIT ?`, limit)
	if err != nil {
		return nil, sqliteErr("ledger: unpublished", err)
	}
	ids, err := sqlutil.ScanStrings(rows)
	return ids, sqliteErr("ledger: unpublished", err)
}

// Amend appends the late entry of a result that arrived after its request
// was decided, in one transaction with the read of the decision; the same
// result is appended once.
func (l *Ledger) Amend(ctx context.Context, res schemas.ChannelCompleted) (stores.AuditEntry, bool, error) {
	if err := sqlutil.CheckRequestID(res.RequestID); err != nil {
		return stores.AuditEntry{}, false, err
	}
	if err := l.ensure(ctx); err != nil {
		return stores.AuditEntry{}, false, err
	}
	var (
		entry   stores.AuditEntry
		created bool
	)
	err := inTx(ctx, l.db, func(tx *sql.Tx) error {
		var rawOut sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT outcome FROM erasure_ledger_requests WHERE request_id = ?`, res.RequestID).Scan(&rawOut)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !rawOut.Valid) {
			return stores.Permanent(errors.New("request has no outcome to amend"))
		}
		if err != nil {
			return err
		}
		var out schemas.DeletionCompleted
		if err := json.Unmarshal([]byte(rawOut.String), &out); err != nil {
			return stores.Permanent(fmt.Errorf("decode stored outcome: %w", err))
		}
		late, err := auditWhere(ctx, tx, `request_id = ? AND amends > 0`, res.RequestID)
		if err != nil {
			return err
		}
		for _, e := range late {
			if stores.SameLateResult(e, res) {
				entry = e
				return nil
			}
		}
		decision, err := auditWhere(ctx, tx, `seq = ?`, out.AuditSeq)
		if err != nil {
			return err
		}
		if len(decision) != 1 {
			return stores.Permanent(fmt.Errorf("decision entry seq %d not found", out.AuditSeq))
		}
		e, err := l.chainAudit(ctx, tx, func(seq int64, prevHash string) (stores.AuditEntry, error) {
			return stores.LateAuditEntry(decision[0], res, seq, prevHash)
		})
		if err != nil {
			return err
		}
		entry, created = e, true
		return nil
	})
	if err != nil {
		return stores.AuditEntry{}, false, sqliteErr("ledger: amend", err)
	}
	return entry, created, nil
}

// Refuse appends the entry of a refused submission and nothing else; one
// per request ID and digest.
func (l *Ledger) Refuse(ctx context.Context, out schemas.DeletionCompleted, functionality string) (schemas.DeletionCompleted, bool, error) {
	if err := sqlutil.CheckRequestID(out.RequestID); err != nil {
		return out, false, err
	}
	if err := sqlutil.CheckDigest(out.RequestDigest); err != nil {
		return out, false, err
	}
	if err := l.ensure(ctx); err != nil {
		return out, false, err
	}
	out = sqlutil.RefusedOutcome(out)
	var created bool
	err := inTx(ctx, l.db, func(tx *sql.Tx) error {
		prior, err := auditWhere(ctx, tx, `request_id = ? AND status = ? AND request_digest = ?`,
			out.RequestID, string(schemas.StatusRefused), out.RequestDigest)
		if err != nil {
			return err
		}
		if len(prior) > 0 {
			out = sqlutil.OutcomeFromRefusal(out, prior[0])
			return nil
		}
		e, err := l.chainAudit(ctx, tx, stores.OutcomeEntry(out, functionality))
		if err != nil {
			return err
		}
		out.AuditSeq, out.AuditHash, created = e.Seq, e.Hash, true
		return nil
	})
	if err != nil {
		return schemas.DeletionCompleted{}, false, sqliteErr("ledger: refuse", err)
	}
	return out, created, nil
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
		held                     string
	)
	if err := rows.Scan(&e.Seq, &e.RequestID, &e.Setting, &e.Functionality, &e.Actor, &contactIDs, &status,
		&e.ErrorCode, &channels, &requestedAt, &completedAt, &e.ReplayOf, &e.PrevHash, &e.Hash, &e.Amends,
		&e.RequestDigest, &e.Signature, &e.ReasonCode, &e.Ticket, &held, &e.Producer); err != nil {
		return e, err
	}
	if err := sqlutil.DecodeHeld(&e, held); err != nil {
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
	if err := l.ensure(ctx); err != nil {
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
	if err := l.ensure(ctx); err != nil {
		return nil, err
	}
	q, args := sqlutil.AuditQuery(f, "erasure_audit", "erasure_ledger_contacts")
	out, err := queryAudit(ctx, l.db, q, args...)
	return out, sqliteErr("ledger: audit", err)
}

// AuditCount counts the entries Audit returns for f, without paging.
func (l *Ledger) AuditCount(ctx context.Context, f stores.AuditFilter) (int64, error) {
	if err := l.ensure(ctx); err != nil {
		return 0, err
	}
	q, args := sqlutil.AuditCountQuery(f, "erasure_audit", "erasure_ledger_contacts")
	var n int64
	err := l.db.QueryRowContext(ctx, q, args...).Scan(&n)
	return n, sqliteErr("ledger: audit count", err)
}

// AuditActors lists distinct principals of the audit log by prefix.
func (l *Ledger) AuditActors(ctx context.Context, prefix string, limit int) ([]string, error) {
	if err := l.ensure(ctx); err != nil {
		return nil, err
	}
	q, args := sqlutil.AuditActorsQuery(prefix, limit, "erasure_audit")
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, sqliteErr("ledger: audit actors", err)
	}
	out, err := sqlutil.ScanStrings(rows)
	return out, sqliteErr("ledger: audit actors", err)
}

// VerifyChain walks the audit log in seq order, recomputing every hash, and
// returns how many entries verified before the first broken link, which it
// reports by seq. Seqs must run 1, 2, 3…, so a deleted entry is a break too.
// With an audit key, signed entries' signatures are checked as well.
// (Removing entries from the end leaves a valid, shorter chain: the anchors
// detect that, see stores.VerifyAudit.)
func (l *Ledger) VerifyChain(ctx context.Context) (int64, error) {
	return stores.VerifyChainWith(ctx, l.auditKey, l.ScanAudit)
}

// ScanAudit calls fn with every audit entry in seq order and stops at its
// first error.
func (l *Ledger) ScanAudit(ctx context.Context, fn func(stores.AuditEntry) error) error {
	if err := l.ensure(ctx); err != nil {
		return err
	}
	var last int64
	// Read in pages so a long log does not hold the single connection for
	// the whole walk; entries are append-only, so paging by seq is stable.
	for {
		rows, err := l.db.QueryContext(ctx, `SELECT `+sqlutil.AuditColumns+` FROM erasure_audit
			WHERE seq > ? ORDER BY seq LIMIT ?`, last, sqlutil.VerifyPage)
		if err != nil {
			return sqliteErr("ledger: scan audit", err)
		}
		var page []stores.AuditEntry
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				rows.Close()
				return sqliteErr("ledger: scan audit", err)
			}
			page = append(page, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return sqliteErr("ledger: scan audit", err)
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
			last = e.Seq
		}
		if len(page) < sqlutil.VerifyPage {
			return nil
		}
	}
}
