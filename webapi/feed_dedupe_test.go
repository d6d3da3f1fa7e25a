package webapi

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
)

// An outcome published twice (an aggregator stopped between publishing it
// and recording that) reaches the browser once; another audit entry of the
// same request is not taken for a copy.
func TestFeedDropsCopiesOfAnOutcome(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	owner := h.login("dpo")
	ws := h.mustDial(owner)
	rid := h.submit(owner, contactA)
	publish := func(seq int64, status schemas.Status) {
		now := time.Now().UTC()
		h.publish(h.topics.Outcomes(), &schemas.DeletionCompleted{
			RequestID: rid, ContactIDs: []string{contactA}, RequestedBy: "dpo", RequestedAt: now, CompletedAt: now,
			Source: schemas.SourceUI, Status: status, AuditSeq: seq, AuditHash: strings.Repeat("ab", 32),
			Channels: []schemas.ChannelOutcome{{Channel: schemas.ChannelVoice, Status: status}},
		}, rid)
	}
	publish(7, schemas.StatusSucceeded)
	publish(7, schemas.StatusSucceeded)
	publish(8, schemas.StatusFailed)
	var got []string
	for {
		m, ok := read(t, ws, 500*time.Millisecond)
		if !ok {
			break
		}
		got = append(got, m.Type+" "+m.Status)
	}
	// The harness may deliver them in any order; what counts is one of each.
	slices.Sort(got)
	if want := []string{"outcome failed", "outcome succeeded"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("browser received %q, want %q", got, want)
	}
}

func TestRecentKeysForgetsTheOldest(t *testing.T) {
	r := newRecentKeys(2)
	for _, step := range []struct {
		key string
		new bool
	}{{"a", true}, {"a", false}, {"b", true}, {"c", true}, {"b", false}, {"a", true}, {"c", false}} {
		if got := r.add(step.key); got != step.new {
			t.Fatalf("add(%q) = %v, want %v", step.key, got, step.new)
		}
	}
}
