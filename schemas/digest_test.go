package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// The digest is documented so that an external system can reproduce it:
// this vector is the golden request's, computed from the documented form
// with sha256sum.
func TestContentDigestVector(t *testing.T) {
	r := goldenEvents()["deletion-requested"].(*DeletionRequested)
	const want = "d7ad9cbbddf4fbe696cf0b6352c94370f41349f90fd326ef32c9f505409963ed"
	if got := r.ContentDigest(); got != want {
		t.Fatalf("ContentDigest = %s, want %s", got, want)
	}
}

func TestContentDigest(t *testing.T) {
	base := DeletionRequested{RequestID: reqID, ContactIDs: []string{cid1, cid2}, RequestedBy: "dpo", RequestedAt: at,
		Source: SourceUI, Channels: AllChannels, ReasonCode: "gdpr-art17"}
	d := base.ContentDigest()
	same := map[string]func(r *DeletionRequested){
		"contacts in another order": func(r *DeletionRequested) { r.ContactIDs = []string{cid2, cid1} },
		"a contact repeated":        func(r *DeletionRequested) { r.ContactIDs = []string{cid1, cid2, cid1} },
		"another requested_at":      func(r *DeletionRequested) { r.RequestedAt = at.Add(time.Hour) },
		"other channels":            func(r *DeletionRequested) { r.Channels = []Channel{ChannelContactSearch} },
		"another deadline":          func(r *DeletionRequested) { r.DeadlineSeconds = 90 },
	}
	other := map[string]func(r *DeletionRequested){
		"another contact":   func(r *DeletionRequested) { r.ContactIDs = []string{cid1} },
		"another requester": func(r *DeletionRequested) { r.RequestedBy = "dpo2" },
		"another reason":    func(r *DeletionRequested) { r.ReasonCode = "" },
		"another source":    func(r *DeletionRequested) { r.Source = SourceCLI },
		"a replay":          func(r *DeletionRequested) { r.ReplayOf = reqID },
	}
	for name, f := range same {
		r := base
		r.ContactIDs = append([]string{}, base.ContactIDs...)
		f(&r)
		if got := r.ContentDigest(); got != d {
			t.Errorf("%s: digest changed", name)
		}
	}
	for name, f := range other {
		r := base
		f(&r)
		if got := r.ContentDigest(); got == d {
			t.Errorf("%s: digest unchanged", name)
		}
	}
	if base.ContactIDs[0] != cid1 {
		t.Error("ContentDigest reordered the request's own contact IDs")
	}
}

// Events written before request digests and the new statuses existed still
// decode: the additions are optional.
func TestLegacyEventsDecode(t *testing.T) {
	legacy := map[string]struct {
		raw string
		out Event
	}{
		"channel-completed":  {`{"type":"ChannelCompleted","schema_version":1,"request_id":"019ac4a0-1111-7000-8000-000000000001","channel":"voice","status":"succeeded","artefacts":[{"artefact":"call_recordings","before":2,"deleted":2,"after":0}],"completed_at":"2026-11-27T09:30:00Z"}`, &ChannelCompleted{}},
		"deletion-completed": {`{"type":"DeletionCompleted","schema_version":1,"request_id":"019ac4a0-1111-7000-8000-000000000001","contact_ids":["0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"],"requested_by":"dpo","requested_at":"2026-11-27T09:30:00Z","completed_at":"2026-11-27T09:30:04Z","source":"ui","status":"succeeded","channels":[{"channel":"voice","status":"succeeded","artefacts":[{"artefact":"call_recordings","before":2,"deleted":2,"after":0}]}],"audit_seq":1,"audit_hash":"abababababababababababababababababababababababababababababababab"}`, &DeletionCompleted{}},
		"finalize-requested": {`{"type":"FinalizeRequested","schema_version":1,"request_id":"019ac4a0-1111-7000-8000-000000000001","contact_ids":["0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"],"requested_at":"2026-11-27T09:30:00Z"}`, &FinalizeRequested{}},
	}
	for name, tc := range legacy {
		if err := Decode([]byte(tc.raw), DefaultContactIDRule, tc.out); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNewOutcomeStatusesEncode(t *testing.T) {
	for _, st := range []Status{StatusNotFound, StatusRefused} {
		out := &DeletionCompleted{RequestID: reqID, ContactIDs: []string{cid1}, RequestedBy: "dpo", RequestedAt: at,
			CompletedAt: at, Source: SourceCLI, Status: st, Channels: []ChannelOutcome{}, AuditSeq: 2,
			AuditHash: "abababababababababababababababababababababababababababababababab"}
		if st == StatusRefused {
			out.ErrorCode = ErrCodeRequestIDConflict
		}
		raw, err := Encode(out)
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		if err := Decode(raw, DefaultContactIDRule, &DeletionCompleted{}); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	bad := &DeletionCompleted{RequestID: reqID, ContactIDs: []string{cid1}, RequestedBy: "dpo", RequestedAt: at,
		CompletedAt: at, Source: SourceCLI, Status: StatusSucceeded, AuditSeq: 1,
		AuditHash: "abababababababababababababababababababababababababababababababab", RequestDigest: "not-a-digest"}
	if _, err := Encode(bad); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("a malformed request digest was accepted: %v", err)
	}
}

// A ticket is bound with the rest of the content only when there is one:
// requests without a ticket keep the digest they had before tickets.
func TestContentDigestBindsTicketOnlyWhenPresent(t *testing.T) {
	r := DeletionRequested{ContactIDs: []string{cid1}, RequestedBy: "dpo", Source: SourceUI, ReasonCode: "gdpr-art17"}
	const before = `{"contact_ids":["` + cid1 + `"],"reason_code":"gdpr-art17","replay_of":"","requested_by":"dpo","source":"ui","v":1}`
	if got, want := r.ContentDigest(), sha256Hex(before); got != want {
		t.Errorf("digest without a ticket changed: %s, want %s", got, want)
	}
	withTicket := r
	withTicket.Ticket = "INC-20431"
	const canon = `{"contact_ids":["` + cid1 + `"],"reason_code":"gdpr-art17","replay_of":"","requested_by":"dpo","source":"ui","ticket":"INC-20431","v":1}`
	if got, want := withTicket.ContentDigest(), sha256Hex(canon); got != want {
		t.Errorf("digest with a ticket: %s, want %s", got, want)
	}
	other := withTicket
	other.Ticket = "INC-20432"
	if other.ContentDigest() == withTicket.ContentDigest() {
		t.Error("another ticket gives the same digest")
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
