package clickhouse

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
)

// Ledger is the production ledger: the aggregator's join state and
// the hash-chained audit log in ClickHouse. Its tables are prefixed
// "erasure_", a prefix the warehouse refuses, so the data map can never
// reach them.
//
//   - erasure_ledger_requests and erasure_ledger_results are
//     ReplacingMergeTree tables with a UInt64 version column, read with
//     FINAL. A state change (finalizing, outcome, published) inserts a new
//     version of the whole row; nothing is ever changed in place.
//   - erasure_ledger_contacts maps contacts to requests for ByContact and
//     the audit log's contact filter.
//   - erasure_audit is an append-only MergeTree ordered by seq. This type
//     has no update or delete path for it; the hash chain (see AuditHash) is
//     what detects a change made behind its back.
//
// ClickHouse has no transactions, so the audit chain has one writer at a
// time: Complete, Amend, Refuse and every other write to a request row run
// behind the ledger's mutex within the process and behind the writer lock
// (see writeLock) across processes, and read the existing outcome and
// audit entry, the next seq (max(seq)+1) and the previous hash under them.
// So several aggregators can share one ledger: a request still gets one
// decision entry, a late result one late entry, and the chain does not
// fork. A request row is rewritten whole from what was read under the
// lock, so no process overwrites another's newer state.
//
// Complete appends the audit entry before it stores the outcome; if it is
// interrupted in between, the next Complete for the request finds the entry
// and finishes the write from it instead of appending a second one.
//
// erasure_ledger_bindings binds request IDs to content digests. ClickHouse
// has no insert-if-absent, so BindRequest reads first and, when there is no
// binding, takes a lock of that request ID alone (a writeLock named after
// it), reads again, inserts, and reads the earliest binding (by insertion
// time, then digest). The lock is what makes the first binding win across
// processes: without it two processes binding different contents of one ID
// at once could each read their own row as the earliest (each stamps
// bound_at with its own clock) and both delete.
//
// erasure_ledger_runs has one row per run of a channel for a request
// (MarkRun): a run that finds rows before its own follows one that ended
// without a result.
//
// Times are stored as fixed-width UTC RFC 3339 strings (the SQLite
// ledger's format), so they sort and compare correctly as text. Inserts are
// INSERT … SELECT over bound arrays (columnsInsert), as in Warehouse, which
// work on old servers where the batch API and bound VALUES hang.
type Ledger struct {
	w *Warehouse

	mu          sync.Mutex // serialises every write; see the type comment
	lastVersion uint64
	writers     *writeLock // serialises writers across processes; held under mu

	attempts attemptCounters // see attempts.go

	auditKey ed25519.PrivateKey
}

// LedgerOption configures a Ledger.
type LedgerOption func(*Ledger)

// WithAuditKey signs every audit entry the ledger appends with key, and
// checks signatures with its public half in VerifyChain.
func WithAuditKey(key ed25519.PrivateKey) LedgerOption {
	return func(l *Ledger) { l.auditKey = key }
}

var _ stores.Ledger = (*Ledger)(nil)

const (
	chLedgerRequests = "erasure_ledger_requests"
	chLedgerResults  = "erasure_ledger_results"
	chLedgerContacts = "erasure_ledger_contacts"
	chLedgerAudit    = "erasure_audit"
	chLedgerBindings = "erasure_ledger_bindings"
)

