package producers

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/schemas"
)

type recorder struct{ msgs []*message.Message }

func (r *recorder) Publish(_ string, msgs ...*message.Message) error {
	r.msgs = append(r.msgs, msgs...)
	return nil
}
func (r *recorder) Close() error { return nil }

const good = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"

func newRequester(pub message.Publisher) *Requester {
	return &Requester{Publisher: pub, Topics: schemas.Topics{Prefix: "t."}, Channels: schemas.AllChannels,
		Rule: schemas.DefaultContactIDRule, Now: func() time.Time { return time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) }}
}

func TestSubmitRefusesBadInputAndPublishesNothing(t *testing.T) {
	many := make([]string, schemas.MaxContactsPerRequest+1)
	for i := range many {
		many[i] = good
	}
	cases := map[string]Request{
		"empty":          {RequestedBy: "dpo", Source: schemas.SourceUI},
		"wildcard":       {ContactIDs: []string{good, "*"}, RequestedBy: "dpo", Source: schemas.SourceUI},
		"like":           {ContactIDs: []string{"%"}, RequestedBy: "dpo", Source: schemas.SourceUI},
		"blank":          {ContactIDs: []string{""}, RequestedBy: "dpo", Source: schemas.SourceUI},
		"too many":       {ContactIDs: many, RequestedBy: "dpo", Source: schemas.SourceUI},
		"no actor":       {ContactIDs: []string{good}, Source: schemas.SourceUI},
		"actor is prose": {ContactIDs: []string{good}, RequestedBy: "Jane Doe (customer)", Source: schemas.SourceUI},
		"free reason":    {ContactIDs: []string{good}, RequestedBy: "dpo", Source: schemas.SourceUI, ReasonCode: "asked by phone +44 7700"},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			if _, err := newRequester(rec).Submit(t.Context(), r); err == nil {
				t.Fatal("accepted")
			}
			if len(rec.msgs) != 0 {
				t.Fatalf("published %d messages for bad input", len(rec.msgs))
			}
		})
	}
}

func TestInvalidContactDoesNotEchoInput(t *testing.T) {
	_, err := newRequester(&recorder{}).Build(Request{ContactIDs: []string{good, "secret-phone-+447700"}, RequestedBy: "dpo", Source: schemas.SourceUI})
	var se *schemas.SubmissionError
	if !errors.As(err, &se) || se.Code != schemas.CodeInvalidContactID || se.Position != 2 || !errors.Is(err, schemas.ErrInvalidContactID) {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error repeats input: %v", err)
	}
}

func TestSubmitKeysByRequestIDAndDeduplicates(t *testing.T) {
	rec := &recorder{}
	ev, err := newRequester(rec).Submit(t.Context(), Request{ContactIDs: []string{good, good}, RequestedBy: "dpo", Source: schemas.SourceUI})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.ContactIDs) != 1 {
		t.Errorf("duplicates kept: %v", ev.ContactIDs)
	}
	if len(rec.msgs) != 1 || rec.msgs[0].Metadata.Get(schemas.MetadataPartitionKey) != ev.RequestID {
		t.Fatalf("message not keyed by request ID")
	}
	var back schemas.DeletionRequested
	if err := schemas.Decode(rec.msgs[0].Payload, schemas.DefaultContactIDRule, &back); err != nil {
		t.Fatal(err)
	}
	if back.RequestID != ev.RequestID || back.Channels[len(back.Channels)-1] != schemas.ChannelContactSearch {
		t.Errorf("round trip: %+v", back)
	}
	// A resubmission keeps its ID, so the aggregator can recognise it.
	again, err := newRequester(rec).Build(Request{RequestID: ev.RequestID, ContactIDs: []string{good}, RequestedBy: "dpo", Source: schemas.SourceUI})
	if err != nil || again.RequestID != ev.RequestID {
		t.Fatalf("resubmission: %v %s", err, again.RequestID)
	}
}

// TestBuildRefusesWithSubmissionError: every refusal of user input comes
// from schemas.ValidateSubmission, before an event is encoded, and keeps the
// sentinels callers test for.
func TestBuildRefusesWithSubmissionError(t *testing.T) {
	for _, tc := range []struct {
		r    Request
		code string
		is   error
	}{
		{Request{RequestedBy: "dpo", Source: schemas.SourceUI}, schemas.CodeNoContacts, ErrNoContacts},
		{Request{ContactIDs: []string{good, "*"}, RequestedBy: "dpo", Source: schemas.SourceUI}, schemas.CodeInvalidContactID, schemas.ErrInvalidContactID},
		{Request{ContactIDs: []string{good}, RequestedBy: "Jane Doe", Source: schemas.SourceUI}, schemas.CodeInvalidRequestedBy, schemas.ErrInvalidEvent},
		{Request{ContactIDs: []string{good}, RequestedBy: "dpo", Source: schemas.SourceUI, ReasonCode: "by phone"}, schemas.CodeInvalidReasonCode, schemas.ErrInvalidEvent},
		{Request{ContactIDs: []string{good}, RequestedBy: "dpo"}, schemas.CodeInvalidSource, schemas.ErrInvalidEvent},
		{Request{ContactIDs: []string{good}, RequestedBy: "dpo", Source: schemas.SourceReplay, ReplayOf: "last week"}, schemas.CodeInvalidReplayOf, schemas.ErrInvalidEvent},
		{Request{ContactIDs: []string{good}, RequestedBy: "dpo", Source: schemas.SourceCLI, Deadline: 25 * time.Hour}, schemas.CodeInvalidDeadline, schemas.ErrInvalidEvent},
	} {
		_, err := newRequester(&recorder{}).Build(tc.r)
		var se *schemas.SubmissionError
		if !errors.As(err, &se) || se.Code != tc.code || !errors.Is(err, tc.is) {
			t.Errorf("%+v: err %v, want %s", tc.r, err, tc.code)
		}
	}
	ev, err := newRequester(&recorder{}).Build(Request{ContactIDs: []string{good}, RequestedBy: "dpo", Source: schemas.SourceCLI, Deadline: 1500 * time.Millisecond})
	if err != nil || ev.DeadlineSeconds != 2 {
		t.Fatalf("deadline of 1.5s: %d %v", ev.DeadlineSeconds, err)
	}
}
