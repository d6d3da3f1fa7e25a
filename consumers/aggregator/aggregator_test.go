package aggregator

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/sqlite"
)

type recorder struct {
	mu   sync.Mutex
	msgs map[string][]*message.Message
	// fail makes the next publishes to a topic fail, as in a broker blip.
	fail map[string]int
}

func (r *recorder) failNext(topic string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail == nil {
		r.fail = map[string]int{}
	}
	r.fail[topic] = n
}

func (r *recorder) Publish(topic string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[topic] > 0 {
		r.fail[topic]--
		return errors.New("broker unavailable")
	}
	if r.msgs == nil {
		r.msgs = map[string][]*message.Message{}
	}
	r.msgs[topic] = append(r.msgs[topic], msgs...)
	return nil
}
func (r *recorder) Close() error { return nil }
func (r *recorder) count(topic string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs[topic])
}

const (
	reqID   = "019ac4a0-1111-7000-8000-000000000001"
	contact = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"
)

func setup(t *testing.T) (*Aggregator, *recorder, *sqlite.Ledger, *time.Time) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	led := sqlite.NewLedger(db)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	rec := &recorder{}
	a := &Aggregator{Ledger: led, Publisher: rec, Topics: schemas.Topics{Prefix: "t."}, Rule: schemas.DefaultContactIDRule,
		Deadline: DefaultDeadline, Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return a, rec, led, &now
}

func msg(t *testing.T, ev schemas.Event) *message.Message {
	t.Helper()
	m, err := producers.NewMessage(ev, reqID)
	if err != nil {
		t.Fatal(err)
	}
	m.SetContext(t.Context())
	return m
}

func request(now time.Time) *schemas.DeletionRequested {
	return &schemas.DeletionRequested{RequestID: reqID, ContactIDs: []string{contact}, RequestedBy: "dpo", RequestedAt: now,
		Source: schemas.SourceUI, Channels: []schemas.Channel{schemas.ChannelVoice, schemas.ChannelSocial, schemas.ChannelContactSearch}}
}

func result(ch schemas.Channel, st schemas.Status, deleted int64) *schemas.ChannelCompleted {
	return &schemas.ChannelCompleted{RequestID: reqID, Channel: ch, Status: st, CompletedAt: time.Now().UTC(),
		Artefacts:     []schemas.ArtefactCount{{Artefact: "x", Before: deleted, Deleted: deleted}},
		RequestDigest: request(time.Time{}).ContentDigest()}
}

func TestJoinOutOfOrderRedeliveredAndPhaseTwoOnce(t *testing.T) {
	a, rec, led, now := setup(t)
	// A result can arrive before its request.
	if err := a.onResult(msg(t, result(schemas.ChannelVoice, schemas.StatusSucceeded, 3))); err != nil {
		t.Fatal(err)
	}
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.finalize") != 0 {
		t.Fatal("phase 2 started before every artefact channel succeeded")
	}
	social := msg(t, result(schemas.ChannelSocial, schemas.StatusSucceeded, 2))
	for range 3 { // redelivered
		if err := a.onResult(social); err != nil {
			t.Fatal(err)
		}
	}
	if n := rec.count("t.finalize"); n != 1 {
		t.Fatalf("finalize published %d times", n)
	}
	// A rerun of voice after redelivery reports zeros; the first success stays.
	if err := a.onResult(msg(t, result(schemas.ChannelVoice, schemas.StatusSucceeded, 0))); err != nil {
		t.Fatal(err)
	}
	final := msg(t, result(schemas.ChannelContactSearch, schemas.StatusSucceeded, 1))
	for range 3 {
		if err := a.onResult(final); err != nil {
			t.Fatal(err)
		}
	}
	if n := rec.count("t.outcomes"); n != 1 {
		t.Fatalf("%d outcomes published, want 1", n)
	}
	var out schemas.DeletionCompleted
	if err := schemas.Decode(rec.msgs["t.outcomes"][0].Payload, a.Rule, &out); err != nil {
		t.Fatal(err)
	}
	if out.Status != schemas.StatusSucceeded || out.Channels[0].Artefacts[0].Deleted != 3 {
		t.Errorf("outcome %+v", out)
	}
	entries, err := led.Audit(t.Context(), stores.AuditFilter{})
	if err != nil || len(entries) != 1 || entries[0].Functionality != "Delete Contact" {
		t.Fatalf("audit: %v %+v", err, entries)
	}
	// A request redelivered after completion changes nothing.
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.outcomes") != 1 {
		t.Fatal("redelivered request published a second outcome")
	}
}

