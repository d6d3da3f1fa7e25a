package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/schemas"
)

// An outcome can be published twice (an aggregator stopped between
// publishing it and recording that): delete --wait prints and counts each
// request once, whether it waits for arguments or runs a file in batches.
func TestDeleteShowsOneOutcomePerRequest(t *testing.T) {
	t.Run("arguments", func(t *testing.T) {
		at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		var reqs []schemas.DeletionRequested
		ch := make(chan *message.Message, 8)
		for i, c := range testIDs(3) {
			r := schemas.DeletionRequested{RequestID: "019ac4a0-1111-7000-8000-00000000000" + string(rune('1'+i)), ContactIDs: []string{c},
				RequestedBy: "ops", RequestedAt: at, Source: schemas.SourceCLI, Channels: schemas.AllChannels}
			reqs = append(reqs, r)
			m := outcomeMessage(t, r, schemas.StatusSucceeded, r.ContentDigest())
			ch <- m
			ch <- m.Copy()
		}
		var stdout, stderr bytes.Buffer
		if err := waitOutcomes(t.Context(), reqs, ch, 5*time.Second, false, schemas.DefaultContactIDRule, nil, &stdout, &stderr); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(stdout.String(), "\n"); n != 3 || !strings.Contains(stderr.String(), "3 requests: 3 succeeded") {
			t.Fatalf("%d lines:\n%s\n%s", n, stdout.String(), stderr.String())
		}
	})
	t.Run("file", func(t *testing.T) {
		var f *fakePipeline
		f = &fakePipeline{t: t, outs: make(chan *message.Message), answer: func(req schemas.DeletionRequested) (schemas.Status, time.Duration, bool) {
			// The copy comes after the original, as a republish does.
			go func() {
				time.Sleep(20 * time.Millisecond)
				f.outs <- outcomeMessage(t, req, schemas.StatusSucceeded, req.ContentDigest())
			}()
			return schemas.StatusSucceeded, 0, true
		}}
		r, in, stdout, _ := newTestRun(t, f, testIDs(40), 10, 2, true, deadlinePolicy{base: 30 * time.Second})
		if err := r.run(t.Context(), in, time.Minute); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(stdout.String(), "\n"); n != 4 || r.sum.Succeeded.Requests != 4 || r.sum.Succeeded.Contacts != 40 {
			t.Fatalf("%d outcome lines, summary %+v:\n%s", n, r.sum, stdout)
		}
	})
}
