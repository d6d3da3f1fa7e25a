package schemas

import (
	"errors"
	"strings"
	"testing"
)

// The deployment's contact ID rule applies to every contact an event names:
// the held contacts of a result or an outcome, and the contact of a hold.
func TestDecodeAppliesTheRuleToHeldContactsAndHolds(t *testing.T) {
	strict, err := NewContactIDRule(`^[0-9a-f]{8}-0000-4000-8000-[0-9a-f]{12}$`)
	if err != nil {
		t.Fatal(err)
	}
	ok := "0a1b2c3d-0000-4000-8000-00000000000a"
	outcome := goldenEvents()["deletion-completed"].(*DeletionCompleted)
	hold := goldenEvents()["hold-requested"].(*HoldRequested)
	for name, c := range map[string]struct {
		ev  Event
		out Event
	}{
		"outcome": {&DeletionCompleted{RequestID: outcome.RequestID, ContactIDs: []string{ok}, RequestedBy: "dpo", RequestedAt: at,
			CompletedAt: at, Source: SourceUI, Status: StatusSucceeded, AuditSeq: 1, AuditHash: outcome.AuditHash,
			Channels: []ChannelOutcome{}, HeldContactIDs: []string{cid1}}, &DeletionCompleted{}},
		"result": {&ChannelCompleted{RequestID: reqID, Channel: ChannelVoice, Status: StatusSucceeded, CompletedAt: at,
			HeldContactIDs: []string{cid1}}, &ChannelCompleted{}},
		"hold": {hold, &HoldRequested{}},
	} {
		raw, err := Encode(c.ev)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := Decode(raw, DefaultContactIDRule, c.out); err != nil {
			t.Errorf("%s under the default rule: %v", name, err)
		}
		err = Decode(raw, strict, c.out)
		if !errors.Is(err, ErrInvalidEvent) || strings.Contains(err.Error(), cid1) {
			t.Errorf("%s with a contact outside the rule: %v", name, err)
		}
	}
}

// A hold's reason is a code and its ticket is no phone number.
func TestHoldRequestedRefusesFreeTextAndPhoneNumbers(t *testing.T) {
	for _, mutate := range []func(*HoldRequested){
		func(h *HoldRequested) { h.ReasonCode = "Jane Doe asked" },
		func(h *HoldRequested) { h.Ticket = "07700900304" },
		func(h *HoldRequested) { h.Action = "release" },
		func(h *HoldRequested) { h.ContactID = "*" },
	} {
		h := *goldenEvents()["hold-requested"].(*HoldRequested)
		mutate(&h)
		if _, err := Encode(&h); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%+v: Encode err = %v, want an invalid event", h, err)
		}
	}
}