// A failed channel fails the request only once the other artefact
// channels finished, so what they deleted is in the decision; phase 2
// never starts.
func TestFailedChannelWaitsForSiblings(t *testing.T) {
	a, rec, led, now := setup(t)
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	f := result(schemas.ChannelSocial, schemas.StatusFailed, 0)
	f.ErrorCode, f.Artefacts = schemas.ErrCodeStoreUnavailable, nil
	if err := a.onResult(msg(t, f)); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.outcomes") != 0 {
		t.Fatal("decided while voice was still deleting")
	}
	if err := a.onResult(msg(t, result(schemas.ChannelVoice, schemas.StatusSucceeded, 4))); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.finalize") != 0 {
		t.Fatal("phase 2 started after a failure")
	}
	out := outcome(t, a, rec, 0)
	if out.Status != schemas.StatusFailed || out.ErrorCode != schemas.ErrCodeChannelFailed {
		t.Fatalf("outcome %s %s", out.Status, out.ErrorCode)
	}
	wantChannels(t, out, map[schemas.Channel]schemas.Status{schemas.ChannelVoice: schemas.StatusSucceeded,
		schemas.ChannelSocial: schemas.StatusFailed, schemas.ChannelContactSearch: schemas.StatusSkipped})
	if d := channel(out, schemas.ChannelVoice).Artefacts[0].Deleted; d != 4 {
		t.Errorf("voice deleted %d in the outcome, want its real count 4", d)
	}
	entries, err := led.Audit(t.Context(), stores.AuditFilter{RequestID: reqID})
	if err != nil || len(entries) != 1 || entries[0].Channels[0].Status != schemas.StatusSucceeded {
		t.Fatalf("audit: %v %+v", err, entries)
	}
}

// When a sibling never answers, the deadline decides; what it deletes
// afterwards is audited as a late entry naming the decision, once.
func TestLateResultIsAuditedOnce(t *testing.T) {
	a, rec, led, now := setup(t)
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	f := result(schemas.ChannelSocial, schemas.StatusFailed, 0)
	f.ErrorCode, f.Artefacts = schemas.ErrCodeStoreRejected, nil
	if err := a.onResult(msg(t, f)); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultDeadline + time.Second)
	a.sweep(t.Context())
	out := outcome(t, a, rec, 0)
	if out.Status != schemas.StatusFailed || out.ErrorCode != schemas.ErrCodeChannelFailed {
		t.Fatalf("outcome %s %s", out.Status, out.ErrorCode)
	}
	if v := channel(out, schemas.ChannelVoice); v.Status != schemas.StatusFailed || v.ErrorCode != schemas.ErrCodeDeadline {
		t.Fatalf("voice in the outcome: %+v, want failed by the deadline", v)
	}
	if cs := channel(out, schemas.ChannelContactSearch); cs.Status != schemas.StatusSkipped {
		t.Fatalf("contact-search in the outcome: %+v, want skipped", cs)
	}

	late := msg(t, result(schemas.ChannelVoice, schemas.StatusSucceeded, 3))
	for range 3 { // redelivered
		if err := a.onResult(late); err != nil {
			t.Fatal(err)
		}
	}
	// A rerun after the late success deletes nothing and adds nothing.
	if err := a.onResult(msg(t, result(schemas.ChannelVoice, schemas.StatusSucceeded, 0))); err != nil {
		t.Fatal(err)
	}
	// The decision entry's own result, redelivered, is not late.
	if err := a.onResult(msg(t, f)); err != nil {
		t.Fatal(err)
	}
	entries, err := led.Audit(t.Context(), stores.AuditFilter{RequestID: reqID})
	if err != nil || len(entries) != 2 {
		t.Fatalf("audit: %v, %d entries, want the decision and one late entry", err, len(entries))
	}
	e := entries[0]
	if e.Amends != out.AuditSeq || e.Seq != out.AuditSeq+1 || e.Status != schemas.StatusSucceeded ||
		len(e.Channels) != 1 || e.Channels[0].Channel != schemas.ChannelVoice || e.Channels[0].Artefacts[0].Deleted != 3 ||
		e.Functionality != "Delete Contact" || e.PrevHash != out.AuditHash {
		t.Fatalf("late entry %+v", e)
	}
	if n, err := led.VerifyChain(t.Context()); err != nil || n != 2 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
	if rec.count("t.outcomes") != 1 {
		t.Fatal("a late result published another outcome")
	}
	// A retry of the failed channel that deletes is audited as well.
	if err := a.onResult(msg(t, result(schemas.ChannelSocial, schemas.StatusSucceeded, 2))); err != nil {
		t.Fatal(err)
	}
	if entries, _ := led.Audit(t.Context(), stores.AuditFilter{RequestID: reqID}); len(entries) != 3 {
		t.Fatalf("%d entries after a late social success, want 3", len(entries))
	}
}