// NewLedger connects to ClickHouse (the same configuration as the
// warehouse) and creates the ledger's tables if they are missing. The
// database must exist.
func NewLedger(ctx context.Context, cfg Config, opts ...LedgerOption) (*Ledger, error) {
	w, err := NewWarehouse(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l := &Ledger{w: w, writers: newWriteLock(w.conn, w.table(chLedgerLocks), "ledger")}
	for _, o := range opts {
		o(l)
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + w.table(chLedgerRequests) + ` (
			request_id   String,
			version      UInt64,
			request      String,
			requested_at String,
			deadline     String,
			finalizing   UInt8,
			outcome      String,
			completed_at String,
			published    UInt8
		) ENGINE = ReplacingMergeTree(version) ORDER BY request_id`,
		// Results may arrive before their request. The version is the
		// result's CompletedAt, so the latest result wins whatever order
		// they are written in.
		`CREATE TABLE IF NOT EXISTS ` + w.table(chLedgerResults) + ` (
			request_id   String,
			channel      String,
			version      UInt64,
			completed_at String,
			result       String
		) ENGINE = ReplacingMergeTree(version) ORDER BY (request_id, channel)`,
		`CREATE TABLE IF NOT EXISTS ` + w.table(chLedgerContacts) + ` (
			contact_id String,
			request_id String
		) ENGINE = ReplacingMergeTree() ORDER BY (contact_id, request_id)`,
		`CREATE TABLE IF NOT EXISTS ` + w.table(chLedgerAudit) + ` (
			seq           UInt64,
			request_id    String,
			setting       String,
			functionality String,
			actor         String,
			contact_ids   String,
			status        String,
			error_code    String,
			channels      String,
			requested_at  String,
			completed_at  String,
			replay_of     String,
			prev_hash     String,
			hash          String,
			amends        UInt64,
			request_digest String,
			signature     String,
			reason_code   String,
			ticket        String,
			held_contact_ids String,
			producer      String
		) ENGINE = MergeTree() ORDER BY seq`,
		// Plain MergeTree: every binding row is kept, so the earliest one
		// can always be found (a replacing engine could keep a later copy).
		`CREATE TABLE IF NOT EXISTS ` + w.table(chLedgerBindings) + ` (
			request_id String,
			digest     String,
			bound_at   UInt64
		) ENGINE = MergeTree() ORDER BY (request_id, bound_at, digest)`,
		attemptsTableSQL(w.table(chLoginAttempts)),
		holdsTableSQL(w.table(chLedgerHolds)),
		runsTableSQL(w.table(chLedgerRuns)),
		revocationsTableSQL(w.table(chSessionRevocations)),
		locksTableSQL(w.table(chLedgerLocks)),
	}
	for _, q := range stmts {
		if err := w.conn.Exec(ctx, q); err != nil {
			w.Close()
			return nil, clickhouseErr(ctx, "ledger: create tables", err)
		}
	}
	if err := l.addAuditColumns(ctx); err != nil {
		w.Close()
		return nil, clickhouseErr(ctx, "ledger: migrate audit table", err)
	}
	return l, nil
}

// addAuditColumns adds the columns an audit table created before late and
// refused entries, or before signatures, lacks. Rows written before read them as 0 and "", which is
// what their entries hashed as.
func (l *Ledger) addAuditColumns(ctx context.Context) error {
	for _, c := range []struct{ name, def string }{
		{"amends", "UInt64 DEFAULT 0"},
		{"request_digest", "String DEFAULT ''"},
		{"signature", "String DEFAULT ''"},
		{"reason_code", "String DEFAULT ''"},
		{"ticket", "String DEFAULT ''"},
		{"held_contact_ids", "String DEFAULT ''"},
		{"producer", "String DEFAULT ''"},
	} {
		has := func() (bool, error) {
			var n uint64
			err := l.conn().QueryRow(ctx, `SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?`,
				l.w.db, chLedgerAudit, c.name).Scan(&n)
			return n > 0, err
		}
		ok, err := has()
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if err := l.conn().Exec(ctx, `ALTER TABLE `+l.table(chLedgerAudit)+` ADD COLUMN `+chIdent(c.name)+` `+c.def); err != nil {
			// Another process may have added it meanwhile.
			if ok, herr := has(); herr != nil || !ok {
				return err
			}
		}
	}
	return nil
}

// Close closes the connections.
func (l *Ledger) Close() error { return l.w.Close() }

func (l *Ledger) conn() chdriver.Conn { return l.w.conn }

func (l *Ledger) table(name string) string { return l.w.table(name) }

// chInsert inserts rows of text values into table, an INSERT … SELECT
// over bound arrays (columnsInsert) per 500 rows; types gives each
// column's ClickHouse type (values are bound as strings and cast).
func (l *Ledger) chInsert(ctx context.Context, table string, cols, types []string, rows ...[]string) error {
	if len(rows) == 0 {
		return nil
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = chIdent(c)
	}
	insert := columnsInsert(l.table(table), quoted, types)
	for start := 0; start < len(rows); {
		end := min(start+clickhouseInsertRows, len(rows))
		if err := l.conn().Exec(ctx, insert, columnArgs(rows[start:end], len(cols))...); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// chRequestRow is one version of a request row.
type chRequestRow struct {
	requestID   string
	version     uint64
	request     string
	requestedAt string
	deadline    string
	finalizing  bool
	outcome     string // "" while there is none
	completedAt string
	published   bool
}

var (
	chRequestCols  = []string{"request_id", "version", "request", "requested_at", "deadline", "finalizing", "outcome", "completed_at", "published"}
	chRequestTypes = []string{"String", "UInt64", "String", "String", "String", "UInt8", "String", "String", "UInt8"}
)

func chBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// nextVersion returns a version above every one handed out before and above
// cur: the clock in nanoseconds, bumped when it did not move forward. Call
// with mu held.
func (l *Ledger) nextVersion(cur uint64) uint64 {
	v := uint64(time.Now().UnixNano())
	v = max(v, l.lastVersion+1, cur+1)
	l.lastVersion = v
	return v
}

// writeRequest inserts a new version of r. Call with mu and the writer lock
// held.
func (l *Ledger) writeRequest(ctx context.Context, r chRequestRow) error {
	if err := l.writers.ensureHeld(); err != nil {
		return err
	}
	r.version = l.nextVersion(r.version)
	return l.chInsert(ctx, chLedgerRequests, chRequestCols, chRequestTypes, []string{
		r.requestID, strconv.FormatUint(r.version, 10), r.request, r.requestedAt, r.deadline,
		chBool(r.finalizing), r.outcome, r.completedAt, chBool(r.published),
	})
}

// loadRequest reads the current version of a request row; found is false
// when there is none.
func (l *Ledger) loadRequest(ctx context.Context, requestID string) (r chRequestRow, found bool, err error) {
	rows, err := l.conn().Query(ctx, `SELECT request_id, version, request, requested_at, deadline, finalizing, outcome,
		completed_at, published FROM `+l.table(chLedgerRequests)+` FINAL WHERE request_id = ?`, requestID)
	if err != nil {
		return r, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var fin, pub uint8
		if err := rows.Scan(&r.requestID, &r.version, &r.request, &r.requestedAt, &r.deadline, &fin, &r.outcome,
			&r.completedAt, &pub); err != nil {
			return r, false, err
		}
		r.finalizing, r.published = fin == 1, pub == 1
		found = true
	}
	return r, found, rows.Err()
}

func (l *Ledger) putContacts(ctx context.Context, requestID string, contactIDs []string) error {
	rows := make([][]string, 0, len(contactIDs))
	for _, c := range contactIDs {
		rows = append(rows, []string{c, requestID})
	}
	return l.chInsert(ctx, chLedgerContacts, []string{"contact_id", "request_id"}, []string{"String", "String"}, rows...)
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
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := l.writers.lock(ctx)
	if err != nil {
		return clickhouseErr(ctx, "ledger: put request", err)
	}
	defer unlock()
	_, found, err := l.loadRequest(ctx, r.RequestID)
	if err != nil {
		return clickhouseErr(ctx, "ledger: put request", err)
	}
	if found {
		return nil
	}
	// Contacts first: a request row is only ever visible with its contacts.
	if err := l.putContacts(ctx, r.RequestID, r.ContactIDs); err != nil {
		return clickhouseErr(ctx, "ledger: put request", err)
	}
	err = l.writeRequest(ctx, chRequestRow{
		requestID: r.RequestID, request: string(raw), requestedAt: stores.FormatTime(r.RequestedAt), deadline: stores.FormatTime(deadline),
	})
	return clickhouseErr(ctx, "ledger: put request", err)
}

// resultVersion maps a result's CompletedAt to a version that orders like
// it (the sign bit flipped, so times before 1970 still order correctly).
func resultVersion(t time.Time) uint64 { return uint64(t.UnixNano()) ^ (1 << 63) }

// PutResult upserts a channel result on (request, channel). A redelivered
// older result (earlier CompletedAt) does not overwrite a newer one: the
// version of a result row is its CompletedAt.
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
	l.mu.Lock()
	defer l.mu.Unlock()
	// Rows with equal versions keep whichever a merge sees last, so an
	// equal-time redelivery is only written when its content differs from
	// what is stored, and an older one is not written at all.
	var cur, curRaw string
	var found bool
	rows, err := l.conn().Query(ctx, `SELECT completed_at, result FROM `+l.table(chLedgerResults)+
		` FINAL WHERE request_id = ? AND channel = ?`, r.RequestID, string(r.Channel))
	if err != nil {
		return clickhouseErr(ctx, "ledger: put result", err)
	}
	for rows.Next() {
		if err := rows.Scan(&cur, &curRaw); err != nil {
			rows.Close()
			return clickhouseErr(ctx, "ledger: put result", err)
		}
		found = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return clickhouseErr(ctx, "ledger: put result", err)
	}
	at := stores.FormatTime(r.CompletedAt)
	if found && (at < cur || (at == cur && curRaw == string(raw))) {
		return nil
	}
	err = l.chInsert(ctx, chLedgerResults, []string{"request_id", "channel", "version", "completed_at", "result"},
		[]string{"String", "String", "UInt64", "String", "String"},
		[]string{r.RequestID, string(r.Channel), strconv.FormatUint(resultVersion(r.CompletedAt), 10), at, string(raw)})
	return clickhouseErr(ctx, "ledger: put result", err)
}

// State returns the join state of a request, or ErrNotFound.
func (l *Ledger) State(ctx context.Context, requestID string) (stores.RequestState, error) {
	st, err := l.loadState(ctx, requestID)
	if errors.Is(err, stores.ErrNotFound) {
		return stores.RequestState{}, err
	}
	return st, clickhouseErr(ctx, "ledger: state", err)
}

func (l *Ledger) loadState(ctx context.Context, requestID string) (stores.RequestState, error) {
	var st stores.RequestState
	row, found, err := l.loadRequest(ctx, requestID)
	if err != nil {
		return st, err
	}
	if !found {
		return st, fmt.Errorf("ledger: request: %w", stores.ErrNotFound)
	}
	if err := json.Unmarshal([]byte(row.request), &st.Request); err != nil {
		return st, stores.Permanent(fmt.Errorf("ledger: decode stored request: %w", err))
	}
	if st.Deadline, err = stores.ParseTime(row.deadline); err != nil {
		return st, stores.Permanent(fmt.Errorf("ledger: stored deadline: %w", err))
	}
	st.Finalizing, st.Published = row.finalizing, row.published
	if row.outcome != "" {
		st.Outcome = new(schemas.DeletionCompleted)
		if err := json.Unmarshal([]byte(row.outcome), st.Outcome); err != nil {
			return st, stores.Permanent(fmt.Errorf("ledger: decode stored outcome: %w", err))
		}
	}
	rows, err := l.conn().Query(ctx, `SELECT result FROM `+l.table(chLedgerResults)+` FINAL WHERE request_id = ?`, requestID)
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
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := l.writers.lock(ctx)
	if err != nil {
		return clickhouseErr(ctx, "ledger: mark finalizing", err)
	}
	defer unlock()
	row, found, err := l.loadRequest(ctx, requestID)
	if err != nil {
		return clickhouseErr(ctx, "ledger: mark finalizing", err)
	}
	if !found {
		return fmt.Errorf("ledger: mark finalizing: %w", stores.ErrNotFound)
	}
	if row.finalizing {
		return nil
	}
	row.finalizing = true
	return clickhouseErr(ctx, "ledger: mark finalizing", l.writeRequest(ctx, row))
}

// MarkPublished records that the outcome event was published. It is
// ErrNotFound for an unknown request and a permanent error for one without
// an outcome: publishing comes after Complete.
func (l *Ledger) MarkPublished(ctx context.Context, requestID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := l.writers.lock(ctx)
	if err != nil {
		return clickhouseErr(ctx, "ledger: mark published", err)
	}
	defer unlock()
	row, found, err := l.loadRequest(ctx, requestID)
	if err != nil {
		return clickhouseErr(ctx, "ledger: mark published", err)
	}
	if !found {
		return fmt.Errorf("ledger: mark published: request: %w", stores.ErrNotFound)
	}
	if row.outcome == "" {
		return stores.Permanent(errors.New("ledger: mark published: request has no outcome to publish"))
	}
	if row.published {
		return nil
	}
	row.published = true
	return clickhouseErr(ctx, "ledger: mark published", l.writeRequest(ctx, row))
}

// Overdue lists unfinished requests whose deadline is before now, earliest
// deadline first.
func (l *Ledger) Overdue(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		limit = sqlutil.OverdueDefaultLimit
	}
	limit = min(limit, sqlutil.OverdueMaxLimit)
	// The filter is applied outside the FINAL read, so it sees only the
	// current version of each row.
	rows, err := l.conn().Query(ctx, `SELECT request_id FROM (SELECT request_id, deadline, outcome FROM `+
		l.table(chLedgerRequests)+` FINAL) WHERE outcome = '' AND deadline < ? ORDER BY deadline, request_id LIMIT `+
		strconv.Itoa(limit), stores.FormatTime(now))
	if err != nil {
		return nil, clickhouseErr(ctx, "ledger: overdue", err)
	}
	ids, err := sqlutil.ScanStrings(rows)
	return ids, clickhouseErr(ctx, "ledger: overdue", err)
}

// Complete stores the outcome and appends its audit entry. A request that
// already has an outcome keeps it: the stored outcome is returned with
// created=false and nothing is written. Calls are serialised by the ledger's
// mutex and its writer lock, so concurrent calls for one request, from this
// process or another, write one entry.
func (l *Ledger) Complete(ctx context.Context, out schemas.DeletionCompleted, functionality string) (schemas.DeletionCompleted, bool, error) {
	if err := sqlutil.CheckRequestID(out.RequestID); err != nil {
		return out, false, err
	}
	if out.CompletedAt.IsZero() {
		out.CompletedAt = time.Now()
	}
	out.RequestedAt = out.RequestedAt.UTC()
	out.CompletedAt = out.CompletedAt.UTC()

	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := l.writers.lock(ctx)
	if err != nil {
		return schemas.DeletionCompleted{}, false, clickhouseErr(ctx, "ledger: complete", err)
	}
	defer unlock()
	stored, created, err := l.complete(ctx, out, functionality)
	if err != nil {
		return schemas.DeletionCompleted{}, false, clickhouseErr(ctx, "ledger: complete", err)
	}
	return stored, created, nil
}

// complete does the work of Complete; call with mu held.
func (l *Ledger) complete(ctx context.Context, out schemas.DeletionCompleted, functionality string) (schemas.DeletionCompleted, bool, error) {
	row, found, err := l.loadRequest(ctx, out.RequestID)
	if err != nil {
		return out, false, err
	}
	if found && row.outcome != "" {
		var stored schemas.DeletionCompleted
		if err := json.Unmarshal([]byte(row.outcome), &stored); err != nil {
			return out, false, stores.Permanent(fmt.Errorf("decode stored outcome: %w", err))
		}
		return stored, false, nil
	}

	// An audit entry without an outcome is a Complete interrupted between
	// its two writes: finish it from the entry rather than append another.
	existing, err := l.auditWhere(ctx, `request_id = ? AND amends = 0 AND status != ?`, out.RequestID, string(schemas.StatusRefused))
	if err != nil {
		return out, false, err
	}
	if len(existing) > 0 {
		e := existing[0]
		out.ContactIDs, out.RequestedBy, out.Status, out.ErrorCode = e.ContactIDs, e.Actor, e.Status, e.ErrorCode
		out.Channels, out.RequestedAt, out.CompletedAt, out.ReplayOf = e.Channels, e.RequestedAt, e.CompletedAt, e.ReplayOf
		out.AuditSeq, out.AuditHash = e.Seq, e.Hash
		if e.RequestDigest != "" {
			out.RequestDigest = e.RequestDigest
		}
	} else {
		e, err := l.chainAudit(ctx, stores.OutcomeEntry(out, functionality))
		if err != nil {
			return out, false, err
		}
		out.AuditSeq, out.AuditHash = e.Seq, e.Hash
	}

	raw, err := json.Marshal(out)
	if err != nil {
		return out, false, stores.Permanent(fmt.Errorf("encode outcome: %w", err))
	}
	if err := l.putContacts(ctx, out.RequestID, out.ContactIDs); err != nil {
		return out, false, err
	}
	if !found {
		r := stores.RequestFromOutcome(out)
		rawReq, err := json.Marshal(r)
		if err != nil {
			return out, false, stores.Permanent(fmt.Errorf("encode request: %w", err))
		}
		row = chRequestRow{requestID: r.RequestID, request: string(rawReq), requestedAt: stores.FormatTime(r.RequestedAt),
			deadline: stores.FormatTime(out.CompletedAt)}
	}
	row.outcome, row.completedAt = string(raw), stores.FormatTime(out.CompletedAt)
	if err := l.writeRequest(ctx, row); err != nil {
		return out, false, err
	}
	return out, true, nil
}

var (
	chAuditCols  = []string{"seq", "request_id", "setting", "functionality", "actor", "contact_ids", "status", "error_code", "channels", "requested_at", "completed_at", "replay_of", "prev_hash", "hash", "amends", "request_digest", "signature", "reason_code", "ticket", "held_contact_ids", "producer"}
	chAuditTypes = []string{"UInt64", "String", "String", "String", "String", "String", "String", "String", "String", "String", "String", "String", "String", "String", "UInt64", "String", "String", "String", "String", "String", "String"}
)

// auditHead returns the seq and hash of the last audit entry, or 0 and ""
// for an empty log. Call with mu held.
func (l *Ledger) auditHead(ctx context.Context) (int64, string, error) {
	var seq uint64
	var hash string
	rows, err := l.conn().Query(ctx, `SELECT seq, hash FROM `+l.table(chLedgerAudit)+` ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return 0, "", err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&seq, &hash); err != nil {
			return 0, "", err
		}
	}
	return int64(seq), hash, rows.Err()
}

// auditWhere reads the entries matching cond, in seq order.
func (l *Ledger) auditWhere(ctx context.Context, cond string, args ...any) ([]stores.AuditEntry, error) {
	return l.queryAudit(ctx, `SELECT `+sqlutil.AuditColumns+` FROM `+l.table(chLedgerAudit)+` WHERE `+cond+` ORDER BY seq`, args...)
}

// queryAudit reads the audit entries a query selects.
func (l *Ledger) queryAudit(ctx context.Context, q string, args ...any) ([]stores.AuditEntry, error) {
	rows, err := l.conn().Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []stores.AuditEntry
	for rows.Next() {
		e, err := chScanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// binding reads the earliest binding of a request ID: by insertion time,
// then digest, so every reader picks the same one.
func (l *Ledger) binding(ctx context.Context, requestID string) (string, bool, error) {
	rows, err := l.conn().Query(ctx, `SELECT digest FROM `+l.table(chLedgerBindings)+
		` WHERE request_id = ? ORDER BY bound_at, digest LIMIT 1`, requestID)
	if err != nil {
		return "", false, err
	}
	defer rows.Close()
	var d string
	found := false
	for rows.Next() {
		if err := rows.Scan(&d); err != nil {
			return "", false, err
		}
		found = true
	}
	return d, found, rows.Err()
}

// BindRequest binds requestID to digest unless it is bound already and
// returns the digest it is bound to (see the type comment). A request
// recorded before bindings existed is bound to the digest of its recorded
// content.
func (l *Ledger) BindRequest(ctx context.Context, requestID, digest string) (string, error) {
	if err := sqlutil.CheckRequestID(requestID); err != nil {
		return "", err
	}
	if err := sqlutil.CheckDigest(digest); err != nil {
		return "", err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	bound, err := l.bind(ctx, requestID, digest)
	return bound, clickhouseErr(ctx, "ledger: bind request", err)
}

func (l *Ledger) bind(ctx context.Context, requestID, digest string) (string, error) {
	if bound, ok, err := l.binding(ctx, requestID); err != nil || ok {
		return bound, err
	}
	// The first binders of one request ID, in two processes, could each
	// insert and then see their own row as the earliest (bound_at is each
	// host's clock) and both delete: a lock of this request ID alone makes
	// the check and the insert one step without holding up other requests.
	unlock, err := newWriteLock(l.conn(), l.table(chLedgerLocks), "bind:"+requestID).lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	if bound, ok, err := l.binding(ctx, requestID); err != nil || ok {
		return bound, err
	}
	first := digest
	row, found, err := l.loadRequest(ctx, requestID)
	if err != nil {
		return "", err
	}
	if found {
		var r schemas.DeletionRequested
		if err := json.Unmarshal([]byte(row.request), &r); err != nil {
			return "", stores.Permanent(fmt.Errorf("decode stored request: %w", err))
		}
		first = r.ContentDigest()
	}
	err = l.chInsert(ctx, chLedgerBindings, []string{"request_id", "digest", "bound_at"}, []string{"String", "String", "UInt64"},
		[]string{requestID, first, strconv.FormatUint(uint64(time.Now().UnixNano()), 10)})
	if err != nil {
		return "", err
	}
	bound, ok, err := l.binding(ctx, requestID)
	if err == nil && !ok {
		err = stores.Retryable(errors.New("binding not visible after insert"))
	}
	return bound, err
}

// Unpublished lists requests whose outcome is not marked published,
// earliest completion first.
func (l *Ledger) Unpublished(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		limit = sqlutil.OverdueDefaultLimit
	}
	limit = min(limit, sqlutil.OverdueMaxLimit)
	// As in Overdue, the filter sees only the current version of each row.
	rows, err := l.conn().Query(ctx, `SELECT request_id FROM (SELECT request_id, outcome, published, completed_at FROM `+
		l.table(chLedgerRequests)+` FINAL) WHERE outcome != '' AND published = 0 ORDER BY completed_at, request_id LIMIT `+
		strconv.Itoa(limit))
	if err != nil {
		return nil, clickhouseErr(ctx, "ledger: unpublished", err)
	}
	ids, err := sqlutil.ScanStrings(rows)
	return ids, clickhouseErr(ctx, "ledger: unpublished", err)
}

// Amend appends the late entry of a result that arrived after its request
// was decided; the same result is appended once.
func (l *Ledger) Amend(ctx context.Context, res schemas.ChannelCompleted) (stores.AuditEntry, bool, error) {
	if err := sqlutil.CheckRequestID(res.RequestID); err != nil {
		return stores.AuditEntry{}, false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := l.writers.lock(ctx)
	if err != nil {
		return stores.AuditEntry{}, false, clickhouseErr(ctx, "ledger: amend", err)
	}
	defer unlock()
	e, created, err := l.amend(ctx, res)
	if err != nil {
		return stores.AuditEntry{}, false, clickhouseErr(ctx, "ledger: amend", err)
	}
	return e, created, nil
}

func (l *Ledger) amend(ctx context.Context, res schemas.ChannelCompleted) (stores.AuditEntry, bool, error) {
	row, found, err := l.loadRequest(ctx, res.RequestID)
	if err != nil {
		return stores.AuditEntry{}, false, err
	}
	if !found || row.outcome == "" {
		return stores.AuditEntry{}, false, stores.Permanent(errors.New("request has no outcome to amend"))
	}
	var out schemas.DeletionCompleted
	if err := json.Unmarshal([]byte(row.outcome), &out); err != nil {
		return stores.AuditEntry{}, false, stores.Permanent(fmt.Errorf("decode stored outcome: %w", err))
	}
	late, err := l.auditWhere(ctx, `request_id = ? AND amends > 0`, res.RequestID)
	if err != nil {
		return stores.AuditEntry{}, false, err
	}
	for _, e := range late {
		if stores.SameLateResult(e, res) {
			return e, false, nil
		}
	}
	decision, err := l.auditWhere(ctx, `seq = ? AND request_id = ?`, uint64(out.AuditSeq), res.RequestID)
	if err != nil {
		return stores.AuditEntry{}, false, err
	}
	if len(decision) == 0 {
		return stores.AuditEntry{}, false, stores.Permanent(fmt.Errorf("decision entry seq %d not found", out.AuditSeq))
	}
	e, err := l.chainAudit(ctx, func(seq int64, prevHash string) (stores.AuditEntry, error) {
		return stores.LateAuditEntry(decision[0], res, seq, prevHash)
	})
	if err != nil {
		return stores.AuditEntry{}, false, err
	}
	return e, true, nil
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
	out = sqlutil.RefusedOutcome(out)
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := l.writers.lock(ctx)
	if err != nil {
		return schemas.DeletionCompleted{}, false, clickhouseErr(ctx, "ledger: refuse", err)
	}
	defer unlock()
	prior, err := l.auditWhere(ctx, `request_id = ? AND status = ? AND request_digest = ?`,
		out.RequestID, string(schemas.StatusRefused), out.RequestDigest)
	if err != nil {
		return schemas.DeletionCompleted{}, false, clickhouseErr(ctx, "ledger: refuse", err)
	}
	if len(prior) > 0 {
		return sqlutil.OutcomeFromRefusal(out, prior[0]), false, nil
	}
	e, err := l.chainAudit(ctx, stores.OutcomeEntry(out, functionality))
	if err != nil {
		return schemas.DeletionCompleted{}, false, clickhouseErr(ctx, "ledger: refuse", err)
	}
	out.AuditSeq, out.AuditHash = e.Seq, e.Hash
	return out, true, nil
}

// chainAudit appends the entry build makes as the next link of the chain,
// signed with the audit key: the one place entries are chained and signed.
// The caller holds l.mu, so the head cannot move in between.
func (l *Ledger) chainAudit(ctx context.Context, build func(seq int64, prevHash string) (stores.AuditEntry, error)) (stores.AuditEntry, error) {
	prevSeq, prevHash, err := l.auditHead(ctx)
	if err != nil {
		return stores.AuditEntry{}, err
	}
	e, err := build(prevSeq+1, prevHash)
	if err != nil {
		return e, err
	}
	stores.SignAudit(&e, l.auditKey)
	return e, l.appendAudit(ctx, e)
}

// appendAudit inserts one audit entry; the only write to the audit table.
// Call with mu and the writer lock held.
func (l *Ledger) appendAudit(ctx context.Context, e stores.AuditEntry) error {
	if err := l.writers.ensureHeld(); err != nil {
		return err
	}
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
	return l.chInsert(ctx, chLedgerAudit, chAuditCols, chAuditTypes, []string{
		strconv.FormatInt(e.Seq, 10), e.RequestID, e.Setting, e.Functionality, e.Actor, string(contactIDs),
		string(e.Status), e.ErrorCode, string(channels), stores.FormatTime(e.RequestedAt), stores.FormatTime(e.CompletedAt),
		e.ReplayOf, e.PrevHash, e.Hash, strconv.FormatInt(e.Amends, 10), e.RequestDigest, e.Signature,
		e.ReasonCode, e.Ticket, held, e.Producer,
	})
}

func chScanAudit(rows chdriver.Rows) (stores.AuditEntry, error) {
	var (
		e                        stores.AuditEntry
		seq, amends              uint64
		contactIDs, channels     string
		status                   string
		requestedAt, completedAt string
		held                     string
	)
	if err := rows.Scan(&seq, &e.RequestID, &e.Setting, &e.Functionality, &e.Actor, &contactIDs, &status,
		&e.ErrorCode, &channels, &requestedAt, &completedAt, &e.ReplayOf, &e.PrevHash, &e.Hash, &amends,
		&e.RequestDigest, &e.Signature, &e.ReasonCode, &e.Ticket, &held, &e.Producer); err != nil {
		return e, err
	}
	e.Seq, e.Amends = int64(seq), int64(amends)
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
	rows, err := l.conn().Query(ctx, `SELECT request_id FROM `+l.table(chLedgerRequests)+` FINAL
		WHERE request_id IN (SELECT request_id FROM `+l.table(chLedgerContacts)+` WHERE contact_id = ?)
		ORDER BY requested_at DESC, request_id DESC LIMIT `+strconv.Itoa(limit), contactID)
	if err != nil {
		return nil, clickhouseErr(ctx, "ledger: by contact", err)
	}
	ids, err := sqlutil.ScanStrings(rows)
	if err != nil {
		return nil, clickhouseErr(ctx, "ledger: by contact", err)
	}
	var out []stores.RequestState
	for _, id := range ids {
		st, err := l.loadState(ctx, id)
		if err != nil {
			return nil, clickhouseErr(ctx, "ledger: by contact", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// Audit queries the audit log, newest entry first. From and To bound
// CompletedAt inclusively.
func (l *Ledger) Audit(ctx context.Context, f stores.AuditFilter) ([]stores.AuditEntry, error) {
	out, err := l.audit(ctx, f)
	return out, clickhouseErr(ctx, "ledger: audit", err)
}

func (l *Ledger) audit(ctx context.Context, f stores.AuditFilter) ([]stores.AuditEntry, error) {
	q, args := sqlutil.AuditQuery(f, l.table(chLedgerAudit), l.table(chLedgerContacts))
	return l.queryAudit(ctx, q, args...)
}

// AuditCount counts the entries Audit returns for f, without paging.
func (l *Ledger) AuditCount(ctx context.Context, f stores.AuditFilter) (int64, error) {
	q, args := sqlutil.AuditCountQuery(f, l.table(chLedgerAudit), l.table(chLedgerContacts))
	var n uint64
	err := l.conn().QueryRow(ctx, q, args...).Scan(&n)
	return int64(n), clickhouseErr(ctx, "ledger: audit count", err)
}

// AuditActors lists distinct principals of the audit log by prefix.
func (l *Ledger) AuditActors(ctx context.Context, prefix string, limit int) ([]string, error) {
	q, args := sqlutil.AuditActorsQuery(prefix, limit, l.table(chLedgerAudit))
	rows, err := l.conn().Query(ctx, q, args...)
	if err != nil {
		return nil, clickhouseErr(ctx, "ledger: audit actors", err)
	}
	out, err := sqlutil.ScanStrings(rows)
	return out, clickhouseErr(ctx, "ledger: audit actors", err)
}

// VerifyChain walks the audit log in seq order, in pages, recomputing every
// hash, and returns how many entries verified before the first broken link,
// which it reports by seq. Seqs must run 1, 2, 3…, so a deleted or
// duplicated entry is a break too. With an audit key, signed entries'
// signatures are checked as well. (Removing entries from the end leaves a
// valid, shorter chain: the anchors detect that, see stores.VerifyAudit.)
func (l *Ledger) VerifyChain(ctx context.Context) (int64, error) {
	return stores.VerifyChainWith(ctx, l.auditKey, l.ScanAudit)
}

// ScanAudit calls fn with every audit entry in seq order, in pages, and
// stops at its first error. A second row with a seq already passed is an
// error too.
func (l *Ledger) ScanAudit(ctx context.Context, fn func(stores.AuditEntry) error) error {
	var last int64
	var n uint64
	for {
		rows, err := l.conn().Query(ctx, `SELECT `+sqlutil.AuditColumns+` FROM `+l.table(chLedgerAudit)+
			` WHERE seq > ? ORDER BY seq LIMIT `+strconv.Itoa(sqlutil.VerifyPage), uint64(last))
		if err != nil {
			return clickhouseErr(ctx, "ledger: scan audit", err)
		}
		var page []stores.AuditEntry
		for rows.Next() {
			e, err := chScanAudit(rows)
			if err != nil {
				rows.Close()
				return clickhouseErr(ctx, "ledger: scan audit", err)
			}
			page = append(page, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return clickhouseErr(ctx, "ledger: scan audit", err)
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
			last = e.Seq
			n++
		}
		if len(page) < sqlutil.VerifyPage {
			break
		}
	}
	// Paging by seq skips a second row carrying the seq that ended a page;
	// the count of rows up to the last seq passed finds it.
	var rowsUpTo uint64
	if err := l.conn().QueryRow(ctx, `SELECT count() FROM `+l.table(chLedgerAudit)+` WHERE seq <= ?`, uint64(last)).Scan(&rowsUpTo); err != nil {
		return clickhouseErr(ctx, "ledger: scan audit", err)
	}
	if rowsUpTo != n {
		return stores.Permanent(fmt.Errorf("audit chain broken: %d entries with seq up to %d, a seq is duplicated", rowsUpTo, last))
	}
	return nil
}
