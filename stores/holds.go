package stores

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/erasure-project/erasure/schemas"
)

// FunctionalityLegalHold is the Functionality of the audit entries that
// place and lift legal holds.
const FunctionalityLegalHold = "Legal Hold"

// Statuses of legal hold audit entries. They are the audit log's own: no
// event carries them.
const (
	AuditHoldPlaced schemas.Status = "hold_placed"
	AuditHoldLifted schemas.Status = "hold_lifted"
)

// IsHold reports whether e places or lifts a legal hold.
func (e AuditEntry) IsHold() bool {
	return e.Status == AuditHoldPlaced || e.Status == AuditHoldLifted
}

// Hold is a legal hold in force on one contact: while it is, no channel
// erases anything of the contact.
type Hold struct {
	ContactID string    `json:"contact_id"`
	HoldID    string    `json:"hold_id"`
	PlacedBy  string    `json:"placed_by"`
	PlacedAt  time.Time `json:"placed_at"`
	// ReasonCode is a short code (never free text); Ticket an optional case
	// reference.
	ReasonCode string `json:"reason_code"`
	Ticket     string `json:"ticket,omitempty"`
	// AuditSeq is the audit entry that placed it.
	AuditSeq int64 `json:"audit_seq"`
}

// HoldChange places or lifts the hold on one contact.
type HoldChange struct {
	// HoldID identifies the change (a UUID made by whoever asked); it is the
	// request ID of its audit entry, and a change applied again under the
	// same ID changes nothing.
	HoldID     string
	ContactID  string
	Action     schemas.HoldAction
	Actor      string
	At         time.Time
	ReasonCode string
	Ticket     string
}

// Holds keeps legal holds beside the audit log, so that every change is
// audited with the hold it makes. The ledgers implement it.
type Holds interface {
	// ApplyHold places or lifts a hold and appends its audit entry (Functionality
	// "Legal Hold", status hold_placed or hold_lifted), signed and chained like
	// every entry, in one step. Placing a hold on a held contact, lifting one
	// from a contact without a hold and applying a change whose HoldID was
	// applied before change nothing and return applied=false with the zero
	// entry.
	ApplyHold(ctx context.Context, c HoldChange) (entry AuditEntry, applied bool, err error)
	// Held returns the holds in force among contactIDs, by contact ID; a
	// contact without one is absent. Values are a batch (up to a request's
	// 1,000 contacts); none is an error.
	Held(ctx context.Context, contactIDs ...string) (map[string]Hold, error)
}

// CheckHoldChange refuses a change that is not whole before a ledger sees it.
func CheckHoldChange(c HoldChange) error {
	switch {
	case c.HoldID == "" || c.ContactID == "" || c.Actor == "":
		return Permanent(errors.New("hold: hold ID, contact ID and actor are required"))
	case c.Action != schemas.HoldPlace && c.Action != schemas.HoldLift:
		return Permanent(fmt.Errorf("hold: unknown action %q", c.Action))
	case !schemas.CheckReasonCode(c.ReasonCode):
		return Permanent(errors.New("hold: reason code is not a short code"))
	case c.Ticket != "" && schemas.CheckTicket(c.Ticket) != nil:
		return Permanent(schemas.ErrInvalidTicket)
	case c.At.IsZero():
		return Permanent(errors.New("hold: no time"))
	}
	return nil
}

// HoldAuditEntry is the audit entry of a hold change, chained after
// prevHash as entry seq.
func HoldAuditEntry(c HoldChange, seq int64, prevHash string) (AuditEntry, error) {
	status := AuditHoldPlaced
	if c.Action == schemas.HoldLift {
		status = AuditHoldLifted
	}
	e := NormalizeAudit(AuditEntry{
		Seq:           seq,
		RequestID:     c.HoldID,
		Setting:       AuditSetting,
		Functionality: FunctionalityLegalHold,
		Actor:         c.Actor,
		ContactIDs:    []string{c.ContactID},
		Status:        status,
		RequestedAt:   c.At,
		CompletedAt:   c.At,
		ReasonCode:    c.ReasonCode,
		Ticket:        c.Ticket,
		PrevHash:      prevHash,
	})
	var err error
	e.Hash, err = AuditHash(e)
	return e, err
}
