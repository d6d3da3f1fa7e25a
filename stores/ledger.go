package stores

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/erasure-project/erasure/schemas"
)

// rowScanner is what both the SQL and the ClickHouse drivers' row sets offer.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanResults reads rows of stored ChannelCompleted JSON into a join state's
// results; both ledgers store results the same way.
func scanResults(rows rowScanner) (map[schemas.Channel]schemas.ChannelCompleted, error) {
	out := map[schemas.Channel]schemas.ChannelCompleted{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return out, err
		}
		var r schemas.ChannelCompleted
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return out, Permanent(fmt.Errorf("ledger: decode stored result: %w", err))
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

// scanStrings reads a one-column result and closes it.
func scanStrings(rows rowSet) ([]string, error) {
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

// verifyLink checks that e is entry n+1 of the chain and follows prev.
func verifyLink(e AuditEntry, n int64, prev string) error {
	if e.Seq != n+1 {
		return Permanent(fmt.Errorf("audit chain broken at seq %d: expected seq %d", e.Seq, n+1))
	}
	if e.PrevHash != prev {
		return Permanent(fmt.Errorf("audit chain broken at seq %d: prev_hash does not match the hash of seq %d", e.Seq, n))
	}
	h, err := AuditHash(e)
	if err != nil {
		return err
	}
	if h != e.Hash {
		return Permanent(fmt.Errorf("audit chain broken at seq %d: entry does not match its hash", e.Seq))
	}
	return nil
}

// requestFromOutcome rebuilds the request an outcome answers, for an outcome
// whose request was never recorded (a deadline sweep after the request row
// was lost, say): State and ByContact still need it.
func requestFromOutcome(out schemas.DeletionCompleted) schemas.DeletionRequested {
	r := schemas.DeletionRequested{
		Type:          schemas.TypeDeletionRequested,
		SchemaVersion: schemas.Version,
		RequestID:     out.RequestID,
		ContactIDs:    out.ContactIDs,
		RequestedBy:   out.RequestedBy,
		RequestedAt:   out.RequestedAt,
		Source:        out.Source,
		ReplayOf:      out.ReplayOf,
	}
	for _, c := range out.Channels {
		r.Channels = append(r.Channels, c.Channel)
	}
	return r
}

// auditQuery builds the audit log query for a filter, newest first; both
// ledgers store the audit log in the same shape. contacts is the table
// mapping contacts to requests.
func auditQuery(f AuditFilter, audit, contacts string) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, arg any) { where, args = append(where, cond), append(args, arg) }
	if f.Actor != "" {
		add("actor = ?", f.Actor)
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
	if !f.From.IsZero() {
		add("completed_at >= ?", formatTime(f.From))
	}
	if !f.To.IsZero() {
		add("completed_at <= ?", formatTime(f.To))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = AuditDefaultLimit
	}
	limit = min(limit, AuditMaxLimit)
	q := `SELECT ` + auditColumns + ` FROM ` + audit
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	// Limit and offset are integers, so they are written into the query.
	q += ` ORDER BY seq DESC LIMIT ` + strconv.Itoa(limit) + ` OFFSET ` + strconv.Itoa(max(f.Offset, 0))
	return q, args
}

// newAuditEntry is the audit entry of an outcome, chained after prevHash as
// entry seq, normalised and hashed.
func newAuditEntry(out schemas.DeletionCompleted, functionality string, seq int64, prevHash string) (AuditEntry, error) {
	e := normalizeAudit(AuditEntry{
		Seq:           seq,
		RequestID:     out.RequestID,
		Setting:       AuditSetting,
		Functionality: functionality,
		Actor:         out.RequestedBy,
		ContactIDs:    out.ContactIDs,
		Status:        out.Status,
		ErrorCode:     out.ErrorCode,
		Channels:      out.Channels,
		RequestedAt:   out.RequestedAt,
		CompletedAt:   out.CompletedAt,
		ReplayOf:      out.ReplayOf,
		PrevHash:      prevHash,
	})
	var err error
	e.Hash, err = AuditHash(e)
	return e, err
}