// Every channel found nothing of the contact: not found, not succeeded.
func TestNothingFoundIsNotFound(t *testing.T) {
	a, rec, led, now := setup(t)
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []schemas.Channel{schemas.ChannelVoice, schemas.ChannelSocial} {
		if err := a.onResult(msg(t, result(ch, schemas.StatusSucceeded, 0))); err != nil {
			t.Fatal(err)
		}
	}
	if rec.count("t.finalize") != 1 {
		t.Fatal("phase 2 must still run: the index may hold the contact alone")
	}
	var fin schemas.FinalizeRequested
	if err := schemas.Decode(rec.msgs["t.finalize"][0].Payload, a.Rule, &fin); err != nil || fin.RequestDigest != request(*now).ContentDigest() {
		t.Fatalf("finalize %+v %v: want the request's digest", fin, err)
	}
	if err := a.onResult(msg(t, result(schemas.ChannelContactSearch, schemas.StatusSucceeded, 0))); err != nil {
		t.Fatal(err)
	}
	out := outcome(t, a, rec, 0)
	if out.Status != schemas.StatusNotFound || out.ErrorCode != "" || out.RequestDigest != request(*now).ContentDigest() {
		t.Fatalf("outcome %s %q %s", out.Status, out.ErrorCode, out.RequestDigest)
	}
	entries, err := led.Audit(t.Context(), stores.AuditFilter{RequestID: reqID})
	if err != nil || len(entries) != 1 || entries[0].Status != schemas.StatusNotFound {
		t.Fatalf("audit: %v %+v", err, entries)
	}
}

