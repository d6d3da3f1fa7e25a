package aggregator

import (
	"slices"
	"testing"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

const contact2 = "7f1c2b3a-9e8d-4c6b-a5f4-e3d2c1b0a987"

func heldResult(req *schemas.DeletionRequested, ch schemas.Channel, deleted int64, held ...string) *schemas.ChannelCompleted {
	r := result(ch, schemas.StatusSucceeded, deleted)
	r.RequestDigest = req.ContentDigest()
	r.HeldContactIDs = held
	return r
}

func decodeOutcome(t *testing.T, a *Aggregator, rec *recorder) schemas.DeletionCompleted {
	t.Helper()
	if n := rec.count("t.outcomes"); n != 1 {
		t.Fatalf("%d outcomes published, want 1", n)
	}
	var out schemas.DeletionCompleted
	if err := schemas.Decode(rec.msgs["t.outcomes"][0].Payload, a.Rule, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A request mixing held and free contacts finalizes only the free ones and
// reports the held ones beside its status; reason and ticket are audited.
func TestMixedHeldRequestFinalizesFreeContactsOnly(t *testing.T) {
	a, rec, led, now := setup(t)
	req := request(*now)
	req.ContactIDs = []string{contact, contact2}
	req.ReasonCode, req.Ticket = "gdpr-art17", "INC-20431"
	if err := onRequest(a, msg(t, req)); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []schemas.Channel{schemas.ChannelVoice, schemas.ChannelSocial} {
		if err := a.onResult(msg(t, heldResult(req, ch, 2, contact2))); err != nil {
			t.Fatal(err)
		}
	}
	if n := rec.count("t.finalize"); n != 1 {
		t.Fatalf("finalize published %d times", n)
	}
	var fin schemas.FinalizeRequested
	if err := schemas.Decode(rec.msgs["t.finalize"][0].Payload, a.Rule, &fin); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fin.ContactIDs, []string{contact}) {
		t.Fatalf("finalize contacts %v, want only the free one", fin.ContactIDs)
	}
	if err := a.onResult(msg(t, heldResult(req, schemas.ChannelContactSearch, 1))); err != nil {
		t.Fatal(err)
	}
	out := decodeOutcome(t, a, rec)
	if out.Status != schemas.StatusSucceeded || !slices.Equal(out.HeldContactIDs, []string{contact2}) ||
		out.ReasonCode != "gdpr-art17" || out.Ticket != "INC-20431" {
		t.Fatalf("outcome %+v", out)
	}
	entries, err := led.Audit(t.Context(), stores.AuditFilter{Ticket: "INC-20431"})
	if err != nil || len(entries) != 1 || !slices.Equal(entries[0].HeldContactIDs, []string{contact2}) ||
		entries[0].ReasonCode != "gdpr-art17" {
		t.Fatalf("audit entries %+v %v", entries, err)
	}
}

// A request whose every contact is held is decided as held: phase 2 never
// starts, nothing is reported deleted, and it is not a success.
func TestAllHeldRequestIsHeldNotSucceeded(t *testing.T) {
	a, rec, led, now := setup(t)
	req := request(*now)
	if err := onRequest(a, msg(t, req)); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []schemas.Channel{schemas.ChannelVoice, schemas.ChannelSocial} {
		r := heldResult(req, ch, 0, contact)
		r.Artefacts = []schemas.ArtefactCount{}
		if err := a.onResult(msg(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	if n := rec.count("t.finalize"); n != 0 {
		t.Fatalf("phase 2 started for a request whose every contact is held (%d finalize)", n)
	}
	out := decodeOutcome(t, a, rec)
	if out.Status != schemas.StatusHeld || out.ErrorCode != schemas.ErrCodeLegalHold || !slices.Equal(out.HeldContactIDs, []string{contact}) {
		t.Fatalf("outcome %+v", out)
	}
	for _, co := range out.Channels {
		if co.Channel == schemas.ChannelContactSearch && co.Status != schemas.StatusSkipped {
			t.Errorf("contact-search %s, want skipped", co.Status)
		}
	}
	entries, err := led.Audit(t.Context(), stores.AuditFilter{})
	if err != nil || len(entries) != 1 || entries[0].Status != schemas.StatusHeld || !entries[0].IsDecision() {
		t.Fatalf("audit %+v %v", entries, err)
	}
}

// A hold placed after one channel ran and before another is reported as
// held, though the first channel deleted: the contact keeps its index
// entries and its other channels' data.
func TestHoldPlacedMidRequestIsReported(t *testing.T) {
	a, rec, _, now := setup(t)
	req := request(*now)
	if err := onRequest(a, msg(t, req)); err != nil {
		t.Fatal(err)
	}
	if err := a.onResult(msg(t, heldResult(req, schemas.ChannelVoice, 3))); err != nil {
		t.Fatal(err)
	}
	if err := a.onResult(msg(t, heldResult(req, schemas.ChannelSocial, 0, contact))); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.finalize") != 0 {
		t.Fatal("phase 2 started for a held contact")
	}
	out := decodeOutcome(t, a, rec)
	if out.Status != schemas.StatusHeld || !slices.Equal(out.HeldContactIDs, []string{contact}) {
		t.Fatalf("outcome %+v", out)
	}
	if out.Channels[0].Artefacts[0].Deleted != 3 {
		t.Errorf("what voice deleted before the hold is not in the outcome: %+v", out.Channels[0])
	}
}
