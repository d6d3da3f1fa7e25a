package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// TestLedgerWriters checks a ledger written by several processes at once, as
// it is when more than one aggregator runs: open returns two handles of their
// own (connections, locks, caches) on one new, empty ledger. Whatever the two
// race on, a request keeps one decision entry and one outcome, a late result
// one late entry, a reused ID one refused entry per content, state written by
// one is not lost to the other, and the chain has no fork.
func TestLedgerWriters(t *testing.T, open func(t *testing.T) (stores.Ledger, stores.Ledger)) {
	a, b := open(t)
	handles := []stores.Ledger{a, b}
	const n = 8
	var reqs []schemas.DeletionRequested
	for i := range n {
		reqs = append(reqs, Request(LedgerBase.Add(time.Duration(i)*time.Second), NewUUID()))
	}

	// race runs fn for every request on both handles at once and fails the
	// test on any error.
	race := func(what string, fn func(l stores.Ledger, h int, r schemas.DeletionRequested) error) {
		t.Helper()
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for _, r := range reqs {
			for h, l := range handles {
				wg.Go(func() {
					<-start
					if err := fn(l, h, r); err != nil {
						errs <- fmt.Errorf("%s on handle %d: %w", what, h, err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}

	race("PutRequest", func(l stores.Ledger, _ int, r schemas.DeletionRequested) error {
		return l.PutRequest(t.Context(), r, LedgerBase.Add(time.Hour))
	})

	// Each handle decides differently (its own completion time), so a second
	// entry could not pass for the first; one handle also marks phase 2 while
	// the other completes, which must not lose the outcome.
	var mu sync.Mutex
	stored := map[string][]schemas.DeletionCompleted{}
	created := map[string]int{}
	race("Complete", func(l stores.Ledger, h int, r schemas.DeletionRequested) error {
		if h == 1 {
			if err := l.MarkFinalizing(t.Context(), r.RequestID); err != nil {
				return err
			}
		}
		out, c, err := l.Complete(t.Context(), Outcome(r, schemas.StatusSucceeded, r.RequestedAt.Add(time.Duration(h+1)*time.Second)), "Delete Contact")
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		stored[r.RequestID] = append(stored[r.RequestID], out)
		if c {
			created[r.RequestID]++
		}
		return nil
	})
	for _, r := range reqs {
		outs := stored[r.RequestID]
		if created[r.RequestID] != 1 || len(outs) != 2 || outs[0].AuditSeq != outs[1].AuditSeq ||
			outs[0].AuditHash != outs[1].AuditHash || !outs[0].CompletedAt.Equal(outs[1].CompletedAt) {
			var seqs []int64
			for _, o := range outs {
				seqs = append(seqs, o.AuditSeq)
			}
			t.Fatalf("request %s: created %d times, Complete returned %d outcomes with audit seqs %v; want one created, both the same",
				r.RequestID, created[r.RequestID], len(outs), seqs)
		}
	}

	race("MarkPublished and Amend", func(l stores.Ledger, h int, r schemas.DeletionRequested) error {
		if h == 0 {
			if err := l.MarkPublished(t.Context(), r.RequestID); err != nil {
				return err
			}
		}
		late := Result(r.RequestID, schemas.ChannelContactSearch, schemas.StatusSucceeded, r.RequestedAt.Add(time.Minute))
		if err := l.PutResult(t.Context(), late); err != nil {
			return err
		}
		_, _, err := l.Amend(t.Context(), late)
		return err
	})
	race("Refuse", func(l stores.Ledger, _ int, r schemas.DeletionRequested) error {
		reuse := r
		reuse.ContactIDs = []string{"00000000-0000-4000-8000-000000000001"}
		out := Outcome(reuse, schemas.StatusRefused, r.RequestedAt.Add(2*time.Minute))
		out.ErrorCode, out.Channels = schemas.ErrCodeRequestIDConflict, []schemas.ChannelOutcome{}
		_, _, err := l.Refuse(t.Context(), out, "Delete Contact")
		return err
	})

	for _, l := range handles {
		got, err := l.VerifyChain(t.Context())
		if err != nil || got != 3*n {
			t.Fatalf("VerifyChain = %d, %v; want %d entries and no break", got, err, 3*n)
		}
	}
	for _, r := range reqs {
		var decision, late, refused int
		var decisionSeq int64
		for _, e := range MustAudit(t, b, stores.AuditFilter{RequestID: r.RequestID}) {
			switch {
			case e.Amends > 0:
				late++
			case e.Status == schemas.StatusRefused:
				refused++
			default:
				decision++
				decisionSeq = e.Seq
			}
		}
		if decision != 1 || late != 1 || refused != 1 {
			t.Errorf("request %s: %d decision, %d late, %d refused entries; want one of each", r.RequestID, decision, late, refused)
		}
		for h, l := range handles {
			st := MustState(t, l, r.RequestID)
			if st.Outcome == nil || st.Outcome.AuditSeq != decisionSeq || !st.Published || !st.Finalizing {
				t.Errorf("request %s on handle %d: outcome %+v, published %v, finalizing %v; want the decision (seq %d), published and finalizing",
					r.RequestID, h, st.Outcome, st.Published, st.Finalizing, decisionSeq)
			}
		}
	}
}