// A channel whose run follows one that ended without a result found
// nothing left, but the lost run may have deleted it: the request is not
// "not found", and the outcome and the audit say that channel's counts are
// a lower bound.
func TestInterruptedRunIsNotNotFound(t *testing.T) {
	a, rec, led, now := setup(t)
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	voice := result(schemas.ChannelVoice, schemas.StatusSucceeded, 0)
	voice.Interrupted = true
	for _, r := range []*schemas.ChannelCompleted{voice, result(schemas.ChannelSocial, schemas.StatusSucceeded, 0),
		result(schemas.ChannelContactSearch, schemas.StatusSucceeded, 0)} {
		if err := a.onResult(msg(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	out := outcome(t, a, rec, 0)
	if out.Status != schemas.StatusSucceeded {
		t.Fatalf("outcome %s, want succeeded", out.Status)
	}
	for _, co := range out.Channels {
		if co.Interrupted != (co.Channel == schemas.ChannelVoice) {
			t.Fatalf("channel %s interrupted=%v", co.Channel, co.Interrupted)
		}
	}
	entries, err := led.Audit(t.Context(), stores.AuditFilter{RequestID: reqID})
	if err != nil || len(entries) != 1 || !entries[0].Channels[0].Interrupted || entries[0].Channels[0].Channel != schemas.ChannelVoice {
		t.Fatalf("audit: %v %+v", err, entries)
	}
	if h, err := stores.AuditHash(entries[0]); err != nil || h != entries[0].Hash {
		t.Fatalf("the stored entry does not hash as written: %v", err)
	}
}

// Anything found anywhere, even only in the index, is a deletion.
func TestFoundOnlyInTheIndexSucceeds(t *testing.T) {
	a, rec, _, now := setup(t)
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []schemas.Channel{schemas.ChannelVoice, schemas.ChannelSocial} {
		if err := a.onResult(msg(t, result(ch, schemas.StatusSucceeded, 0))); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.onResult(msg(t, result(schemas.ChannelContactSearch, schemas.StatusSucceeded, 1))); err != nil {
		t.Fatal(err)
	}
	if out := outcome(t, a, rec, 0); out.Status != schemas.StatusSucceeded {
		t.Fatalf("outcome %s", out.Status)
	}
}

// An outcome whose publish failed (after its audit entry was written) is
// published by the sweep, once, with one audit entry.
func TestUnpublishedOutcomeIsPublishedBySweep(t *testing.T) {
	a, rec, led, now := setup(t)
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	rec.failNext("t.outcomes", 1)
	*now = now.Add(DefaultDeadline + time.Second)
	if err := a.expire(t.Context(), reqID); err == nil {
		t.Fatal("the failed publish was not reported")
	}
	if rec.count("t.outcomes") != 0 {
		t.Fatal("published despite the failure")
	}
	if ids, err := led.Unpublished(t.Context(), 10); err != nil || len(ids) != 1 {
		t.Fatalf("Unpublished = %v, %v", ids, err)
	}
	// Within the grace whoever stored it may be publishing it right now.
	a.sweep(t.Context())
	if n := rec.count("t.outcomes"); n != 0 {
		t.Fatalf("%d outcomes published within the grace, want 0", n)
	}
	*now = now.Add(publishGrace)
	a.sweep(t.Context())
	a.sweep(t.Context())
	if n := rec.count("t.outcomes"); n != 1 {
		t.Fatalf("%d outcomes published, want 1", n)
	}
	if st, err := led.State(t.Context(), reqID); err != nil || !st.Published {
		t.Fatalf("not marked published: %v", err)
	}
	if entries, err := led.Audit(t.Context(), stores.AuditFilter{}); err != nil || len(entries) != 1 {
		t.Fatalf("audit: %v, %d entries", err, len(entries))
	}
}

func outcome(t *testing.T, a *Aggregator, rec *recorder, i int) schemas.DeletionCompleted {
	t.Helper()
	rec.mu.Lock()
	msgs := rec.msgs["t.outcomes"]
	rec.mu.Unlock()
	if len(msgs) <= i {
		t.Fatalf("%d outcomes published, want at least %d", len(msgs), i+1)
	}
	var out schemas.DeletionCompleted
	if err := schemas.Decode(msgs[i].Payload, a.Rule, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func channel(out schemas.DeletionCompleted, ch schemas.Channel) schemas.ChannelOutcome {
	for _, c := range out.Channels {
		if c.Channel == ch {
			return c
		}
	}
	return schemas.ChannelOutcome{}
}

func wantChannels(t *testing.T, out schemas.DeletionCompleted, want map[schemas.Channel]schemas.Status) {
	t.Helper()
	for _, ch := range out.Channels {
		if ch.Status != want[ch.Channel] {
			t.Errorf("%s: %s, want %s", ch.Channel, ch.Status, want[ch.Channel])
		}
	}
}

func TestDeadline(t *testing.T) {
	a, rec, _, now := setup(t)
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	if err := a.expire(t.Context(), reqID); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.outcomes") != 0 {
		t.Fatal("expired before the deadline")
	}
	*now = now.Add(DefaultDeadline + time.Second)
	ids, err := a.Ledger.Overdue(t.Context(), *now, 10)
	if err != nil || len(ids) != 1 {
		t.Fatalf("overdue: %v %v", ids, err)
	}
	if err := a.expire(t.Context(), reqID); err != nil {
		t.Fatal(err)
	}
	out := outcome(t, a, rec, 0)
	if out.ErrorCode != schemas.ErrCodeDeadline {
		t.Fatalf("outcome %s %s", out.Status, out.ErrorCode)
	}
	wantChannels(t, out, map[schemas.Channel]schemas.Status{schemas.ChannelVoice: schemas.StatusFailed,
		schemas.ChannelSocial: schemas.StatusFailed, schemas.ChannelContactSearch: schemas.StatusSkipped})
}

func TestInvalidEventIsRejected(t *testing.T) {
	a, _, _, _ := setup(t)
	m := message.NewMessage("1", []byte(`{"type":"DeletionRequested","contact_ids":["*"]}`))
	m.SetContext(t.Context())
	if err := onRequest(a, m); err == nil {
		t.Fatal("accepted an invalid event")
	}
}

// A request that lists fewer channels than the data map maps still waits
// for every mapped channel before the index goes.
func TestRequestCannotNarrowChannels(t *testing.T) {
	a, rec, _, now := setup(t)
	a.Required = []schemas.Channel{schemas.ChannelVoice, schemas.ChannelMessaging, schemas.ChannelContactSearch}
	r := request(*now)
	r.Channels = []schemas.Channel{schemas.ChannelContactSearch}
	if err := onRequest(a, msg(t, r)); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.finalize") != 0 {
		t.Fatal("phase 2 started for a request that listed no artefact channel")
	}
	for _, ch := range []schemas.Channel{schemas.ChannelVoice, schemas.ChannelMessaging} {
		if err := a.onResult(msg(t, result(ch, schemas.StatusSucceeded, 1))); err != nil {
			t.Fatal(err)
		}
	}
	if rec.count("t.finalize") != 1 {
		t.Fatal("phase 2 did not start once the mapped channels succeeded")
	}
}

// A request ID reused with other content is refused: audited as such,
// answered with a refused outcome carrying the other content's digest, sent
// to the dlq, and kept apart from the request the ID belongs to.
func TestReusedRequestIDIsRefused(t *testing.T) {
	a, rec, led, now := setup(t)
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	other := request(*now)
	other.ContactIDs = []string{"7f1c2b3a-9e8d-4c6b-a5f4-e3d2c1b0a987"}
	other.RequestedBy, other.Source = "crm-service", schemas.SourceUpstream
	for range 2 { // redelivered: still one audit entry
		err := onRequest(a, msg(t, other))
		if !errors.Is(err, schemas.ErrInvalidEvent) || !strings.Contains(err.Error(), reqID) ||
			strings.Contains(err.Error(), other.ContactIDs[0]) {
			t.Fatalf("reused request ID: err = %v, want an invalid event naming the request ID only", err)
		}
	}
	refused := outcome(t, a, rec, 0)
	if refused.Status != schemas.StatusRefused || refused.ErrorCode != schemas.ErrCodeRequestIDConflict ||
		refused.RequestDigest != other.ContentDigest() || refused.ContactIDs[0] != other.ContactIDs[0] || len(refused.Channels) != 0 {
		t.Fatalf("refused outcome %+v", refused)
	}
	entries, err := led.Audit(t.Context(), stores.AuditFilter{RequestID: reqID})
	if err != nil || len(entries) != 1 || entries[0].Status != schemas.StatusRefused ||
		entries[0].Functionality != "Upstream Request" || entries[0].Actor != "crm-service" {
		t.Fatalf("audit: %v %+v", err, entries)
	}
	st, err := led.State(t.Context(), reqID)
	if err != nil || st.Outcome != nil || st.Request.ContactIDs[0] != contact {
		t.Fatalf("the request's state was disturbed: %v %+v", err, st)
	}
	// A result for the refused content is never joined.
	stray := result(schemas.ChannelVoice, schemas.StatusSucceeded, 9)
	stray.RequestDigest = other.ContentDigest()
	if err := a.onResult(msg(t, stray)); !errors.Is(err, schemas.ErrInvalidEvent) {
		t.Fatalf("a result for the refused content: err = %v", err)
	}
	if st, _ := led.State(t.Context(), reqID); len(st.Results) != 0 {
		t.Fatalf("joined: %+v", st.Results)
	}
	// The request itself goes on, and a true redelivery is not refused.
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatalf("a true redelivery was refused: %v", err)
	}
	for _, ch := range []schemas.Channel{schemas.ChannelVoice, schemas.ChannelSocial, schemas.ChannelContactSearch} {
		if err := a.onResult(msg(t, result(ch, schemas.StatusSucceeded, 1))); err != nil {
			t.Fatal(err)
		}
	}
	done := outcome(t, a, rec, rec.count("t.outcomes")-1)
	if done.Status != schemas.StatusSucceeded || done.ContactIDs[0] != contact || done.RequestDigest != request(*now).ContentDigest() {
		t.Fatalf("outcome %+v", done)
	}
	if n, err := led.VerifyChain(t.Context()); err != nil || n != 2 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
}

// Once phase 2 started, the deadline waits one more period for the index.
func TestDeadlineWaitsForPhaseTwo(t *testing.T) {
	a, rec, _, now := setup(t)
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []schemas.Channel{schemas.ChannelVoice, schemas.ChannelSocial} {
		if err := a.onResult(msg(t, result(ch, schemas.StatusSucceeded, 1))); err != nil {
			t.Fatal(err)
		}
	}
	*now = now.Add(DefaultDeadline + time.Second)
	if err := a.expire(t.Context(), reqID); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.outcomes") != 0 {
		t.Fatal("failed a request whose index deletion was under way")
	}
	*now = now.Add(DefaultDeadline)
	if err := a.expire(t.Context(), reqID); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.outcomes") != 1 {
		t.Fatal("no outcome after the extended deadline")
	}
}

// testProducers is the producer policy of the tests: requests are erasure's
// own, signed with the test event key.
var testProducers = func() consumers.Producers {
	k, err := schemas.NewKeyring("test", schemas.EventKey{ID: "test", Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		panic(err)
	}
	return consumers.Producers{Internal: k}
}()

// onRequest hands m to the aggregator as its router does: signed, then
// through the producer check.
func onRequest(a *Aggregator, m *message.Message) error {
	if err := producers.Sign(testProducers.Internal, m); err != nil {
		return err
	}
	_, err := consumers.VerifyProducer(testProducers, a.Topics.Requests())(func(m *message.Message) ([]*message.Message, error) {
		return nil, a.onRequest(m)
	})(m)
	return err
}
