package clickhouse

import (
	"context"
	"errors"
	"strconv"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
)

var _ stores.Holds = (*Ledger)(nil)

// chLedgerHolds keeps one row per contact that ever had a hold, replaced by
// a newer version on every change; held = 0 once lifted. The audit log
// keeps the history.
const chLedgerHolds = "erasure_ledger_holds"

func holdsTableSQL(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
			contact_id  String,
			version     UInt64,
			held        UInt8,
			hold_id     String,
			placed_by   String,
			placed_at   String,
			reason_code String,
			ticket      String,
			audit_seq   UInt64
		) ENGINE = ReplacingMergeTree(version) ORDER BY contact_id`
}

var (
	chHoldCols  = []string{"contact_id", "version", "held", "hold_id", "placed_by", "placed_at", "reason_code", "ticket", "audit_seq"}
	chHoldTypes = []string{"String", "UInt64", "UInt8", "String", "String", "String", "String", "String", "UInt64"}
)

// ApplyHold places or lifts a hold and appends its audit entry. Like
// Complete, it runs under the ledger's write serialisation and appends the
// entry before it writes the hold: interrupted in between, the change is
// audited but not in force, and asking again places it (with a second
// entry); the reverse order could leave a hold in force that the log never
// mentions.
func (l *Ledger) ApplyHold(ctx context.Context, c stores.HoldChange) (stores.AuditEntry, bool, error) {
	if err := stores.CheckHoldChange(c); err != nil {
		return stores.AuditEntry{}, false, err
	}
	c.At = c.At.UTC()
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := l.writers.lock(ctx)
	if err != nil {
		return stores.AuditEntry{}, false, clickhouseErr(ctx, "ledger: apply hold", err)
	}
	defer unlock()
	e, applied, err := l.applyHold(ctx, c)
	if err != nil {
		return stores.AuditEntry{}, false, clickhouseErr(ctx, "ledger: apply hold", err)
	}
	return e, applied, nil
}

func (l *Ledger) applyHold(ctx context.Context, c stores.HoldChange) (stores.AuditEntry, bool, error) {
	prior, err := l.auditWhere(ctx, `request_id = ? AND status IN (?, ?)`, c.HoldID,
		string(stores.AuditHoldPlaced), string(stores.AuditHoldLifted))
	if err != nil || len(prior) > 0 {
		return stores.AuditEntry{}, false, err
	}
	cur, err := l.held(ctx, []string{c.ContactID})
	if err != nil {
		return stores.AuditEntry{}, false, err
	}
	_, held := cur[c.ContactID]
	if (c.Action == schemas.HoldPlace) == held {
		return stores.AuditEntry{}, false, nil
	}
	e, err := l.chainAudit(ctx, func(seq int64, prevHash string) (stores.AuditEntry, error) {
		return stores.HoldAuditEntry(c, seq, prevHash)
	})
	if err != nil {
		return stores.AuditEntry{}, false, err
	}
	row := []string{c.ContactID, strconv.FormatUint(l.nextVersion(0), 10), "0", c.HoldID, c.Actor,
		stores.FormatTime(c.At), c.ReasonCode, c.Ticket, strconv.FormatInt(e.Seq, 10)}
	if c.Action == schemas.HoldPlace {
		row[2] = "1"
	}
	if err := l.chInsert(ctx, chLedgerHolds, chHoldCols, chHoldTypes, row); err != nil {
		return stores.AuditEntry{}, false, err
	}
	// The audit log's contact filter finds hold entries too.
	if err := l.putContacts(ctx, c.HoldID, []string{c.ContactID}); err != nil {
		return stores.AuditEntry{}, false, err
	}
	return e, true, nil
}

// Held returns the holds in force among contactIDs.
func (l *Ledger) Held(ctx context.Context, contactIDs ...string) (map[string]stores.Hold, error) {
	if len(contactIDs) == 0 {
		return nil, stores.Permanent(errors.New("ledger: held: no contact IDs"))
	}
	out, err := l.held(ctx, contactIDs)
	return out, clickhouseErr(ctx, "ledger: held", err)
}

func (l *Ledger) held(ctx context.Context, contactIDs []string) (map[string]stores.Hold, error) {
	out := map[string]stores.Hold{}
	for start := 0; start < len(contactIDs); start += clickhouseInsertRows {
		chunk := contactIDs[start:min(start+clickhouseInsertRows, len(contactIDs))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		// FINAL, and the filter on held outside it, so only each contact's
		// latest version counts.
		rows, err := l.conn().Query(ctx, `SELECT contact_id, hold_id, placed_by, placed_at, reason_code, ticket, audit_seq
			FROM (SELECT * FROM `+l.table(chLedgerHolds)+` FINAL WHERE contact_id IN (`+sqlutil.Placeholders(len(chunk))+`))
			WHERE held = 1`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var h stores.Hold
			var at string
			var seq uint64
			if err := rows.Scan(&h.ContactID, &h.HoldID, &h.PlacedBy, &at, &h.ReasonCode, &h.Ticket, &seq); err != nil {
				rows.Close()
				return nil, err
			}
			if h.PlacedAt, err = stores.ParseTime(at); err != nil {
				rows.Close()
				return nil, stores.Permanent(errors.New("stored hold time is not valid"))
			}
			h.AuditSeq = int64(seq)
			out[h.ContactID] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
