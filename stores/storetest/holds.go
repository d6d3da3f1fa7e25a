package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// HoldsLedger is a ledger that keeps legal holds, as both ledgers do.
type HoldsLedger interface {
	stores.Ledger
	stores.Holds
}

// HoldChange is a valid hold change made at at.
func HoldChange(contactID string, action schemas.HoldAction, at time.Time) stores.HoldChange {
	return stores.HoldChange{HoldID: NewUUID(), ContactID: contactID, Action: action, Actor: "legal.counsel",
		At: at, ReasonCode: "litigation", Ticket: "LEGAL-2025-7"}
}

// TestHolds checks the legal holds of a ledger, and the reason, ticket and
// held contacts of audit entries, through the interfaces only. newLedger
// must return an empty ledger of its own for every call.
func TestHolds(t *testing.T, newLedger func(t *testing.T) HoldsLedger) {
	t.Run("PlaceAndLiftAreAuditedAndChained", func(t *testing.T) {
		l := newLedger(t)
		held, free := NewUUID(), NewUUID()
		if got := mustHeld(t, l, held, free); len(got) != 0 {
			t.Fatalf("Held before any hold = %v", got)
		}
		// A deletion first, so hold entries chain after other entries.
		r := Request(LedgerBase, free)
		MustPutRequest(t, l, r, LedgerBase.Add(time.Minute))
		if _, _, err := l.Complete(t.Context(), Outcome(r, schemas.StatusSucceeded, LedgerBase.Add(time.Second)), "Delete Contact"); err != nil {
			t.Fatal(err)
		}

		place := HoldChange(held, schemas.HoldPlace, LedgerBase.Add(2*time.Second))
		e, applied := mustApplyHold(t, l, place)
		if !applied || e.Seq != 2 || e.RequestID != place.HoldID || e.Functionality != stores.FunctionalityLegalHold ||
			e.Status != stores.AuditHoldPlaced || !slices.Equal(e.ContactIDs, []string{held}) || e.Actor != place.Actor ||
			e.ReasonCode != "litigation" || e.Ticket != "LEGAL-2025-7" || e.Setting != stores.AuditSetting || e.IsDecision() {
			t.Fatalf("place entry = %+v applied %v", e, applied)
		}
		got := mustHeld(t, l, held, free)
		h, ok := got[held]
		if len(got) != 1 || !ok || h.HoldID != place.HoldID || h.PlacedBy != place.Actor || !h.PlacedAt.Equal(place.At) ||
			h.ReasonCode != place.ReasonCode || h.Ticket != place.Ticket || h.AuditSeq != e.Seq || h.ContactID != held {
			t.Fatalf("Held after placing = %+v", got)
		}

		// Placing again, under a new ID or the same one, changes nothing.
		again := HoldChange(held, schemas.HoldPlace, LedgerBase.Add(3*time.Second))
		if _, applied := mustApplyHold(t, l, again); applied {
			t.Error("a second hold on a held contact was applied")
		}
		if _, applied := mustApplyHold(t, l, place); applied {
			t.Error("a redelivered hold was applied again")
		}
		if h2 := mustHeld(t, l, held)[held]; h2.HoldID != place.HoldID {
			t.Errorf("the hold in force changed to %+v", h2)
		}
		if n := len(MustAudit(t, l, stores.AuditFilter{})); n != 2 {
			t.Errorf("audit entries = %d, want 2: a change that changed nothing is not audited", n)
		}

		// The audit log finds the entry by contact, functionality, reason and ticket.
		for _, f := range []stores.AuditFilter{
			{ContactID: held}, {Functionality: stores.FunctionalityLegalHold}, {ReasonCode: "litigation"},
			{Ticket: "LEGAL-2025-7"}, {RequestID: place.HoldID},
		} {
			if es := MustAudit(t, l, f); len(es) != 1 || es[0].Seq != e.Seq {
				t.Errorf("Audit(%+v) = %d entries, want the hold's", f, len(es))
			}
		}
		if es := MustAudit(t, l, stores.AuditFilter{Ticket: "LEGAL-2025-8"}); len(es) != 0 {
			t.Errorf("Audit by another ticket = %d entries", len(es))
		}
		// Holds are no deletion: a contact's deletion history does not list them.
		if sts, err := l.ByContact(t.Context(), held, 10); err != nil || len(sts) != 0 {
			t.Errorf("ByContact of a held contact = %d states, %v", len(sts), err)
		}

		lift := HoldChange(held, schemas.HoldLift, LedgerBase.Add(4*time.Second))
		lift.ReasonCode, lift.Ticket = "matter-closed", ""
		le, applied := mustApplyHold(t, l, lift)
		if !applied || le.Seq != 3 || le.Status != stores.AuditHoldLifted || le.ReasonCode != "matter-closed" || le.Ticket != "" {
			t.Fatalf("lift entry = %+v applied %v", le, applied)
		}
		if got := mustHeld(t, l, held); len(got) != 0 {
			t.Fatalf("Held after lifting = %v", got)
		}
		if _, applied := mustApplyHold(t, l, HoldChange(held, schemas.HoldLift, LedgerBase.Add(5*time.Second))); applied {
			t.Error("lifting a hold that is not there was applied")
		}
		// Placed again after a lift: a new hold.
		re := HoldChange(held, schemas.HoldPlace, LedgerBase.Add(6*time.Second))
		if e, applied := mustApplyHold(t, l, re); !applied || e.Seq != 4 {
			t.Fatalf("hold after a lift = %+v applied %v", e, applied)
		}
		if h := mustHeld(t, l, held)[held]; h.HoldID != re.HoldID {
			t.Errorf("hold in force = %+v, want the new one", h)
		}
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 4 {
			t.Errorf("VerifyChain = %d, %v", n, err)
		}
	})

	t.Run("HeldTakesABatch", func(t *testing.T) {
		l := newLedger(t)
		ids := make([]string, 1200)
		for i := range ids {
			ids[i] = NewUUID()
		}
		want := []string{ids[0], ids[599], ids[1199]}
		for i, id := range want {
			mustApplyHold(t, l, HoldChange(id, schemas.HoldPlace, LedgerBase.Add(time.Duration(i)*time.Second)))
		}
		got := mustHeld(t, l, ids...)
		if len(got) != len(want) {
			t.Fatalf("Held over %d contacts = %d holds, want %d", len(ids), len(got), len(want))
		}
		for _, id := range want {
			if _, ok := got[id]; !ok {
				t.Errorf("hold on %s not found", id)
			}
		}
		if _, err := l.Held(t.Context()); err == nil {
			t.Error("Held with no contact IDs did not fail")
		}
	})

	t.Run("InvalidChangesAreRefused", func(t *testing.T) {
		l := newLedger(t)
		for name, mutate := range map[string]func(*stores.HoldChange){
			"no hold ID":       func(c *stores.HoldChange) { c.HoldID = "" },
			"no contact":       func(c *stores.HoldChange) { c.ContactID = "" },
			"no actor":         func(c *stores.HoldChange) { c.Actor = "" },
			"unknown action":   func(c *stores.HoldChange) { c.Action = "release" },
			"free text reason": func(c *stores.HoldChange) { c.ReasonCode = "Because Jane Doe asked" },
			"phone as ticket":  func(c *stores.HoldChange) { c.Ticket = "07700900304" },
			"no time":          func(c *stores.HoldChange) { c.At = time.Time{} },
		} {
			c := HoldChange(NewUUID(), schemas.HoldPlace, LedgerBase)
			mutate(&c)
			if _, _, err := l.ApplyHold(t.Context(), c); err == nil || stores.IsRetryable(err) {
				t.Errorf("%s: ApplyHold err = %v, want a permanent error", name, err)
			}
		}
		if n := len(MustAudit(t, l, stores.AuditFilter{})); n != 0 {
			t.Errorf("refused changes wrote %d audit entries", n)
		}
	})

	t.Run("OutcomeReasonTicketAndHeldAreAudited", func(t *testing.T) {
		l := newLedger(t)
		free, held := NewUUID(), NewUUID()
		r := Request(LedgerBase, free, held)
		r.Ticket = "INC-20431"
		MustPutRequest(t, l, r, LedgerBase.Add(time.Minute))
		out := Outcome(r, schemas.StatusSucceeded, LedgerBase.Add(time.Second))
		out.ReasonCode, out.Ticket, out.HeldContactIDs = r.ReasonCode, r.Ticket, []string{held}
		stored, created, err := l.Complete(t.Context(), out, "Delete Contact")
		if err != nil || !created {
			t.Fatalf("Complete: %v %v", created, err)
		}
		if !slices.Equal(stored.HeldContactIDs, []string{held}) || stored.Ticket != r.Ticket || stored.ReasonCode != r.ReasonCode {
			t.Errorf("stored outcome = %+v", stored)
		}
		es := MustAudit(t, l, stores.AuditFilter{Ticket: "INC-20431"})
		if len(es) != 1 || es[0].ReasonCode != "gdpr-art17" || !slices.Equal(es[0].HeldContactIDs, []string{held}) {
			t.Fatalf("audit by ticket = %+v", es)
		}
		if st := MustState(t, l, r.RequestID); st.Outcome == nil || !slices.Equal(st.Outcome.HeldContactIDs, []string{held}) {
			t.Errorf("State outcome = %+v", st.Outcome)
		}
		if es := MustAudit(t, l, stores.AuditFilter{ReasonCode: "retention"}); len(es) != 0 {
			t.Errorf("audit by another reason = %d entries", len(es))
		}
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 1 {
			t.Errorf("VerifyChain = %d, %v", n, err)
		}
	})
}

func mustApplyHold(t *testing.T, l stores.Holds, c stores.HoldChange) (stores.AuditEntry, bool) {
	t.Helper()
	e, applied, err := l.ApplyHold(t.Context(), c)
	if err != nil {
		t.Fatalf("ApplyHold(%s %s): %v", c.Action, c.ContactID, err)
	}
	return e, applied
}

func mustHeld(t *testing.T, l stores.Holds, ids ...string) map[string]stores.Hold {
	t.Helper()
	got, err := l.Held(t.Context(), ids...)
	if err != nil {
		t.Fatalf("Held: %v", err)
	}
	return got
}
