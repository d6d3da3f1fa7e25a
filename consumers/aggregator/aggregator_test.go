package aggregator

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/sqlite"
)

type recorder struct {
	mu   sync.Mutex
	msgs map[string][]*message.Message
}

func (r *recorder) Publish(topic string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
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
		Artefacts: []schemas.ArtefactCount{{Artefact: "x", Before: deleted, Deleted: deleted}}}
}

func TestJoinOutOfOrderRedeliveredAndPhaseTwoOnce(t *testing.T) {
	a, rec, led, now := setup(t)
	// A result can arrive before its request.
	if err := a.onResult(msg(t, result(schemas.ChannelVoice, schemas.StatusSucceeded, 3))); err != nil {
		t.Fatal(err)
	}
	if err := a.onRequest(msg(t, request(*now))); err != nil {
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
	if err := a.onRequest(msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.outcomes") != 1 {
		t.Fatal("redelivered request published a second outcome")
	}
}

func TestFailedChannelSkipsPhaseTwo(t *testing.T) {
	a, rec, _, now := setup(t)
	if err := a.onRequest(msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	f := result(schemas.ChannelSocial, schemas.StatusFailed, 0)
	f.ErrorCode = schemas.ErrCodeStoreUnavailable
	if err := a.onResult(msg(t, f)); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.finalize") != 0 {
		t.Fatal("phase 2 started after a failure")
	}
	var out schemas.DeletionCompleted
	if err := schemas.Decode(rec.msgs["t.outcomes"][0].Payload, a.Rule, &out); err != nil {
		t.Fatal(err)
	}
	if out.Status != schemas.StatusFailed || out.ErrorCode != schemas.ErrCodeChannelFailed {
		t.Fatalf("outcome %s %s", out.Status, out.ErrorCode)
	}
	for _, ch := range out.Channels {
		want := map[schemas.Channel]schemas.Status{schemas.ChannelVoice: schemas.StatusSkipped, schemas.ChannelSocial: schemas.StatusFailed, schemas.ChannelContactSearch: schemas.StatusSkipped}[ch.Channel]
		if ch.Status != want {
			t.Errorf("%s: %s, want %s", ch.Channel, ch.Status, want)
		}
	}
	// A late success is recorded but does not change the outcome.
	if err := a.onResult(msg(t, result(schemas.ChannelVoice, schemas.StatusSucceeded, 1))); err != nil {
		t.Fatal(err)
	}
	if rec.count("t.outcomes") != 1 {
		t.Fatal("late result published another outcome")
	}
}

func TestDeadline(t *testing.T) {
	a, rec, _, now := setup(t)
	if err := a.onRequest(msg(t, request(*now))); err != nil {
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
	var out schemas.DeletionCompleted
	if err := schemas.Decode(rec.msgs["t.outcomes"][0].Payload, a.Rule, &out); err != nil {
		t.Fatal(err)
	}
	if out.ErrorCode != schemas.ErrCodeDeadline {
		t.Fatalf("outcome %s %s", out.Status, out.ErrorCode)
	}
}

func TestInvalidEventIsRejected(t *testing.T) {
	a, _, _, _ := setup(t)
	m := message.NewMessage("1", []byte(`{"type":"DeletionRequested","contact_ids":["*"]}`))
	m.SetContext(t.Context())
	if err := a.onRequest(m); err == nil {
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
	if err := a.onRequest(msg(t, r)); err != nil {
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

func TestReusedRequestIDIsRejected(t *testing.T) {
	a, _, _, now := setup(t)
	if err := a.onRequest(msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	other := request(*now)
	other.ContactIDs = []string{"7f1c2b3a-9e8d-4c6b-a5f4-e3d2c1b0a987"}
	if err := a.onRequest(msg(t, other)); !errors.Is(err, schemas.ErrInvalidEvent) {
		t.Fatalf("reused request ID accepted: %v", err)
	}
	if err := a.onRequest(msg(t, request(*now))); err != nil {
		t.Fatalf("a true redelivery was refused: %v", err)
	}
}

// Once phase 2 started, the deadline waits one more period for the index.
func TestDeadlineWaitsForPhaseTwo(t *testing.T) {
	a, rec, _, now := setup(t)
	if err := a.onRequest(msg(t, request(*now))); err != nil {
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
