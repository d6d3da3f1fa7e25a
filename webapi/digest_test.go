package webapi

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// The outcome of other content under a request ID a user submitted (a
// refused reuse of the ID) never reaches that user's browser; the outcome
// of their own content does, and both name their digest.
func TestRefusedReuseOutcomeNotForwardedToOwner(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	dpo := h.login("dpo")
	ws := h.mustDial(dpo)
	res := h.do(dpo, "POST", "/api/v1/deletions", map[string]any{"contact_ids": []string{contactA}}, true)
	var acc deletionAccepted
	if err := json.NewDecoder(res.Body).Decode(&acc); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	own := schemas.DeletionRequested{ContactIDs: []string{contactA}, RequestedBy: "dpo", Source: schemas.SourceUI}
	if acc.RequestDigest != own.ContentDigest() {
		t.Fatalf("accepted digest %q, want %q", acc.RequestDigest, own.ContentDigest())
	}

	now := time.Now().UTC()
	other := schemas.DeletionRequested{ContactIDs: []string{contactB}, RequestedBy: "crm-service", Source: schemas.SourceUpstream}
	h.publish(h.topics.Outcomes(), &schemas.DeletionCompleted{
		RequestID: acc.RequestID, ContactIDs: other.ContactIDs, RequestedBy: other.RequestedBy, RequestedAt: now, CompletedAt: now,
		Source: other.Source, Status: schemas.StatusRefused, ErrorCode: schemas.ErrCodeRequestIDConflict,
		Channels: []schemas.ChannelOutcome{}, AuditSeq: 1, AuditHash: strings.Repeat("ab", 32), RequestDigest: other.ContentDigest(),
	}, acc.RequestID)
	// Outcomes are read in order, so the next message shows whether the
	// refused one was forwarded.
	h.publish(h.topics.Outcomes(), &schemas.DeletionCompleted{
		RequestID: acc.RequestID, ContactIDs: own.ContactIDs, RequestedBy: "dpo", RequestedAt: now, CompletedAt: now,
		Source: schemas.SourceUI, Status: schemas.StatusNotFound, Channels: []schemas.ChannelOutcome{},
		AuditSeq: 2, AuditHash: strings.Repeat("cd", 32), RequestDigest: own.ContentDigest(),
	}, acc.RequestID)
	m, ok := read(t, ws, 5*time.Second)
	if !ok || m.Type != "outcome" || m.Status != string(schemas.StatusNotFound) {
		t.Fatalf("first message to the owner: %+v (ok=%v), want their own not_found outcome", m, ok)
	}
}

// Late and refused entries reach the CSV export with their own columns.
func TestAuditCSVLateEntry(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	h.ledger.mu.Lock()
	h.ledger.audit = append(h.ledger.audit, stores.AuditEntry{Seq: 9, RequestID: "01900000-0000-7000-8000-000000000009",
		Functionality: "Delete Contact", Actor: "dpo", ContactIDs: []string{contactA}, Status: schemas.StatusSucceeded,
		Channels: []schemas.ChannelOutcome{{Channel: schemas.ChannelVoice, Status: schemas.StatusSucceeded,
			Artefacts: []schemas.ArtefactCount{{Artefact: "call_recordings", Before: 3, Deleted: 3}}}},
		Amends: 7, RequestDigest: strings.Repeat("0f", 32)})
	h.ledger.mu.Unlock()
	res := h.do(h.login("auditor"), "GET", "/api/v1/audit.csv", nil, false)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	rows, err := csv.NewReader(res.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := rows[0]
	if head[13] != "amends" || head[14] != "request_digest" {
		t.Fatalf("header %q", head)
	}
	var found bool
	for _, r := range rows[1:] {
		if r[1] == "9" {
			found = true
			if r[13] != "7" || r[14] != strings.Repeat("0f", 32) || !strings.Contains(r[10], "voice:succeeded:deleted=3") {
				t.Errorf("late entry row %q", r)
			}
		} else if r[13] != "" {
			t.Errorf("decision entry with amends %q", r)
		}
	}
	if !found {
		t.Fatal("late entry missing from the export")
	}
}
