package aggregator

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// HoldLedger applies legal holds with their audit entries; both ledgers
// are one.
type HoldLedger interface {
	ApplyHold(ctx context.Context, c stores.HoldChange) (stores.AuditEntry, bool, error)
}

// Holds applies the legal holds the web API publishes. It runs in the
// aggregator's process because that process is the audit log's writer: the
// hold's entry is chained and signed where every other entry is.
type Holds struct {
	Ledger HoldLedger
	Topics schemas.Topics
	Rule   schemas.ContactIDRule
	Logger *slog.Logger
}

// Register adds the holds handler, in its own consumer group. Hold events
// must carry erasure's signature: a forged lift would free a contact for
// deletion.
func (h *Holds) Register(r *message.Router, cfg consumers.RouterConfig, sub message.Subscriber) {
	hd := r.AddNoPublisherHandler("aggregator-holds", h.Topics.Holds(), sub, h.onHold)
	hd.AddMiddleware(consumers.Verify(cfg.Keys, h.Topics.Holds()))
	hd.AddMiddleware(consumers.HandlerStack(cfg, h.Logger)...)
}

func (h *Holds) onHold(msg *message.Message) error {
	var ev schemas.HoldRequested
	if err := consumers.Decode(msg, h.Rule, &ev); err != nil {
		return err
	}
	ctx := msg.Context()
	e, applied, err := h.Ledger.ApplyHold(ctx, stores.HoldChange{
		HoldID: ev.HoldID, ContactID: ev.ContactID, Action: ev.Action, Actor: ev.RequestedBy,
		At: ev.RequestedAt, ReasonCode: ev.ReasonCode, Ticket: ev.Ticket,
	})
	if err != nil {
		return fmt.Errorf("apply hold: %w", err)
	}
	if applied {
		h.Logger.InfoContext(ctx, "legal hold changed", "hold_id", ev.HoldID, "action", ev.Action, "audit_seq", e.Seq)
	} else {
		h.Logger.InfoContext(ctx, "legal hold unchanged: already as asked", "hold_id", ev.HoldID, "action", ev.Action)
	}
	return nil
}
