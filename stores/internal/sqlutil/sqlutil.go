// Package sqlutil holds what the SQLite and ClickHouse adapters share: the
// time format of stored timestamps, placeholders, and the audit log's
// stored shape, so that both ledgers read and write it the same way.
package sqlutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// rowScanner is what both the SQL and the ClickHouse drivers' row sets offer.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanResults reads rows of stored ChannelCompleted JSON into a join state's
// results; both ledgers store results the same way.
func ScanResults(rows rowScanner) (map[schemas.Channel]schemas.ChannelCompleted, error) {
	out := map[schemas.Channel]schemas.ChannelCompleted{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return out, err
		}
		var r schemas.ChannelCompleted
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return out, stores.Permanent(fmt.Errorf("ledger: decode stored result: %w", err))
		}
		out[r.Channel] = r
	}
	return out, rows.Err()
}

// rowSet is a row set the reader closes.
type rowSet interface {
	rowScanner
	Close() error
}

// ScanStrings reads a one-column result and closes it.
func ScanStrings(rows rowSet) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// AuditQuery builds the audit log query for a filter, newest first; both
// ledgers store the audit log in the same shape. contacts is the table
// mapping contacts to requests.
func AuditQuery(f stores.AuditFilter, audit, contacts string) (string, []any) {
	where, args := auditWhere(f, contacts)
	limit := f.Limit
	if limit <= 0 {
		limit = stores.AuditDefaultLimit
	}
	limit = min(limit, stores.AuditMaxLimit)
	q := `SELECT ` + AuditColumns + ` FROM ` + audit + where
	// Limit and offset are integers, so they are written into the query.
	q += ` ORDER BY seq DESC LIMIT ` + strconv.Itoa(limit) + ` OFFSET ` + strconv.Itoa(max(f.Offset, 0))
	return q, args
}

// AuditCountQuery counts what AuditQuery selects, without offset and limit.
func AuditCountQuery(f stores.AuditFilter, audit, contacts string) (string, []any) {
	where, args := auditWhere(f, contacts)
	return `SELECT count(*) FROM ` + audit + where, args
}

// AuditActorsQuery selects up to limit distinct actors starting with prefix
// (as AuditFilter.ActorPrefix), ascending.
func AuditActorsQuery(prefix string, limit int, audit string) (string, []any) {
	where, args := auditWhere(stores.AuditFilter{ActorPrefix: prefix}, "")
	if limit <= 0 {
		limit = stores.FieldValuesDefaultLimit
	}
	limit = min(limit, stores.FieldValuesMaxLimit)
	return `SELECT DISTINCT actor FROM ` + audit + where + ` ORDER BY actor LIMIT ` + strconv.Itoa(limit), args
}

// auditWhere is the WHERE clause of a filter, with a leading space, or "".
func auditWhere(f stores.AuditFilter, contacts string) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, arg ...any) { where, args = append(where, cond), append(args, arg...) }
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.ActorPrefix != "" {
		// A byte range on the ASCII-lowered value: the same in SQLite and
		// ClickHouse (whose lower() both fold ASCII only), and no character
		// of the prefix is a pattern.
		lo, hi := stores.PrefixRange(f.ActorPrefix)
		add("lower(actor) >= ? AND lower(actor) < ?", lo, hi)
	}
	if f.Functionality != "" {
		add("functionality = ?", f.Functionality)
	}
	if f.RequestID != "" {
		add("request_id = ?", f.RequestID)
	}
	if f.ContactID != "" {
		add("request_id IN (SELECT request_id FROM "+contacts+" WHERE contact_id = ?)", f.ContactID)
	}
	if f.ReasonCode != "" {
		add("reason_code = ?", f.ReasonCode)
	}
	if f.Ticket != "" {
		add("ticket = ?", f.Ticket)
	}
	if !f.From.IsZero() {
		add("completed_at >= ?", stores.FormatTime(f.From))
	}
	if !f.To.IsZero() {
		add("completed_at <= ?", stores.FormatTime(f.To))
	}
	if len(where) == 0 {
		return "", nil
	}
	return ` WHERE ` + strings.Join(where, " AND "), args
}

