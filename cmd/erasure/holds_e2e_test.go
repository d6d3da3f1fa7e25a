package main

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// placeHold publishes a hold change as the web API does (signed, on the
// holds topic) and waits until the aggregator applied it.
func placeHold(t *testing.T, p *pipeline, contactID string, action schemas.HoldAction) {
	t.Helper()
	ev := &schemas.HoldRequested{HoldID: uuid.Must(uuid.NewV7()).String(), ContactID: contactID, Action: action,
		RequestedBy: "legal", RequestedAt: time.Now().UTC(), ReasonCode: "litigation", Ticket: "LEGAL-7"}
	if err := producers.Publish(p.app.Publisher, p.app.Topics.Holds(), ev, contactID); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		h, err := p.app.Stores.Holds.Held(t.Context(), contactID)
		if err != nil {
			t.Fatal(err)
		}
		if _, held := h[contactID]; held == (action == schemas.HoldPlace) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hold %s on %s not applied within 30s", action, contactID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// submitUpstream publishes a request with source upstream (signed with
// erasure's event key, as the pipeline's own publisher signs) and waits for
// its outcome.
func submitUpstream(t *testing.T, p *pipeline, ids ...string) schemas.DeletionCompleted {
	t.Helper()
	req := &schemas.DeletionRequested{RequestID: uuid.Must(uuid.NewV7()).String(), ContactIDs: ids, RequestedBy: "crm-service",
		RequestedAt: time.Now().UTC(), Source: schemas.SourceUpstream, Channels: schemas.AllChannels, ReasonCode: "gdpr-art17"}
	if err := producers.Publish(p.app.Publisher, p.app.Topics.Requests(), req, req.RequestID); err != nil {
		t.Fatal(err)
	}
	return waitOutcome(t, p, req.RequestID)
}

// The pipeline itself enforces legal holds, whoever asks: an upstream
// request mixing held and free contacts deletes the free ones and reports
// the held ones, whose every artefact and index entry stays; a request of
// held contacts only is decided held and deletes nothing; once the hold is
// lifted the contact can be deleted.
func TestLegalHoldIsEnforcedByThePipeline(t *testing.T) {
	p := startPipeline(t, 8, nil)
	held := firstOfKind(t, p.demo, "voice")
	free := firstOfKind(t, p.demo, "email")
	before := p.inventory(t)[held.ID]
	if before.Total() == 0 {
		t.Fatal("the held contact holds nothing: the test would prove nothing")
	}
	placeHold(t, p, held.ID, schemas.HoldPlace)

	out := submitUpstream(t, p, held.ID, free.ID)
	if out.Status != schemas.StatusSucceeded || !slices.Equal(out.HeldContactIDs, []string{held.ID}) {
		t.Fatalf("mixed request: %s %s held %v", out.Status, out.ErrorCode, out.HeldContactIDs)
	}
	after := p.inventory(t)
	if got := after[held.ID]; got.Total() != before.Total() {
		t.Errorf("the held contact lost data: %d -> %d items", before.Total(), got.Total())
	}
	if _, err := p.app.Stores.Index.Get(t.Context(), "contacts", held.ID); err != nil {
		t.Errorf("the held contact is no longer findable: %v", err)
	}
	if got := after[free.ID]; got.Total() != 0 {
		t.Errorf("the free contact of the same request still has %d items", got.Total())
	}

	out = submitUpstream(t, p, held.ID)
	if out.Status != schemas.StatusHeld || out.ErrorCode != schemas.ErrCodeLegalHold || !slices.Equal(out.HeldContactIDs, []string{held.ID}) {
		t.Fatalf("request of a held contact only: %s %s held %v", out.Status, out.ErrorCode, out.HeldContactIDs)
	}
	if got := p.inventory(t)[held.ID]; got.Total() != before.Total() {
		t.Errorf("the held contact lost data: %d -> %d items", before.Total(), got.Total())
	}
	entries := auditOf(t, p, out.RequestID)
	if len(entries) != 1 || entries[0].Status != schemas.StatusHeld || !slices.Equal(entries[0].HeldContactIDs, []string{held.ID}) {
		t.Fatalf("audit of the held request: %+v", entries)
	}
	holdEntries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Functionality: stores.FunctionalityLegalHold})
	if err != nil || len(holdEntries) != 1 || holdEntries[0].Status != stores.AuditHoldPlaced || holdEntries[0].Signature == "" {
		t.Fatalf("hold audit entries: %+v %v", holdEntries, err)
	}

	placeHold(t, p, held.ID, schemas.HoldLift)
	out = submitUpstream(t, p, held.ID)
	if out.Status != schemas.StatusSucceeded || len(out.HeldContactIDs) != 0 {
		t.Fatalf("after the lift: %s held %v", out.Status, out.HeldContactIDs)
	}
	if got := p.inventory(t)[held.ID]; got.Total() != 0 {
		t.Errorf("after the lift the contact still has %d items", got.Total())
	}
	verifyChain(t, p)
}
