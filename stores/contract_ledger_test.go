package stores

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
)

// runLedgerContract checks a Ledger implementation through the interface
// only. newLedger must return an empty ledger of its own for every call:
// several subtests look at the whole audit log.
func runLedgerContract(t *testing.T, newLedger func(t *testing.T) Ledger) {
	t.Run("PutRequestTwiceIsHarmless", func(t *testing.T) {
		l := newLedger(t)
		r := testRequest(ledgerBase, newUUID(), newUUID())
		deadline := ledgerBase.Add(30 * time.Second)
		mustPutRequest(t, l, r, deadline)
		mustPutRequest(t, l, r, deadline.Add(time.Hour)) // a redelivery changes nothing
		st := mustState(t, l, r.RequestID)
		if st.Request.RequestID != r.RequestID || !slices.Equal(st.Request.ContactIDs, r.ContactIDs) ||
			st.Request.RequestedBy != r.RequestedBy || !slices.Equal(st.Request.Channels, r.Channels) ||
			!st.Request.RequestedAt.Equal(r.RequestedAt) {
			t.Errorf("State.Request = %+v, want %+v", st.Request, r)
		}
		if !st.Deadline.Equal(deadline) || st.Finalizing || st.Outcome != nil || st.Published || len(st.Results) != 0 {
			t.Errorf("State = %+v, want the first deadline and nothing else", st)
		}
	})

	t.Run("StateOfUnknownRequestIsNotFound", func(t *testing.T) {
		l := newLedger(t)
		if _, err := l.State(t.Context(), newUUID()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("State: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("ResultsUpsertOnRequestAndChannel", func(t *testing.T) {
		l := newLedger(t)
		r := testRequest(ledgerBase, newUUID())
		// A result ahead of its request is kept and joined later.
		mustPutResult(t, l, testResult(r.RequestID, schemas.ChannelVoice, schemas.StatusFailed, ledgerBase.Add(time.Second)))
		mustPutRequest(t, l, r, ledgerBase.Add(time.Minute))
		st := mustState(t, l, r.RequestID)
		if got := st.Results[schemas.ChannelVoice]; got.Status != schemas.StatusFailed || len(st.Results) != 1 {
			t.Fatalf("Results = %+v, want the early voice result", st.Results)
		}
		later := testResult(r.RequestID, schemas.ChannelVoice, schemas.StatusSucceeded, ledgerBase.Add(2*time.Second))
		mustPutResult(t, l, later)
		mustPutResult(t, l, later) // redelivered
		mustPutResult(t, l, testResult(r.RequestID, schemas.ChannelMessaging, schemas.StatusSucceeded, ledgerBase.Add(3*time.Second)))
		st = mustState(t, l, r.RequestID)
		if len(st.Results) != 2 {
			t.Fatalf("Results = %+v, want voice and messaging", st.Results)
		}
		got := st.Results[schemas.ChannelVoice]
		if got.Status != schemas.StatusSucceeded || !got.CompletedAt.Equal(later.CompletedAt) ||
			!slices.Equal(got.Artefacts, later.Artefacts) {
			t.Fatalf("voice result = %+v, want the later one %+v", got, later)
		}
	})

	t.Run("MarkFinalizing", func(t *testing.T) {
		l := newLedger(t)
		r := testRequest(ledgerBase, newUUID())
		mustPutRequest(t, l, r, ledgerBase.Add(time.Minute))
		for range 2 {
			if err := l.MarkFinalizing(t.Context(), r.RequestID); err != nil {
				t.Fatalf("MarkFinalizing: %v", err)
			}
		}
		if st := mustState(t, l, r.RequestID); !st.Finalizing {
			t.Fatal("Finalizing = false after MarkFinalizing")
		}
	})

	t.Run("CompleteWritesOneAuditEntry", func(t *testing.T) {
		l := newLedger(t)
		r := testRequest(ledgerBase, newUUID(), newUUID())
		r.ReplayOf = newUUID()
		mustPutRequest(t, l, r, ledgerBase.Add(time.Minute))
		out := testOutcome(r, schemas.StatusFailed, ledgerBase.Add(5*time.Second))
		out.ErrorCode = schemas.ErrCodeChannelFailed
		stored, created, err := l.Complete(t.Context(), out, "Delete Contact")
		if err != nil || !created {
			t.Fatalf("Complete = created %v, %v; want created", created, err)
		}
		if stored.AuditSeq <= 0 || stored.AuditHash == "" || stored.Status != out.Status || stored.RequestID != r.RequestID {
			t.Fatalf("stored outcome = %+v", stored)
		}
		st := mustState(t, l, r.RequestID)
		if st.Outcome == nil || st.Outcome.AuditSeq != stored.AuditSeq || st.Outcome.AuditHash != stored.AuditHash ||
			st.Outcome.Status != out.Status {
			t.Fatalf("State.Outcome = %+v, want %+v", st.Outcome, stored)
		}

		entries := mustAudit(t, l, AuditFilter{RequestID: r.RequestID})
		if len(entries) != 1 {
			t.Fatalf("audit entries = %d, want 1", len(entries))
		}
		e := entries[0]
		want := AuditEntry{
			Seq: stored.AuditSeq, RequestID: r.RequestID, Setting: AuditSetting, Functionality: "Delete Contact",
			Actor: r.RequestedBy, ContactIDs: r.ContactIDs, Status: schemas.StatusFailed,
			ErrorCode: schemas.ErrCodeChannelFailed, Channels: out.Channels, RequestedAt: r.RequestedAt,
			CompletedAt: out.CompletedAt, ReplayOf: r.ReplayOf, PrevHash: "", Hash: stored.AuditHash,
		}
		if got, w := auditJSON(t, e), auditJSON(t, want); got != w {
			t.Fatalf("audit entry\n got %s\nwant %s", got, w)
		}
		if h, err := AuditHash(e); err != nil || h != e.Hash {
			t.Fatalf("AuditHash(entry) = %s, %v; want the stored hash %s", h, err, e.Hash)
		}

		// A redelivery, even one that disagrees, changes nothing.
		again := out
		again.Status, again.ErrorCode = schemas.StatusSucceeded, ""
		stored2, created, err := l.Complete(t.Context(), again, "Bulk Delete")
		if err != nil || created {
			t.Fatalf("second Complete = created %v, %v; want not created", created, err)
		}
		if stored2.AuditSeq != stored.AuditSeq || stored2.AuditHash != stored.AuditHash || stored2.Status != schemas.StatusFailed {
			t.Fatalf("second Complete returned %+v, want the stored %+v", stored2, stored)
		}
		if n := len(mustAudit(t, l, AuditFilter{})); n != 1 {
			t.Fatalf("audit entries after a second Complete = %d, want 1", n)
		}
	})

	t.Run("ConcurrentCompleteWritesOneAuditEntry", func(t *testing.T) {
		l := newLedger(t)
		r := testRequest(ledgerBase, newUUID())
		mustPutRequest(t, l, r, ledgerBase.Add(time.Minute))
		out := testOutcome(r, schemas.StatusSucceeded, ledgerBase.Add(time.Second))
		type res struct {
			stored  schemas.DeletionCompleted
			created bool
			err     error
		}
		results := make([]res, 8)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() {
				s, c, err := l.Complete(t.Context(), out, "Delete Contact")
				results[i] = res{s, c, err}
			})
		}
		wg.Wait()
		created := 0
		for _, r := range results {
			if r.err != nil {
				t.Fatalf("Complete: %v", r.err)
			}
			if r.created {
				created++
			}
			if r.stored.AuditSeq != results[0].stored.AuditSeq || r.stored.AuditHash != results[0].stored.AuditHash {
				t.Fatalf("Complete calls disagree: %+v vs %+v", r.stored, results[0].stored)
			}
		}
		if created != 1 {
			t.Fatalf("%d calls created the outcome, want exactly 1", created)
		}
		if n := len(mustAudit(t, l, AuditFilter{RequestID: r.RequestID})); n != 1 {
			t.Fatalf("audit entries = %d, want 1", n)
		}
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 1 {
			t.Fatalf("VerifyChain = %d, %v; want 1, nil", n, err)
		}
	})

	t.Run("MarkPublished", func(t *testing.T) {
		l := newLedger(t)
		r := testRequest(ledgerBase, newUUID())
		mustPutRequest(t, l, r, ledgerBase.Add(time.Minute))
		if _, _, err := l.Complete(t.Context(), testOutcome(r, schemas.StatusSucceeded, ledgerBase.Add(time.Second)), "Delete Contact"); err != nil {
			t.Fatal(err)
		}
		if mustState(t, l, r.RequestID).Published {
			t.Fatal("Published before MarkPublished")
		}
		for range 2 {
			if err := l.MarkPublished(t.Context(), r.RequestID); err != nil {
				t.Fatalf("MarkPublished: %v", err)
			}
		}
		if !mustState(t, l, r.RequestID).Published {
			t.Fatal("Published = false after MarkPublished")
		}
	})

	t.Run("HashChainLinksAndVerifies", func(t *testing.T) {
		l := newLedger(t)
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 0 {
			t.Fatalf("VerifyChain of an empty log = %d, %v; want 0, nil", n, err)
		}
		for i := range 5 {
			r := testRequest(ledgerBase.Add(time.Duration(i)*time.Minute), newUUID())
			mustPutRequest(t, l, r, ledgerBase.Add(time.Hour))
			if _, _, err := l.Complete(t.Context(), testOutcome(r, schemas.StatusSucceeded, r.RequestedAt.Add(time.Second)), "Bulk Delete"); err != nil {
				t.Fatal(err)
			}
		}
		entries := mustAudit(t, l, AuditFilter{})
		if len(entries) != 5 {
			t.Fatalf("audit entries = %d, want 5", len(entries))
		}
		for i, e := range entries { // newest first
			if i+1 < len(entries) {
				if e.PrevHash != entries[i+1].Hash || e.Seq <= entries[i+1].Seq {
					t.Errorf("entry seq %d does not follow seq %d", e.Seq, entries[i+1].Seq)
				}
			} else if e.PrevHash != "" {
				t.Errorf("first entry prev_hash = %q, want empty", e.PrevHash)
			}
			if h, err := AuditHash(e); err != nil || h != e.Hash {
				t.Errorf("entry seq %d: hash %s, recomputed %s (%v)", e.Seq, e.Hash, h, err)
			}
		}
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 5 {
			t.Fatalf("VerifyChain = %d, %v; want 5, nil", n, err)
		}
	})

	t.Run("Overdue", func(t *testing.T) {
		l := newLedger(t)
		now := ledgerBase.Add(time.Hour)
		late1 := testRequest(ledgerBase, newUUID())
		late2 := testRequest(ledgerBase, newUUID())
		onTime := testRequest(ledgerBase, newUUID())
		done := testRequest(ledgerBase, newUUID())
		mustPutRequest(t, l, late1, now.Add(-2*time.Minute))
		mustPutRequest(t, l, late2, now.Add(-time.Minute))
		mustPutRequest(t, l, onTime, now.Add(time.Minute))
		mustPutRequest(t, l, done, now.Add(-3*time.Minute))
		if _, _, err := l.Complete(t.Context(), testOutcome(done, schemas.StatusSucceeded, now), "Delete Contact"); err != nil {
			t.Fatal(err)
		}
		ids, err := l.Overdue(t.Context(), now, 10)
		slices.Sort(ids)
		want := []string{late1.RequestID, late2.RequestID}
		slices.Sort(want)
		if err != nil || !slices.Equal(ids, want) {
			t.Fatalf("Overdue = %q, %v; want %q", ids, err, want)
		}
		if ids, err := l.Overdue(t.Context(), now, 1); err != nil || len(ids) != 1 {
			t.Fatalf("Overdue with limit 1 = %q, %v; want one ID", ids, err)
		}
		if ids, err := l.Overdue(t.Context(), ledgerBase, 10); err != nil || len(ids) != 0 {
			t.Fatalf("Overdue before any deadline = %q, %v; want none", ids, err)
		}
	})

	t.Run("ByContact", func(t *testing.T) {
		l := newLedger(t)
		contact := newUUID()
		var reqs []schemas.DeletionRequested
		for i := range 3 {
			r := testRequest(ledgerBase.Add(time.Duration(i)*time.Minute), contact, newUUID())
			mustPutRequest(t, l, r, ledgerBase.Add(time.Hour))
			reqs = append(reqs, r)
		}
		mustPutRequest(t, l, testRequest(ledgerBase.Add(time.Hour), newUUID()), ledgerBase.Add(2*time.Hour))
		if _, _, err := l.Complete(t.Context(), testOutcome(reqs[1], schemas.StatusSucceeded, ledgerBase.Add(90*time.Second)), "Delete Contact"); err != nil {
			t.Fatal(err)
		}
		sts, err := l.ByContact(t.Context(), contact, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := stateIDs(sts), []string{reqs[2].RequestID, reqs[1].RequestID, reqs[0].RequestID}; !slices.Equal(got, want) {
			t.Fatalf("ByContact = %q, want newest first %q", got, want)
		}
		if sts[1].Outcome == nil || sts[0].Outcome != nil {
			t.Fatalf("ByContact states: outcome on %v / %v, want only the completed request", sts[1].Outcome, sts[0].Outcome)
		}
		sts, err = l.ByContact(t.Context(), contact, 2)
		if got, want := stateIDs(sts), []string{reqs[2].RequestID, reqs[1].RequestID}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("ByContact limit 2 = %q, %v; want %q", got, err, want)
		}
		for _, c := range []string{newUUID(), contact[:len(contact)-1], "%", "*"} {
			if sts, err := l.ByContact(t.Context(), c, 10); err != nil || len(sts) != 0 {
				t.Fatalf("ByContact(%q) = %d states, %v; want none", c, len(sts), err)
			}
		}
	})

	t.Run("AuditFilters", func(t *testing.T) { testAuditFilters(t, newLedger(t)) })

	t.Run("AuditDefaultLimit", func(t *testing.T) {
		l := newLedger(t)
		for i := range AuditDefaultLimit + 5 {
			r := testRequest(ledgerBase.Add(time.Duration(i)*time.Second), newUUID())
			mustPutRequest(t, l, r, ledgerBase.Add(time.Hour))
			if _, _, err := l.Complete(t.Context(), testOutcome(r, schemas.StatusSucceeded, r.RequestedAt), "Bulk Delete"); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(mustAudit(t, l, AuditFilter{})); n != AuditDefaultLimit {
			t.Errorf("Audit with no limit = %d entries, want %d", n, AuditDefaultLimit)
		}
		if n := len(mustAudit(t, l, AuditFilter{Limit: AuditMaxLimit + 1})); n != AuditDefaultLimit+5 {
			t.Errorf("Audit with a large limit = %d entries, want %d", n, AuditDefaultLimit+5)
		}
	})
}

func testAuditFilters(t *testing.T, l Ledger) {
	c1, c2, c3 := newUUID(), newUUID(), newUUID()
	type spec struct {
		actor, functionality string
		contacts             []string
	}
	specs := []spec{
		{"alice", "Delete Contact", []string{c1}},
		{"bob", "Bulk Delete", []string{c1, c2}},
		{"alice", "Bulk Delete", []string{c3}},
		{"alice", "Replay", []string{c1}},
	}
	var reqs []schemas.DeletionRequested
	var done []time.Time
	for i, s := range specs {
		r := testRequest(ledgerBase.Add(time.Duration(i)*time.Hour), s.contacts...)
		r.RequestedBy = s.actor
		mustPutRequest(t, l, r, r.RequestedAt.Add(time.Minute))
		at := r.RequestedAt.Add(10 * time.Second)
		if _, _, err := l.Complete(t.Context(), testOutcome(r, schemas.StatusSucceeded, at), s.functionality); err != nil {
			t.Fatal(err)
		}
		reqs, done = append(reqs, r), append(done, at)
	}
	id := func(i int) string { return reqs[i].RequestID }
	tests := []struct {
		name string
		f    AuditFilter
		want []int // indexes into reqs, newest first
	}{
		{"all", AuditFilter{}, []int{3, 2, 1, 0}},
		{"actor", AuditFilter{Actor: "alice"}, []int{3, 2, 0}},
		{"actor is exact", AuditFilter{Actor: "ali"}, nil},
		{"actor is not a pattern", AuditFilter{Actor: "%"}, nil},
		{"functionality", AuditFilter{Functionality: "Bulk Delete"}, []int{2, 1}},
		{"contact", AuditFilter{ContactID: c1}, []int{3, 1, 0}},
		{"second contact of a request", AuditFilter{ContactID: c2}, []int{1}},
		{"unknown contact", AuditFilter{ContactID: newUUID()}, nil},
		{"request", AuditFilter{RequestID: id(2)}, []int{2}},
		{"from", AuditFilter{From: done[1]}, []int{3, 2, 1}},
		{"to", AuditFilter{To: done[1]}, []int{1, 0}},
		{"from and to", AuditFilter{From: done[1].Add(time.Second), To: done[3].Add(-time.Second)}, []int{2}},
		{"actor and contact", AuditFilter{Actor: "alice", ContactID: c1}, []int{3, 0}},
		{"limit", AuditFilter{Limit: 2}, []int{3, 2}},
		{"offset and limit", AuditFilter{Offset: 1, Limit: 2}, []int{2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, i := range tc.want {
				want = append(want, id(i))
			}
			var got []string
			for _, e := range mustAudit(t, l, tc.f) {
				got = append(got, e.RequestID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("Audit(%+v) = %q, want %q", tc.f, got, want)
			}
		})
	}
}

var ledgerBase = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

func testRequest(at time.Time, contacts ...string) schemas.DeletionRequested {
	return schemas.DeletionRequested{
		Type:          schemas.TypeDeletionRequested,
		SchemaVersion: schemas.Version,
		RequestID:     newUUID(),
		ContactIDs:    contacts,
		RequestedBy:   "dpo@example.com",
		RequestedAt:   at,
		Source:        schemas.SourceUI,
		Channels:      []schemas.Channel{schemas.ChannelVoice, schemas.ChannelMessaging, schemas.ChannelContactSearch},
		ReasonCode:    "gdpr-art17",
	}
}

func testResult(requestID string, ch schemas.Channel, status schemas.Status, at time.Time) schemas.ChannelCompleted {
	return schemas.ChannelCompleted{
		Type:          schemas.TypeChannelCompleted,
		SchemaVersion: schemas.Version,
		RequestID:     requestID,
		Channel:       ch,
		Status:        status,
		Artefacts:     []schemas.ArtefactCount{{Artefact: "call_recordings", Before: 2, Deleted: 2, After: 0}},
		CompletedAt:   at,
	}
}

func testOutcome(r schemas.DeletionRequested, status schemas.Status, at time.Time) schemas.DeletionCompleted {
	out := schemas.DeletionCompleted{
		Type:          schemas.TypeDeletionCompleted,
		SchemaVersion: schemas.Version,
		RequestID:     r.RequestID,
		ContactIDs:    r.ContactIDs,
		RequestedBy:   r.RequestedBy,
		RequestedAt:   r.RequestedAt,
		CompletedAt:   at,
		Source:        r.Source,
		Status:        status,
		ReplayOf:      r.ReplayOf,
	}
	for _, ch := range r.Channels {
		out.Channels = append(out.Channels, schemas.ChannelOutcome{
			Channel:   ch,
			Status:    status,
			Artefacts: []schemas.ArtefactCount{{Artefact: string(ch) + "_items", Before: 1, Deleted: 1}},
		})
	}
	return out
}

func mustPutRequest(t *testing.T, l Ledger, r schemas.DeletionRequested, deadline time.Time) {
	t.Helper()
	if err := l.PutRequest(t.Context(), r, deadline); err != nil {
		t.Fatalf("PutRequest: %v", err)
	}
}

func mustPutResult(t *testing.T, l Ledger, r schemas.ChannelCompleted) {
	t.Helper()
	if err := l.PutResult(t.Context(), r); err != nil {
		t.Fatalf("PutResult: %v", err)
	}
}

func mustState(t *testing.T, l Ledger, id string) RequestState {
	t.Helper()
	st, err := l.State(t.Context(), id)
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	return st
}

func mustAudit(t *testing.T, l Ledger, f AuditFilter) []AuditEntry {
	t.Helper()
	entries, err := l.Audit(t.Context(), f)
	if err != nil {
		t.Fatalf("Audit(%+v): %v", f, err)
	}
	return entries
}

// auditJSON renders an entry for comparison, with times in UTC so that
// equal instants compare equal.
func auditJSON(t *testing.T, e AuditEntry) string {
	t.Helper()
	e.RequestedAt, e.CompletedAt = e.RequestedAt.UTC(), e.CompletedAt.UTC()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func stateIDs(sts []RequestState) []string {
	var ids []string
	for _, st := range sts {
		ids = append(ids, st.Request.RequestID)
	}
	return ids
}
