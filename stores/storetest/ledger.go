package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// TestLedger checks a Ledger implementation through the interface
// only. newLedger must return an empty ledger of its own for every call:
// several subtests look at the whole audit log.
func TestLedger(t *testing.T, newLedger func(t *testing.T) stores.Ledger) {
	// Every ledger also keeps the sign-in attempt counters.
	t.Run("AttemptLimiter", func(t *testing.T) {
		testAttemptLimiter(t, func(t *testing.T) stores.AttemptLimiter {
			l, ok := newLedger(t).(stores.AttemptLimiter)
			if !ok {
				t.Fatal("the ledger does not implement stores.AttemptLimiter")
			}
			return l
		})
	})
	// And the sign-out-everywhere times every web API replica reads.
	t.Run("SessionRevoker", func(t *testing.T) {
		r, ok := newLedger(t).(stores.SessionRevoker)
		if !ok {
			t.Fatal("the ledger does not implement stores.SessionRevoker")
		}
		user, other := "jane.dpo-"+NewUUID()[:8], "sso:54f51b7d:u-"+NewUUID()[:8]
		if at, err := r.SessionsRevokedAt(t.Context(), user); err != nil || !at.IsZero() {
			t.Fatalf("never revoked: %v, %v; want the zero time", at, err)
		}
		t1 := LedgerBase.Add(time.Hour).Add(123456789 * time.Nanosecond)
		for _, at := range []time.Time{t1, t1.Add(-time.Minute)} { // an earlier one changes nothing
			if err := r.RevokeSessions(t.Context(), user, at); err != nil {
				t.Fatal(err)
			}
		}
		if at, err := r.SessionsRevokedAt(t.Context(), user); err != nil || !at.Equal(t1) {
			t.Fatalf("revoked at %v, %v; want %v", at, err, t1)
		}
		if err := r.RevokeSessions(t.Context(), user, t1.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if at, err := r.SessionsRevokedAt(t.Context(), user); err != nil || !at.Equal(t1.Add(time.Second)) {
			t.Fatalf("after a later revocation: %v, %v", at, err)
		}
		if at, err := r.SessionsRevokedAt(t.Context(), other); err != nil || !at.IsZero() {
			t.Fatalf("another user: %v, %v; want the zero time", at, err)
		}
		if err := r.RevokeSessions(t.Context(), "", t1); !errors.Is(err, stores.ErrPermanent) {
			t.Fatalf("empty user: %v, want a permanent error", err)
		}
	})
	t.Run("PutRequestTwiceIsHarmless", func(t *testing.T) {
		l := newLedger(t)
		r := Request(LedgerBase, NewUUID(), NewUUID())
		deadline := LedgerBase.Add(30 * time.Second)
		MustPutRequest(t, l, r, deadline)
		MustPutRequest(t, l, r, deadline.Add(time.Hour)) // a redelivery changes nothing
		st := MustState(t, l, r.RequestID)
		if st.Request.RequestID != r.RequestID || !slices.Equal(st.Request.ContactIDs, r.ContactIDs) ||
			st.Request.RequestedBy != r.RequestedBy || !slices.Equal(st.Request.Channels, r.Channels) ||
			!st.Request.RequestedAt.Equal(r.RequestedAt) {
			t.Errorf("State.Request = %+v, want %+v", st.Request, r)
		}
		if !st.Deadline.Equal(deadline) || st.Finalizing || st.Outcome != nil || st.Published || len(st.Results) != 0 {
			t.Errorf("State = %+v, want the First deadline and nothing else", st)
		}
	})

	t.Run("StateOfUnknownRequestIsNotFound", func(t *testing.T) {
		l := newLedger(t)
		if _, err := l.State(t.Context(), NewUUID()); !errors.Is(err, stores.ErrNotFound) {
			t.Fatalf("State: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("ResultsUpsertOnRequestAndChannel", func(t *testing.T) {
		l := newLedger(t)
		r := Request(LedgerBase, NewUUID())
		// A result ahead of its request is kept and joined later.
		MustPutResult(t, l, Result(r.RequestID, schemas.ChannelVoice, schemas.StatusFailed, LedgerBase.Add(time.Second)))
		MustPutRequest(t, l, r, LedgerBase.Add(time.Minute))
		st := MustState(t, l, r.RequestID)
		if got := st.Results[schemas.ChannelVoice]; got.Status != schemas.StatusFailed || len(st.Results) != 1 {
			t.Fatalf("Results = %+v, want the early voice result", st.Results)
		}
		later := Result(r.RequestID, schemas.ChannelVoice, schemas.StatusSucceeded, LedgerBase.Add(2*time.Second))
		MustPutResult(t, l, later)
		MustPutResult(t, l, later) // redelivered
		MustPutResult(t, l, Result(r.RequestID, schemas.ChannelMessaging, schemas.StatusSucceeded, LedgerBase.Add(3*time.Second)))
		st = MustState(t, l, r.RequestID)
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
		r := Request(LedgerBase, NewUUID())
		MustPutRequest(t, l, r, LedgerBase.Add(time.Minute))
		for range 2 {
			if err := l.MarkFinalizing(t.Context(), r.RequestID); err != nil {
				t.Fatalf("MarkFinalizing: %v", err)
			}
		}
		if st := MustState(t, l, r.RequestID); !st.Finalizing {
			t.Fatal("Finalizing = false after MarkFinalizing")
		}
	})

	t.Run("CompleteWritesOneAuditEntry", func(t *testing.T) {
		l := newLedger(t)
		r := Request(LedgerBase, NewUUID(), NewUUID())
		r.ReplayOf, r.Producer = NewUUID(), "upstream:crm"
		MustPutRequest(t, l, r, LedgerBase.Add(time.Minute))
		if st := MustState(t, l, r.RequestID); st.Request.Producer != r.Producer {
			t.Fatalf("State.Request.Producer = %q, want %q", st.Request.Producer, r.Producer)
		}
		out := Outcome(r, schemas.StatusFailed, LedgerBase.Add(5*time.Second))
		out.ErrorCode = schemas.ErrCodeChannelFailed
		stored, created, err := l.Complete(t.Context(), out, "Delete Contact")
		if err != nil || !created {
			t.Fatalf("Complete = created %v, %v; want created", created, err)
		}
		if stored.AuditSeq <= 0 || stored.AuditHash == "" || stored.Status != out.Status || stored.RequestID != r.RequestID {
			t.Fatalf("stored outcome = %+v", stored)
		}
		st := MustState(t, l, r.RequestID)
		if st.Outcome == nil || st.Outcome.AuditSeq != stored.AuditSeq || st.Outcome.AuditHash != stored.AuditHash ||
			st.Outcome.Status != out.Status {
			t.Fatalf("State.Outcome = %+v, want %+v", st.Outcome, stored)
		}

		entries := MustAudit(t, l, stores.AuditFilter{RequestID: r.RequestID})
		if len(entries) != 1 {
			t.Fatalf("audit entries = %d, want 1", len(entries))
		}
		e := entries[0]
		want := stores.AuditEntry{
			Seq: stored.AuditSeq, RequestID: r.RequestID, Setting: stores.AuditSetting, Functionality: "Delete Contact",
			Actor: r.RequestedBy, ContactIDs: r.ContactIDs, Status: schemas.StatusFailed,
			ErrorCode: schemas.ErrCodeChannelFailed, Channels: out.Channels, RequestedAt: r.RequestedAt,
			CompletedAt: out.CompletedAt, ReplayOf: r.ReplayOf, RequestDigest: r.ContentDigest(), Producer: "upstream:crm",
			PrevHash: "", Hash: stored.AuditHash,
		}
		if got, w := auditJSON(t, e), auditJSON(t, want); got != w {
			t.Fatalf("audit entry\n got %s\nwant %s", got, w)
		}
		if h, err := stores.AuditHash(e); err != nil || h != e.Hash {
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
		if n := len(MustAudit(t, l, stores.AuditFilter{})); n != 1 {
			t.Fatalf("audit entries after a second Complete = %d, want 1", n)
		}
	})

	t.Run("ConcurrentCompleteWritesOneAuditEntry", func(t *testing.T) {
		l := newLedger(t)
		r := Request(LedgerBase, NewUUID())
		MustPutRequest(t, l, r, LedgerBase.Add(time.Minute))
		out := Outcome(r, schemas.StatusSucceeded, LedgerBase.Add(time.Second))
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
		if n := len(MustAudit(t, l, stores.AuditFilter{RequestID: r.RequestID})); n != 1 {
			t.Fatalf("audit entries = %d, want 1", n)
		}
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 1 {
			t.Fatalf("VerifyChain = %d, %v; want 1, nil", n, err)
		}
	})

	t.Run("MarkPublished", func(t *testing.T) {
		l := newLedger(t)
		r := Request(LedgerBase, NewUUID())
		MustPutRequest(t, l, r, LedgerBase.Add(time.Minute))
		if _, _, err := l.Complete(t.Context(), Outcome(r, schemas.StatusSucceeded, LedgerBase.Add(time.Second)), "Delete Contact"); err != nil {
			t.Fatal(err)
		}
		if MustState(t, l, r.RequestID).Published {
			t.Fatal("Published before MarkPublished")
		}
		for range 2 {
			if err := l.MarkPublished(t.Context(), r.RequestID); err != nil {
				t.Fatalf("MarkPublished: %v", err)
			}
		}
		if !MustState(t, l, r.RequestID).Published {
			t.Fatal("Published = false after MarkPublished")
		}
	})

	t.Run("HashChainLinksAndVerifies", func(t *testing.T) {
		l := newLedger(t)
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 0 {
			t.Fatalf("VerifyChain of an empty log = %d, %v; want 0, nil", n, err)
		}
		for i := range 5 {
			r := Request(LedgerBase.Add(time.Duration(i)*time.Minute), NewUUID())
			MustPutRequest(t, l, r, LedgerBase.Add(time.Hour))
			if _, _, err := l.Complete(t.Context(), Outcome(r, schemas.StatusSucceeded, r.RequestedAt.Add(time.Second)), "Bulk Delete"); err != nil {
				t.Fatal(err)
			}
		}
		entries := MustAudit(t, l, stores.AuditFilter{})
		if len(entries) != 5 {
			t.Fatalf("audit entries = %d, want 5", len(entries))
		}
		for i, e := range entries { // newest First
			if i+1 < len(entries) {
				if e.PrevHash != entries[i+1].Hash || e.Seq <= entries[i+1].Seq {
					t.Errorf("entry seq %d does not follow seq %d", e.Seq, entries[i+1].Seq)
				}
			} else if e.PrevHash != "" {
				t.Errorf("First entry prev_hash = %q, want empty", e.PrevHash)
			}
			if h, err := stores.AuditHash(e); err != nil || h != e.Hash {
				t.Errorf("entry seq %d: hash %s, recomputed %s (%v)", e.Seq, e.Hash, h, err)
			}
		}
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 5 {
			t.Fatalf("VerifyChain = %d, %v; want 5, nil", n, err)
		}
	})

	t.Run("Overdue", func(t *testing.T) {
		l := newLedger(t)
		now := LedgerBase.Add(time.Hour)
		late1 := Request(LedgerBase, NewUUID())
		late2 := Request(LedgerBase, NewUUID())
		onTime := Request(LedgerBase, NewUUID())
		done := Request(LedgerBase, NewUUID())
		MustPutRequest(t, l, late1, now.Add(-2*time.Minute))
		MustPutRequest(t, l, late2, now.Add(-time.Minute))
		MustPutRequest(t, l, onTime, now.Add(time.Minute))
		MustPutRequest(t, l, done, now.Add(-3*time.Minute))
		if _, _, err := l.Complete(t.Context(), Outcome(done, schemas.StatusSucceeded, now), "Delete Contact"); err != nil {
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
		if ids, err := l.Overdue(t.Context(), LedgerBase, 10); err != nil || len(ids) != 0 {
			t.Fatalf("Overdue before any deadline = %q, %v; want none", ids, err)
		}
	})

	t.Run("ByContact", func(t *testing.T) {
		l := newLedger(t)
		contact := NewUUID()
		var reqs []schemas.DeletionRequested
		for i := range 3 {
			r := Request(LedgerBase.Add(time.Duration(i)*time.Minute), contact, NewUUID())
			MustPutRequest(t, l, r, LedgerBase.Add(time.Hour))
			reqs = append(reqs, r)
		}
		MustPutRequest(t, l, Request(LedgerBase.Add(time.Hour), NewUUID()), LedgerBase.Add(2*time.Hour))
		if _, _, err := l.Complete(t.Context(), Outcome(reqs[1], schemas.StatusSucceeded, LedgerBase.Add(90*time.Second)), "Delete Contact"); err != nil {
			t.Fatal(err)
		}
		sts, err := l.ByContact(t.Context(), contact, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := stateIDs(sts), []string{reqs[2].RequestID, reqs[1].RequestID, reqs[0].RequestID}; !slices.Equal(got, want) {
			t.Fatalf("ByContact = %q, want newest First %q", got, want)
		}
		if sts[1].Outcome == nil || sts[0].Outcome != nil {
			t.Fatalf("ByContact states: outcome on %v / %v, want only the completed request", sts[1].Outcome, sts[0].Outcome)
		}
		sts, err = l.ByContact(t.Context(), contact, 2)
		if got, want := stateIDs(sts), []string{reqs[2].RequestID, reqs[1].RequestID}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("ByContact limit 2 = %q, %v; want %q", got, err, want)
		}
		for _, c := range []string{NewUUID(), contact[:len(contact)-1], "%", "*"} {
			if sts, err := l.ByContact(t.Context(), c, 10); err != nil || len(sts) != 0 {
				t.Fatalf("ByContact(%q) = %d states, %v; want none", c, len(sts), err)
			}
		}
	})

	t.Run("AuditFilters", func(t *testing.T) { testAuditFilters(t, newLedger(t)) })
	t.Run("AuditActorPrefixCountAndActors", func(t *testing.T) { testAuditPrefixes(t, newLedger(t)) })

	testLedgerBindings(t, newLedger)
	testLedgerLateAndRefused(t, newLedger)

	t.Run("AuditDefaultLimit", func(t *testing.T) {
		l := newLedger(t)
		for i := range stores.AuditDefaultLimit + 5 {
			r := Request(LedgerBase.Add(time.Duration(i)*time.Second), NewUUID())
			MustPutRequest(t, l, r, LedgerBase.Add(time.Hour))
			if _, _, err := l.Complete(t.Context(), Outcome(r, schemas.StatusSucceeded, r.RequestedAt), "Bulk Delete"); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(MustAudit(t, l, stores.AuditFilter{})); n != stores.AuditDefaultLimit {
			t.Errorf("Audit with no limit = %d entries, want %d", n, stores.AuditDefaultLimit)
		}
		if n := len(MustAudit(t, l, stores.AuditFilter{Limit: stores.AuditMaxLimit + 1})); n != stores.AuditDefaultLimit+5 {
			t.Errorf("Audit with a large limit = %d entries, want %d", n, stores.AuditDefaultLimit+5)
		}
	})
}

func testAuditFilters(t *testing.T, l stores.Ledger) {
	c1, c2, c3 := NewUUID(), NewUUID(), NewUUID()
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
		r := Request(LedgerBase.Add(time.Duration(i)*time.Hour), s.contacts...)
		r.RequestedBy = s.actor
		MustPutRequest(t, l, r, r.RequestedAt.Add(time.Minute))
		at := r.RequestedAt.Add(10 * time.Second)
		if _, _, err := l.Complete(t.Context(), Outcome(r, schemas.StatusSucceeded, at), s.functionality); err != nil {
			t.Fatal(err)
		}
		reqs, done = append(reqs, r), append(done, at)
	}
	id := func(i int) string { return reqs[i].RequestID }
	tests := []struct {
		name string
		f    stores.AuditFilter
		want []int // indexes into reqs, newest First
	}{
		{"all", stores.AuditFilter{}, []int{3, 2, 1, 0}},
		{"actor", stores.AuditFilter{Actor: "alice"}, []int{3, 2, 0}},
		{"actor is exact", stores.AuditFilter{Actor: "ali"}, nil},
		{"actor is not a pattern", stores.AuditFilter{Actor: "%"}, nil},
		{"functionality", stores.AuditFilter{Functionality: "Bulk Delete"}, []int{2, 1}},
		{"contact", stores.AuditFilter{ContactID: c1}, []int{3, 1, 0}},
		{"second contact of a request", stores.AuditFilter{ContactID: c2}, []int{1}},
		{"unknown contact", stores.AuditFilter{ContactID: NewUUID()}, nil},
		{"request", stores.AuditFilter{RequestID: id(2)}, []int{2}},
		{"from", stores.AuditFilter{From: done[1]}, []int{3, 2, 1}},
		{"to", stores.AuditFilter{To: done[1]}, []int{1, 0}},
		{"from and to", stores.AuditFilter{From: done[1].Add(time.Second), To: done[3].Add(-time.Second)}, []int{2}},
		{"actor and contact", stores.AuditFilter{Actor: "alice", ContactID: c1}, []int{3, 0}},
		{"limit", stores.AuditFilter{Limit: 2}, []int{3, 2}},
		{"offset and limit", stores.AuditFilter{Offset: 1, Limit: 2}, []int{2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, i := range tc.want {
				want = append(want, id(i))
			}
			var got []string
			for _, e := range MustAudit(t, l, tc.f) {
				got = append(got, e.RequestID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("Audit(%+v) = %q, want %q", tc.f, got, want)
			}
		})
	}
}

var LedgerBase = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

func Request(at time.Time, contacts ...string) schemas.DeletionRequested {
	return schemas.DeletionRequested{
		Type:          schemas.TypeDeletionRequested,
		SchemaVersion: schemas.Version,
		RequestID:     NewUUID(),
		ContactIDs:    contacts,
		RequestedBy:   "dpo@example.com",
		RequestedAt:   at,
		Source:        schemas.SourceUI,
		Channels:      []schemas.Channel{schemas.ChannelVoice, schemas.ChannelMessaging, schemas.ChannelContactSearch},
		ReasonCode:    "gdpr-art17",
	}
}

func Result(requestID string, ch schemas.Channel, status schemas.Status, at time.Time) schemas.ChannelCompleted {
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

func Outcome(r schemas.DeletionRequested, status schemas.Status, at time.Time) schemas.DeletionCompleted {
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
		RequestDigest: r.ContentDigest(),
		Producer:      r.Producer,
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

func MustPutRequest(t *testing.T, l stores.Ledger, r schemas.DeletionRequested, deadline time.Time) {
	t.Helper()
	if err := l.PutRequest(t.Context(), r, deadline); err != nil {
		t.Fatalf("PutRequest: %v", err)
	}
}

func MustPutResult(t *testing.T, l stores.Ledger, r schemas.ChannelCompleted) {
	t.Helper()
	if err := l.PutResult(t.Context(), r); err != nil {
		t.Fatalf("PutResult: %v", err)
	}
}

func MustState(t *testing.T, l stores.Ledger, id string) stores.RequestState {
	t.Helper()
	st, err := l.State(t.Context(), id)
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	return st
}

func MustAudit(t *testing.T, l stores.Ledger, f stores.AuditFilter) []stores.AuditEntry {
	t.Helper()
	entries, err := l.Audit(t.Context(), f)
	if err != nil {
		t.Fatalf("Audit(%+v): %v", f, err)
	}
	return entries
}

// auditJSON renders an entry for comparison, with times in UTC so that
// equal instants compare equal.
func auditJSON(t *testing.T, e stores.AuditEntry) string {
	t.Helper()
	e.RequestedAt, e.CompletedAt = e.RequestedAt.UTC(), e.CompletedAt.UTC()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func stateIDs(sts []stores.RequestState) []string {
	var ids []string
	for _, st := range sts {
		ids = append(ids, st.Request.RequestID)
	}
	return ids
}

// testLedgerBindings checks BindRequest and Unpublished.
func testLedgerBindings(t *testing.T, newLedger func(t *testing.T) stores.Ledger) {
	t.Run("MarkRunCountsRunsPerRequestAndChannel", func(t *testing.T) {
		l := newLedger(t)
		id, other := NewUUID(), NewUUID()
		for i, c := range []struct {
			id    string
			ch    schemas.Channel
			first bool
		}{
			{id, schemas.ChannelVoice, true},
			{id, schemas.ChannelSocial, true},
			{other, schemas.ChannelVoice, true},
			{id, schemas.ChannelVoice, false},
			{id, schemas.ChannelVoice, false},
		} {
			first, err := l.MarkRun(t.Context(), c.id, c.ch)
			if err != nil || first != c.first {
				t.Fatalf("MarkRun #%d (%s) = %v, %v; want %v", i+1, c.ch, first, err, c.first)
			}
		}
		for name, call := range map[string]func() (bool, error){
			"empty request ID": func() (bool, error) { return l.MarkRun(t.Context(), "", schemas.ChannelVoice) },
			"unknown channel":  func() (bool, error) { return l.MarkRun(t.Context(), NewUUID(), "fax") },
		} {
			if _, err := call(); !errors.Is(err, stores.ErrPermanent) {
				t.Errorf("%s: %v, want a permanent error", name, err)
			}
		}
	})

	t.Run("BindRequestFirstWriterWins", func(t *testing.T) {
		l := newLedger(t)
		a := Request(LedgerBase, NewUUID())
		b := a
		b.ContactIDs = []string{NewUUID()}
		da, db := a.ContentDigest(), b.ContentDigest()
		for i, tc := range []struct{ digest, want string }{{da, da}, {db, da}, {da, da}} {
			got, err := l.BindRequest(t.Context(), a.RequestID, tc.digest)
			if err != nil || got != tc.want {
				t.Fatalf("BindRequest #%d = %s, %v; want %s", i+1, got, err, tc.want)
			}
		}
		// Another ID is bound on its own.
		other := NewUUID()
		if got, err := l.BindRequest(t.Context(), other, db); err != nil || got != db {
			t.Fatalf("BindRequest of another ID = %s, %v; want %s", got, err, db)
		}
	})

	t.Run("ConcurrentBindersAgree", func(t *testing.T) {
		l := newLedger(t)
		id := NewUUID()
		got := make([]string, 8)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				r := Request(LedgerBase, NewUUID())
				got[i], errs[i] = l.BindRequest(t.Context(), id, r.ContentDigest())
			})
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("BindRequest: %v", errs[i])
			}
			if got[i] != got[0] {
				t.Fatalf("binders disagree: %s vs %s", got[i], got[0])
			}
		}
	})

	t.Run("BindRequestKeepsRecordedContent", func(t *testing.T) {
		// A request recorded before bindings existed is bound to what was
		// recorded, whatever content asks first.
		l := newLedger(t)
		r := Request(LedgerBase, NewUUID())
		MustPutRequest(t, l, r, LedgerBase.Add(time.Minute))
		other := r
		other.ContactIDs = []string{NewUUID()}
		if got, err := l.BindRequest(t.Context(), r.RequestID, other.ContentDigest()); err != nil || got != r.ContentDigest() {
			t.Fatalf("BindRequest = %s, %v; want the recorded request's digest %s", got, err, r.ContentDigest())
		}
	})

	t.Run("BindRequestRefusesBadInput", func(t *testing.T) {
		l := newLedger(t)
		d := Request(LedgerBase, NewUUID()).ContentDigest()
		for _, tc := range []struct{ id, digest string }{{"", d}, {NewUUID(), ""}, {NewUUID(), "abc"}, {NewUUID(), d[:63] + "G"}} {
			if _, err := l.BindRequest(t.Context(), tc.id, tc.digest); !errors.Is(err, stores.ErrPermanent) {
				t.Errorf("BindRequest(%q, %q): err = %v, want a permanent error", tc.id, tc.digest, err)
			}
		}
	})

	t.Run("Unpublished", func(t *testing.T) {
		l := newLedger(t)
		if ids, err := l.Unpublished(t.Context(), 10); err != nil || len(ids) != 0 {
			t.Fatalf("Unpublished of an empty ledger = %q, %v", ids, err)
		}
		var reqs []schemas.DeletionRequested
		for i := range 3 {
			r := Request(LedgerBase.Add(time.Duration(i)*time.Minute), NewUUID())
			MustPutRequest(t, l, r, LedgerBase.Add(time.Hour))
			reqs = append(reqs, r)
		}
		pending := Request(LedgerBase, NewUUID()) // no outcome yet
		MustPutRequest(t, l, pending, LedgerBase.Add(time.Hour))
		for i, r := range reqs {
			if _, _, err := l.Complete(t.Context(), Outcome(r, schemas.StatusSucceeded, LedgerBase.Add(time.Duration(10-i)*time.Second)), "Delete Contact"); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.MarkPublished(t.Context(), reqs[1].RequestID); err != nil {
			t.Fatal(err)
		}
		ids, err := l.Unpublished(t.Context(), 10)
		if want := []string{reqs[2].RequestID, reqs[0].RequestID}; err != nil || !slices.Equal(ids, want) {
			t.Fatalf("Unpublished = %q, %v; want earliest completion first %q", ids, err, want)
		}
		if ids, err := l.Unpublished(t.Context(), 1); err != nil || len(ids) != 1 {
			t.Fatalf("Unpublished with limit 1 = %q, %v", ids, err)
		}
		for _, r := range reqs {
			if err := l.MarkPublished(t.Context(), r.RequestID); err != nil {
				t.Fatal(err)
			}
		}
		if ids, err := l.Unpublished(t.Context(), 10); err != nil || len(ids) != 0 {
			t.Fatalf("Unpublished after publishing all = %q, %v", ids, err)
		}
	})
}

// testLedgerLateAndRefused checks Amend and Refuse, and that the chain
// verifies with every kind of entry in it.
func testLedgerLateAndRefused(t *testing.T, newLedger func(t *testing.T) stores.Ledger) {
	t.Run("AmendAppendsLateEntries", func(t *testing.T) {
		l := newLedger(t)
		r := Request(LedgerBase, NewUUID(), NewUUID())
		MustPutRequest(t, l, r, LedgerBase.Add(time.Minute))
		late := Result(r.RequestID, schemas.ChannelVoice, schemas.StatusSucceeded, LedgerBase.Add(40*time.Second))
		if _, _, err := l.Amend(t.Context(), late); !errors.Is(err, stores.ErrPermanent) {
			t.Fatalf("Amend before the decision: err = %v, want a permanent error", err)
		}
		out := Outcome(r, schemas.StatusFailed, LedgerBase.Add(30*time.Second))
		out.ErrorCode = schemas.ErrCodeDeadline
		decided, _, err := l.Complete(t.Context(), out, "Upstream Request")
		if err != nil {
			t.Fatal(err)
		}
		MustPutResult(t, l, late)
		e, created, err := l.Amend(t.Context(), late)
		if err != nil || !created {
			t.Fatalf("Amend = created %v, %v; want created", created, err)
		}
		want := stores.AuditEntry{
			Seq: decided.AuditSeq + 1, RequestID: r.RequestID, Setting: stores.AuditSetting, Functionality: "Upstream Request",
			Actor: r.RequestedBy, ContactIDs: r.ContactIDs, Status: schemas.StatusSucceeded,
			Channels:    []schemas.ChannelOutcome{{Channel: schemas.ChannelVoice, Status: schemas.StatusSucceeded, Artefacts: late.Artefacts}},
			RequestedAt: r.RequestedAt, CompletedAt: late.CompletedAt, Amends: decided.AuditSeq, RequestDigest: r.ContentDigest(),
			PrevHash: decided.AuditHash, Hash: e.Hash,
		}
		if got, w := auditJSON(t, e), auditJSON(t, want); got != w {
			t.Fatalf("late entry\n got %s\nwant %s", got, w)
		}
		stored := MustAudit(t, l, stores.AuditFilter{RequestID: r.RequestID})
		if len(stored) != 2 || auditJSON(t, stored[0]) != auditJSON(t, want) {
			t.Fatalf("audit of the request = %+v, want the late entry first, then the decision", stored)
		}

		// The same result again (a redelivery) is not appended twice.
		again, created, err := l.Amend(t.Context(), late)
		if err != nil || created || again.Seq != e.Seq || again.Hash != e.Hash {
			t.Fatalf("second Amend = seq %d created %v, %v; want seq %d not created", again.Seq, created, err, e.Seq)
		}
		// Another channel's late result, and a later result of the same
		// channel, are entries of their own.
		other := Result(r.RequestID, schemas.ChannelMessaging, schemas.StatusFailed, LedgerBase.Add(41*time.Second))
		other.Artefacts, other.ErrorCode = nil, schemas.ErrCodeStoreUnavailable
		e2, created, err := l.Amend(t.Context(), other)
		if err != nil || !created || e2.Amends != decided.AuditSeq || e2.ErrorCode != schemas.ErrCodeStoreUnavailable ||
			len(e2.Channels) != 1 || e2.Channels[0].Artefacts == nil {
			t.Fatalf("Amend of another channel = %+v created %v, %v", e2, created, err)
		}
		retried := Result(r.RequestID, schemas.ChannelMessaging, schemas.StatusSucceeded, LedgerBase.Add(50*time.Second))
		if _, created, err := l.Amend(t.Context(), retried); err != nil || !created {
			t.Fatalf("Amend of a later result = created %v, %v", created, err)
		}
		// The decision stands.
		st := MustState(t, l, r.RequestID)
		if st.Outcome == nil || st.Outcome.AuditSeq != decided.AuditSeq || st.Outcome.Status != schemas.StatusFailed {
			t.Fatalf("State.Outcome after late entries = %+v, want the decision %+v", st.Outcome, decided)
		}
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 4 {
			t.Fatalf("VerifyChain = %d, %v; want 4, nil", n, err)
		}
		if n := len(MustAudit(t, l, stores.AuditFilter{ContactID: r.ContactIDs[1]})); n != 4 {
			t.Fatalf("audit by contact = %d entries, want the decision and its late entries", n)
		}
	})

	t.Run("RefuseLeavesTheRequestAlone", func(t *testing.T) {
		l := newLedger(t)
		r := Request(LedgerBase, NewUUID())
		MustPutRequest(t, l, r, LedgerBase.Add(time.Minute))
		reused := r
		reused.ContactIDs, reused.RequestedBy, reused.Source = []string{NewUUID()}, "crm-service", schemas.SourceUpstream
		refusal := schemas.DeletionCompleted{RequestID: r.RequestID, ContactIDs: reused.ContactIDs, RequestedBy: reused.RequestedBy,
			RequestedAt: LedgerBase.Add(time.Second), CompletedAt: LedgerBase.Add(2 * time.Second), Source: reused.Source,
			RequestDigest: reused.ContentDigest()}

		// Refused while the request is still in flight.
		stored, created, err := l.Refuse(t.Context(), refusal, "Upstream Request")
		if err != nil || !created {
			t.Fatalf("Refuse = created %v, %v; want created", created, err)
		}
		if stored.Status != schemas.StatusRefused || stored.ErrorCode != schemas.ErrCodeRequestIDConflict ||
			stored.AuditSeq != 1 || stored.AuditHash == "" || stored.RequestDigest != reused.ContentDigest() {
			t.Fatalf("refused outcome = %+v", stored)
		}
		st := MustState(t, l, r.RequestID)
		if st.Outcome != nil || !slices.Equal(st.Request.ContactIDs, r.ContactIDs) || st.Request.RequestedBy != r.RequestedBy {
			t.Fatalf("State after a refusal = %+v, want the request untouched", st)
		}
		if sts, err := l.ByContact(t.Context(), reused.ContactIDs[0], 10); err != nil || len(sts) != 0 {
			t.Fatalf("ByContact(refused contact) = %d states, %v; want none", len(sts), err)
		}
		again, created, err := l.Refuse(t.Context(), refusal, "Upstream Request")
		if err != nil || created || again.AuditSeq != stored.AuditSeq || again.AuditHash != stored.AuditHash {
			t.Fatalf("second Refuse = %+v created %v, %v; want the stored refusal", again, created, err)
		}

		// The request completes as if nothing happened, chained after it.
		decided, created, err := l.Complete(t.Context(), Outcome(r, schemas.StatusSucceeded, LedgerBase.Add(5*time.Second)), "Delete Contact")
		if err != nil || !created || decided.AuditSeq != 2 || decided.Status != schemas.StatusSucceeded {
			t.Fatalf("Complete after a refusal = %+v created %v, %v", decided, created, err)
		}
		// A refusal of yet other content is its own entry; a refusal of the
		// same content after the decision is still the one entry.
		third := reused
		third.ContactIDs = []string{NewUUID()}
		refusal3 := refusal
		refusal3.ContactIDs, refusal3.RequestDigest = third.ContactIDs, third.ContentDigest()
		if s3, created, err := l.Refuse(t.Context(), refusal3, "Upstream Request"); err != nil || !created || s3.AuditSeq != 3 {
			t.Fatalf("Refuse of other content = %+v created %v, %v", s3, created, err)
		}
		if _, created, err := l.Refuse(t.Context(), refusal, "Upstream Request"); err != nil || created {
			t.Fatalf("repeated Refuse after the decision = created %v, %v", created, err)
		}
		if st := MustState(t, l, r.RequestID); st.Outcome == nil || st.Outcome.AuditSeq != decided.AuditSeq {
			t.Fatalf("State.Outcome = %+v, want the decision", st.Outcome)
		}

		entries := MustAudit(t, l, stores.AuditFilter{RequestID: r.RequestID})
		if len(entries) != 3 {
			t.Fatalf("audit entries of the request ID = %d, want 3", len(entries))
		}
		e := entries[2] // oldest: the first refusal
		want := stores.AuditEntry{
			Seq: 1, RequestID: r.RequestID, Setting: stores.AuditSetting, Functionality: "Upstream Request", Actor: "crm-service",
			ContactIDs: reused.ContactIDs, Status: schemas.StatusRefused, ErrorCode: schemas.ErrCodeRequestIDConflict,
			Channels: []schemas.ChannelOutcome{}, RequestedAt: refusal.RequestedAt, CompletedAt: refusal.CompletedAt,
			RequestDigest: reused.ContentDigest(), PrevHash: "", Hash: stored.AuditHash,
		}
		if got, w := auditJSON(t, e), auditJSON(t, want); got != w {
			t.Fatalf("refused entry\n got %s\nwant %s", got, w)
		}
		if e.IsDecision() || !entries[1].IsDecision() {
			t.Fatal("IsDecision does not tell the refusal from the decision")
		}
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 3 {
			t.Fatalf("VerifyChain = %d, %v; want 3, nil", n, err)
		}
	})

	t.Run("RefuseOfUnknownRequestCreatesNoState", func(t *testing.T) {
		l := newLedger(t)
		r := Request(LedgerBase, NewUUID())
		out := schemas.DeletionCompleted{RequestID: r.RequestID, ContactIDs: r.ContactIDs, RequestedBy: r.RequestedBy,
			RequestedAt: r.RequestedAt, Source: r.Source, RequestDigest: r.ContentDigest()}
		if _, _, err := l.Refuse(t.Context(), out, "Delete Contact"); err != nil {
			t.Fatal(err)
		}
		if _, err := l.State(t.Context(), r.RequestID); !errors.Is(err, stores.ErrNotFound) {
			t.Fatalf("State after a refusal only: err = %v, want ErrNotFound", err)
		}
		if ids, err := l.Unpublished(t.Context(), 10); err != nil || len(ids) != 0 {
			t.Fatalf("Unpublished after a refusal only = %q, %v", ids, err)
		}
		out.RequestDigest = ""
		if _, _, err := l.Refuse(t.Context(), out, "Delete Contact"); !errors.Is(err, stores.ErrPermanent) {
			t.Fatalf("Refuse without a digest: err = %v, want a permanent error", err)
		}
	})
}

// testAttemptLimiter checks the attempt counters: back-off, all-or-nothing
// charging, reset, refund, forgetting and concurrent reservations.
func testAttemptLimiter(t *testing.T, newLimiter func(t *testing.T) stores.AttemptLimiter) {
	t0 := LedgerBase
	reserve := func(t *testing.T, l stores.AttemptLimiter, at time.Duration, limits ...stores.AttemptLimit) (bool, time.Duration) {
		t.Helper()
		ok, wait, err := l.ReserveAttempt(t.Context(), t0.Add(at), limits...)
		if err != nil {
			t.Fatalf("ReserveAttempt: %v", err)
		}
		if ok != (wait == 0) {
			t.Fatalf("ReserveAttempt = %v, %v: allowed and a wait disagree", ok, wait)
		}
		return ok, wait
	}
	policy := stores.AttemptPolicy{Free: 3, Base: time.Second, Max: 4 * time.Second, Forget: time.Hour}

	t.Run("BackOffDoublesUpToTheCap", func(t *testing.T) {
		l := newLimiter(t)
		k := stores.AttemptLimit{Key: "k-" + NewUUID(), Policy: policy}
		for i := range 3 {
			if ok, _ := reserve(t, l, 0, k); !ok {
				t.Fatalf("attempt %d refused, want %d free attempts", i+1, policy.Free)
			}
		}
		steps := []struct {
			at   time.Duration
			ok   bool
			wait time.Duration
		}{
			{0, false, time.Second},
			{time.Second, true, 0}, // 4th: next after 2s
			{2 * time.Second, false, time.Second},
			{3 * time.Second, true, 0}, // 5th: next after 4s
			{6 * time.Second, false, time.Second},
			{7 * time.Second, true, 0}, // 6th: 8s, capped at 4s
			{10 * time.Second, false, time.Second},
			{11 * time.Second, true, 0},
		}
		for _, s := range steps {
			if ok, wait := reserve(t, l, s.at, k); ok != s.ok || wait != s.wait {
				t.Errorf("at +%v: allowed %v, wait %v; want %v, %v", s.at, ok, wait, s.ok, s.wait)
			}
		}
	})

	t.Run("ChargesAllKeysOrNone", func(t *testing.T) {
		l := newLimiter(t)
		a := stores.AttemptLimit{Key: "a-" + NewUUID(), Policy: stores.AttemptPolicy{Free: 1, Base: time.Minute, Max: time.Minute, Forget: time.Hour}}
		b := stores.AttemptLimit{Key: "b-" + NewUUID(), Policy: stores.AttemptPolicy{Free: 2, Base: time.Minute, Max: time.Minute, Forget: time.Hour}}
		if ok, _ := reserve(t, l, 0, a, b); !ok {
			t.Fatal("first attempt refused")
		}
		if ok, wait := reserve(t, l, 0, a, b); ok || wait != time.Minute {
			t.Fatalf("second attempt: allowed %v, wait %v; want refused for a minute", ok, wait)
		}
		// The refused attempt charged nothing: b has one attempt left.
		if ok, _ := reserve(t, l, 0, b); !ok {
			t.Fatal("b alone refused: the refused attempt was charged to it")
		}
		if ok, _ := reserve(t, l, 0, b); ok {
			t.Fatal("b allowed past its free attempts")
		}
	})

	t.Run("ResetStartsOver", func(t *testing.T) {
		l := newLimiter(t)
		k := stores.AttemptLimit{Key: "k-" + NewUUID(), Policy: policy}
		for range 3 {
			reserve(t, l, 0, k)
		}
		if ok, _ := reserve(t, l, 0, k); ok {
			t.Fatal("allowed past the free attempts")
		}
		if err := l.ResetAttempts(t.Context(), k.Key, "unknown-"+NewUUID()); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if ok, _ := reserve(t, l, 0, k); !ok {
				t.Fatalf("attempt %d after a reset refused", i+1)
			}
		}
	})

	t.Run("RefundTakesOneBack", func(t *testing.T) {
		l := newLimiter(t)
		k := stores.AttemptLimit{Key: "k-" + NewUUID(), Policy: policy}
		reserve(t, l, 0, k)
		reserve(t, l, 0, k)
		if err := l.RefundAttempt(t.Context(), k.Key); err != nil {
			t.Fatal(err)
		}
		if err := l.RefundAttempt(t.Context(), "unknown-"+NewUUID()); err != nil {
			t.Fatal(err)
		}
		// Two charged, one refunded: two of the three free attempts remain.
		for i := range 2 {
			if ok, _ := reserve(t, l, 0, k); !ok {
				t.Fatalf("attempt %d after a refund refused", i+1)
			}
		}
		if ok, _ := reserve(t, l, 0, k); ok {
			t.Fatal("allowed past the free attempts: the refund took back more than one")
		}
	})

	t.Run("IdleKeysAreForgotten", func(t *testing.T) {
		l := newLimiter(t)
		k := stores.AttemptLimit{Key: "k-" + NewUUID(), Policy: policy}
		for range 3 {
			reserve(t, l, 0, k)
		}
		for i := range 3 {
			if ok, _ := reserve(t, l, policy.Forget, k); !ok {
				t.Fatalf("attempt %d after Forget refused", i+1)
			}
		}
	})

	t.Run("ConcurrentReservationsAreCounted", func(t *testing.T) {
		l := newLimiter(t)
		k := stores.AttemptLimit{Key: "k-" + NewUUID(), Policy: stores.AttemptPolicy{Free: 5, Base: time.Minute, Max: time.Hour, Forget: 24 * time.Hour}}
		var wg sync.WaitGroup
		var mu sync.Mutex
		allowed := 0
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, _, err := l.ReserveAttempt(t.Context(), t0, k)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if allowed != 5 {
			t.Errorf("%d of 50 concurrent reservations allowed, want 5", allowed)
		}
	})
}
