package webapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
)

// An open record page hears when a deletion of its contact is decided,
// whoever asked for it, so a stale tab does not offer to delete a contact
// that is gone; pages of other contacts hear nothing.
func TestContactWatchersHearOutcomes(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	watcher, other := h.mustDial(h.login("dpo2")), h.mustDial(h.login("admin"))
	watch := func(c interface{ WriteJSON(any) error }, ids ...string) {
		if err := c.WriteJSON(clientMsg{Type: "watch_contacts", ContactIDs: ids}); err != nil {
			t.Fatal(err)
		}
	}
	watch(watcher, contactB, "not a contact ID")
	watch(other, contactA)
	time.Sleep(200 * time.Millisecond) // the hub registers the watches

	now := time.Now().UTC()
	req := schemas.DeletionRequested{ContactIDs: []string{contactB}, RequestedBy: "dpo", Source: schemas.SourceUI}
	h.publish(h.topics.Outcomes(), &schemas.DeletionCompleted{
		RequestID: requestByDPO, ContactIDs: req.ContactIDs, RequestedBy: "dpo", RequestedAt: now, CompletedAt: now,
		Source: schemas.SourceUI, Status: schemas.StatusSucceeded, Channels: []schemas.ChannelOutcome{},
		AuditSeq: 3, AuditHash: strings.Repeat("ab", 32), RequestDigest: req.ContentDigest(),
	}, requestByDPO)

	_ = watcher.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, raw, err := watcher.ReadMessage()
	if err != nil {
		t.Fatalf("the record's watcher heard nothing: %v", err)
	}
	var m contactMsg
	if err := json.Unmarshal(raw, &m); err != nil || m.Type != "contact" || m.ContactID != contactB ||
		m.RequestID != requestByDPO || m.Status != schemas.StatusSucceeded {
		t.Fatalf("message %s (%v)", raw, err)
	}
	if m, ok := read(t, other, time.Second); ok {
		t.Errorf("a page of another contact heard %+v", m)
	}
}