// AuditColumns are the audit table's columns in the order the ledgers scan
// them; amends, request_digest and signature came later, then reason_code,
// ticket and held_contact_ids, then producer, and are last.
const AuditColumns = `seq, request_id, setting, functionality, actor, contact_ids, status, error_code,
	channels, requested_at, completed_at, replay_of, prev_hash, hash, amends, request_digest, signature,
	reason_code, ticket, held_contact_ids, producer`

// EncodeHeld is how both ledgers store an entry's held contact IDs: a JSON
// array, or "" for none (which is what rows from before the column hold).
func EncodeHeld(ids []string) (string, error) {
	if len(ids) == 0 {
		return "", nil
	}
	raw, err := json.Marshal(ids)
	if err != nil {
		return "", stores.Permanent(fmt.Errorf("encode held contact IDs: %w", err))
	}
	return string(raw), nil
}

// DecodeHeld reads what EncodeHeld stored.
func DecodeHeld(e *stores.AuditEntry, held string) error {
	if held == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(held), &e.HeldContactIDs); err != nil {
		return stores.Permanent(fmt.Errorf("audit entry seq %d: held contact IDs: %w", e.Seq, err))
	}
	return nil
}

// DecodeAudit fills the fields an audit row stores as text; both ledgers store
// them the same way.
func DecodeAudit(e *stores.AuditEntry, status, contactIDs, channels, requestedAt, completedAt string) error {
	e.Status = schemas.Status(status)
	if err := json.Unmarshal([]byte(contactIDs), &e.ContactIDs); err != nil {
		return stores.Permanent(fmt.Errorf("audit entry seq %d: contact IDs: %w", e.Seq, err))
	}
	if err := json.Unmarshal([]byte(channels), &e.Channels); err != nil {
		return stores.Permanent(fmt.Errorf("audit entry seq %d: channels: %w", e.Seq, err))
	}
	var err error
	if e.RequestedAt, err = stores.ParseTime(requestedAt); err != nil {
		return stores.Permanent(fmt.Errorf("audit entry seq %d: requested_at: %w", e.Seq, err))
	}
	if e.CompletedAt, err = stores.ParseTime(completedAt); err != nil {
		return stores.Permanent(fmt.Errorf("audit entry seq %d: completed_at: %w", e.Seq, err))
	}
	return nil
}

// Placeholders returns "?,?,…" with n marks.
func Placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}

// CheckRequestID refuses an empty request ID before it reaches a ledger.
func CheckRequestID(id string) error {
	if id == "" {
		return stores.Permanent(errors.New("ledger: empty request ID"))
	}
	return nil
}

// digestRE is the form of a request content digest: hex SHA-256.
var digestRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CheckDigest refuses anything but a request content digest before it
// reaches a ledger.
func CheckDigest(d string) error {
	if !digestRE.MatchString(d) {
		return stores.Permanent(errors.New("ledger: request digest is not a hex SHA-256"))
	}
	return nil
}

// RefusedOutcome is out as a refused submission's outcome: status refused,
// error code request_id_conflict, no channels, times in UTC. Both ledgers
// store refusals this way, so a refusal is found again by status and digest.
func RefusedOutcome(out schemas.DeletionCompleted) schemas.DeletionCompleted {
	out.Status, out.ErrorCode = schemas.StatusRefused, schemas.ErrCodeRequestIDConflict
	out.Channels = []schemas.ChannelOutcome{}
	if out.CompletedAt.IsZero() {
		out.CompletedAt = time.Now()
	}
	out.RequestedAt, out.CompletedAt = out.RequestedAt.UTC(), out.CompletedAt.UTC()
	return out
}

// OutcomeFromRefusal is the outcome of a refusal already in the audit log
// as entry e, for a repeated Refuse.
func OutcomeFromRefusal(out schemas.DeletionCompleted, e stores.AuditEntry) schemas.DeletionCompleted {
	out.ContactIDs, out.RequestedBy, out.ReplayOf = e.ContactIDs, e.Actor, e.ReplayOf
	out.RequestedAt, out.CompletedAt = e.RequestedAt, e.CompletedAt
	out.AuditSeq, out.AuditHash = e.Seq, e.Hash
	return out
}

// Limits of the ledgers' list queries.
const (
	OverdueDefaultLimit = 100
	OverdueMaxLimit     = 10000
	ByContactMaxLimit   = 1000
)

// VerifyPage is how many audit entries VerifyChain reads per query (a
// variable so tests can make pages small).
var VerifyPage = 1000
