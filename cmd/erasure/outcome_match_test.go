package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
)

// waitOutcomes matches outcomes by request ID and content: the outcome of
// the request an ID belongs to is not the outcome of another submission
// that reused the ID, and vice versa.
func TestWaitOutcomesMatchesContent(t *testing.T) {
	const rid = "019ac4a0-1111-7000-8000-000000000001"
	const c1, c2 = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b", "7f1c2b3a-9e8d-4c6b-a5f4-e3d2c1b0a987"
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	req := func(c string) schemas.DeletionRequested {
		return schemas.DeletionRequested{RequestID: rid, ContactIDs: []string{c}, RequestedBy: "ops", RequestedAt: at,
			Source: schemas.SourceCLI, Channels: schemas.AllChannels}
	}
	outcome := func(r schemas.DeletionRequested, st schemas.Status, digest bool) *message.Message {
		out := &schemas.DeletionCompleted{RequestID: rid, ContactIDs: r.ContactIDs, RequestedBy: r.RequestedBy, RequestedAt: at,
			CompletedAt: at, Source: r.Source, Status: st, Channels: []schemas.ChannelOutcome{}, AuditSeq: 1,
			AuditHash: strings.Repeat("ab", 32)}
		if digest {
			out.RequestDigest = r.ContentDigest()
		}
		if st == schemas.StatusRefused {
			out.ErrorCode = schemas.ErrCodeRequestIDConflict
		}
		m, err := producers.NewMessage(out, rid)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	tests := []struct {
		name     string
		waitFor  schemas.DeletionRequested
		outcomes []*message.Message
		want     string
		exit     int
	}{
		{"the original's success is not the reuse's", req(c2),
			[]*message.Message{outcome(req(c1), schemas.StatusSucceeded, true), outcome(req(c2), schemas.StatusRefused, true)},
			rid + " refused " + c2 + " (request_id_conflict)", 1},
		{"the reuse's refusal is not the original's", req(c1),
			[]*message.Message{outcome(req(c2), schemas.StatusRefused, true), outcome(req(c1), schemas.StatusSucceeded, true)},
			rid + " succeeded " + c1, 0},
		{"outcomes without a digest match by contacts", req(c2),
			[]*message.Message{outcome(req(c1), schemas.StatusSucceeded, false), outcome(req(c2), schemas.StatusFailed, false)},
			rid + " failed " + c2, 1},
		{"not found is said so, and is no failure", req(c1),
			[]*message.Message{outcome(req(c1), schemas.StatusNotFound, true)},
			rid + " not found " + c1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan *message.Message, len(tc.outcomes))
			for _, m := range tc.outcomes {
				ch <- m
			}
			var stdout, stderr bytes.Buffer
			err := waitOutcomes(t.Context(), []schemas.DeletionRequested{tc.waitFor}, ch, 5*time.Second, false,
				schemas.DefaultContactIDRule, nil, &stdout, &stderr)
			exit := 0
			var ee exitError
			if errors.As(err, &ee) {
				exit = ee.code
			} else if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if len(lines) != 1 || lines[0] != tc.want || exit != tc.exit {
				t.Fatalf("printed %q, exit %d; want %q, exit %d", stdout.String(), exit, tc.want, tc.exit)
			}
		})
	}
}
