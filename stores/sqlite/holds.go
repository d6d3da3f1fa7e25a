package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
)

var _ stores.Holds = (*Ledger)(nil)

// holdsTableSQL keeps the holds in force, one row per held contact; the
// audit log keeps their history.
const holdsTableSQL = `CREATE TABLE IF NOT EXISTS erasure_ledger_holds (
			contact_id  TEXT PRIMARY KEY,
			hold_id     TEXT NOT NULL,
			placed_by   TEXT NOT NULL,
			placed_at   TEXT NOT NULL,
			reason_code TEXT NOT NULL,
			ticket      TEXT NOT NULL DEFAULT '',
			audit_seq   INTEGER NOT NULL
		) WITHOUT ROWID`

// ApplyHold places or lifts a hold and appends its audit entry in one
// transaction.
func (l *Ledger) ApplyHold(ctx context.Context, c stores.HoldChange) (stores.AuditEntry, bool, error) {
	if err := stores.CheckHoldChange(c); err != nil {
		return stores.AuditEntry{}, false, err
	}
	if err := l.ensure(ctx); err != nil {
		return stores.AuditEntry{}, false, err
	}
	c.At = c.At.UTC()
	var (
		entry   stores.AuditEntry
		applied bool
	)
	err := inTx(ctx, l.db, func(tx *sql.Tx) error {
		// A redelivered change was applied (or found nothing to do) before;
		// its audit entry, if any, is already in the log.
		prior, err := auditWhere(ctx, tx, `request_id = ? AND status IN (?, ?)`, c.HoldID,
			string(stores.AuditHoldPlaced), string(stores.AuditHoldLifted))
		if err != nil || len(prior) > 0 {
			return err
		}
		var held int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM erasure_ledger_holds WHERE contact_id = ?`,
			c.ContactID).Scan(&held); err != nil {
			return err
		}
		if (c.Action == schemas.HoldPlace) == (held > 0) {
			return nil // already as asked
		}
		e, err := l.chainAudit(ctx, tx, func(seq int64, prevHash string) (stores.AuditEntry, error) {
			return stores.HoldAuditEntry(c, seq, prevHash)
		})
		if err != nil {
			return err
		}
		if c.Action == schemas.HoldPlace {
			_, err = tx.ExecContext(ctx, `INSERT INTO erasure_ledger_holds
				(contact_id, hold_id, placed_by, placed_at, reason_code, ticket, audit_seq) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				c.ContactID, c.HoldID, c.Actor, stores.FormatTime(c.At), c.ReasonCode, c.Ticket, e.Seq)
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM erasure_ledger_holds WHERE contact_id = ?`, c.ContactID)
		}
		if err != nil {
			return err
		}
		// The audit log's contact filter finds hold entries too.
		if err := putContacts(ctx, tx, c.HoldID, []string{c.ContactID}); err != nil {
			return err
		}
		entry, applied = e, true
		return nil
	})
	if err != nil {
		return stores.AuditEntry{}, false, sqliteErr("ledger: apply hold", err)
	}
	return entry, applied, nil
}

// Held returns the holds in force among contactIDs.
func (l *Ledger) Held(ctx context.Context, contactIDs ...string) (map[string]stores.Hold, error) {
	if len(contactIDs) == 0 {
		return nil, stores.Permanent(errors.New("ledger: held: no contact IDs"))
	}
	if err := l.ensure(ctx); err != nil {
		return nil, err
	}
	out := map[string]stores.Hold{}
	for start := 0; start < len(contactIDs); start += sqliteMaxVars {
		chunk := contactIDs[start:min(start+sqliteMaxVars, len(contactIDs))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := l.db.QueryContext(ctx, `SELECT contact_id, hold_id, placed_by, placed_at, reason_code, ticket, audit_seq
			FROM erasure_ledger_holds WHERE contact_id IN (`+sqlutil.Placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, sqliteErr("ledger: held", err)
		}
		for rows.Next() {
			var h stores.Hold
			var at string
			if err := rows.Scan(&h.ContactID, &h.HoldID, &h.PlacedBy, &at, &h.ReasonCode, &h.Ticket, &h.AuditSeq); err != nil {
				rows.Close()
				return nil, sqliteErr("ledger: held", err)
			}
			if h.PlacedAt, err = stores.ParseTime(at); err != nil {
				rows.Close()
				return nil, stores.Permanent(errors.New("ledger: held: stored time is not valid"))
			}
			out[h.ContactID] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, sqliteErr("ledger: held", err)
		}
	}
	return out, nil
}

// sqliteMaxVars keeps a query's bound values well under SQLite's limit.
const sqliteMaxVars = 500
