package consumers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
)

type countingEraser struct {
	mu    sync.Mutex
	calls [][]string
	err   error
}

func (e *countingEraser) EraseChannel(_ context.Context, _ schemas.Channel, ids []string, _ locate.Finished) ([]schemas.ArtefactCount, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, ids)
	if e.err != nil {
		return nil, e.err
	}
	return []schemas.ArtefactCount{{Artefact: "call_recordings", Before: 1, Deleted: 1}}, nil
}

// memBinder is a first-writer-wins binding in memory, with run counts.
type memBinder struct {
	mu   sync.Mutex
	m    map[string]string
	runs map[string]int
}

func (b *memBinder) MarkRun(_ context.Context, id string, ch schemas.Channel) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runs == nil {
		b.runs = map[string]int{}
	}
	b.runs[id+"/"+string(ch)]++
	return b.runs[id+"/"+string(ch)] == 1, nil
}

func (b *memBinder) BindRequest(_ context.Context, id, digest string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]string{}
	}
	if d, ok := b.m[id]; ok {
		return d, nil
	}
	b.m[id] = digest
	return digest, nil
}

const (
	tReqID = "019ac4a0-1111-7000-8000-000000000001"
	tC1    = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"
	tC2    = "7f1c2b3a-9e8d-4c6b-a5f4-e3d2c1b0a987"
)

func newChannel(name schemas.Channel, er Eraser, b RequestBinder) *Channel {
	return &Channel{Name: name, Eraser: er, Binder: b, Holds: &memHolds{}, Rule: schemas.DefaultContactIDRule,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func requestMsg(t *testing.T, contacts ...string) (*message.Message, schemas.DeletionRequested) {
	t.Helper()
	r := schemas.DeletionRequested{RequestID: tReqID, ContactIDs: contacts, RequestedBy: "dpo", RequestedAt: time.Now().UTC(),
		Source: schemas.SourceUI, Channels: schemas.AllChannels}
	m, err := producers.NewMessage(&r, r.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	m.SetContext(t.Context())
	// As VerifyProducer leaves it: the handler's own tests start after it.
	m.Metadata.Set(headerProducer, producerInternal+"test")
	return m, r
}

func decodeResult(t *testing.T, msgs []*message.Message) schemas.ChannelCompleted {
	t.Helper()
	if len(msgs) != 1 {
		t.Fatalf("%d results, want 1", len(msgs))
	}
	var res schemas.ChannelCompleted
	if err := schemas.Decode(msgs[0].Payload, schemas.DefaultContactIDRule, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// A request ID reused with other contacts deletes nothing and goes to the
// dlq (an invalid event) with a reason that names the request ID only.
func TestChannelRefusesReusedRequestID(t *testing.T) {
	er, b := &countingEraser{}, &memBinder{}
	c := newChannel(schemas.ChannelVoice, er, b)
	first, req := requestMsg(t, tC1)
	out, err := c.handleRequest(first)
	if err != nil {
		t.Fatal(err)
	}
	if res := decodeResult(t, out); res.RequestDigest != req.ContentDigest() {
		t.Fatalf("result digest %q, want the request's", res.RequestDigest)
	}
	reused, _ := requestMsg(t, tC2)
	_, err = c.failureResult(c.handleRequest)(reused)
	if !errors.Is(err, schemas.ErrInvalidEvent) || !strings.Contains(err.Error(), tReqID) || strings.Contains(err.Error(), tC2) {
		t.Fatalf("reused request ID: err = %v", err)
	}
	if len(er.calls) != 1 || er.calls[0][0] != tC1 {
		t.Fatalf("eraser calls %v: the second contact reached a store", er.calls)
	}
	// The true request, redelivered, still runs.
	again, _ := requestMsg(t, tC1)
	if _, err := c.handleRequest(again); err != nil || len(er.calls) != 2 {
		t.Fatalf("redelivery: %v, %d calls", err, len(er.calls))
	}
}

func TestChannelFinalizeChecksBinding(t *testing.T) {
	er, b := &countingEraser{}, &memBinder{}
	c := newChannel(schemas.ChannelContactSearch, er, b)
	_, req := requestMsg(t, tC1)
	b.BindRequest(t.Context(), tReqID, req.ContentDigest())
	c.States = phase1Succeeded(req)
	finalize := func(digest string) (*message.Message, error) {
		fin := &schemas.FinalizeRequested{RequestID: tReqID, ContactIDs: []string{tC1}, RequestedAt: time.Now().UTC(), RequestDigest: digest}
		m, err := producers.NewMessage(fin, tReqID)
		if err == nil {
			m.SetContext(t.Context())
		}
		return m, err
	}
	other := req
	other.ContactIDs = []string{tC2}
	for name, d := range map[string]string{"no digest": "", "other content": other.ContentDigest()} {
		m, err := finalize(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.handleFinalize(m); !errors.Is(err, schemas.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want an invalid event", name, err)
		}
	}
	if len(er.calls) != 0 {
		t.Fatalf("the index was touched: %v", er.calls)
	}
	m, _ := finalize(req.ContentDigest())
	out, err := c.handleFinalize(m)
	if err != nil || len(er.calls) != 1 {
		t.Fatalf("finalize of the bound content: %v, %d calls", err, len(er.calls))
	}
	if res := decodeResult(t, out); res.RequestDigest != req.ContentDigest() {
		t.Fatalf("result digest %q", res.RequestDigest)
	}
}

// A store failure becomes a failed result that still names the content.
func TestChannelFailureResultCarriesDigest(t *testing.T) {
	er := &countingEraser{err: stores.Permanent(errors.New("access denied"))}
	c := newChannel(schemas.ChannelVoice, er, &memBinder{})
	m, req := requestMsg(t, tC1)
	out, err := c.failureResult(c.handleRequest)(m)
	if err != nil {
		t.Fatal(err)
	}
	res := decodeResult(t, out)
	if res.Status != schemas.StatusFailed || res.ErrorCode != schemas.ErrCodeStoreRejected || res.RequestDigest != req.ContentDigest() {
		t.Fatalf("failure result %+v", res)
	}
}

func TestChannelWithoutBinderDeletesNothing(t *testing.T) {
	er := &countingEraser{}
	c := newChannel(schemas.ChannelVoice, er, nil)
	m, _ := requestMsg(t, tC1)
	if _, err := c.handleRequest(m); !errors.Is(err, stores.ErrPermanent) || len(er.calls) != 0 {
		t.Fatalf("err = %v, %d calls", err, len(er.calls))
	}
}

// scriptedEraser plays one attempt per call: what it finishes goes into
// done, as the Locator's does, and what it deleted is returned either way.
type scriptedEraser struct {
	calls    int
	attempts []func(done locate.Finished) ([]schemas.ArtefactCount, error)
}

func (e *scriptedEraser) EraseChannel(_ context.Context, _ schemas.Channel, _ []string, done locate.Finished) ([]schemas.ArtefactCount, error) {
	f := e.attempts[e.calls]
	e.calls++
	return f(done)
}

// Counts add up across attempts: a retry does not redo what an earlier
// attempt finished, and what a failed attempt deleted is not forgotten,
// whether the request then succeeds or fails.
func TestChannelCountsAddUpAcrossAttempts(t *testing.T) {
	first := func(done locate.Finished) ([]schemas.ArtefactCount, error) {
		done["qa_evaluations"] = schemas.ArtefactCount{Artefact: "qa_evaluations", Before: 4, Deleted: 4}
		return []schemas.ArtefactCount{{Artefact: "qa_evaluations", Before: 4, Deleted: 4}, {Artefact: "call_recordings", Before: 3, Deleted: 3, After: 0}},
			stores.Retryable(errors.New("verify: connection reset"))
	}
	second := func(done locate.Finished) ([]schemas.ArtefactCount, error) {
		if _, ok := done["qa_evaluations"]; !ok {
			t.Error("the retry was not told qa_evaluations was finished")
		}
		return []schemas.ArtefactCount{done["qa_evaluations"], {Artefact: "call_recordings", Before: 1, Deleted: 1}}, nil
	}
	er := &scriptedEraser{attempts: []func(locate.Finished) ([]schemas.ArtefactCount, error){first, second}}
	c := newChannel(schemas.ChannelVoice, er, &memBinder{})
	m, _ := requestMsg(t, tC1, tC2)
	if _, err := c.handleRequest(m); err == nil {
		t.Fatal("first attempt succeeded")
	}
	out, err := c.handleRequest(m)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, a := range decodeResult(t, out).Artefacts {
		got[a.Artefact] = a.Deleted
	}
	if got["qa_evaluations"] != 4 || got["call_recordings"] != 4 {
		t.Fatalf("deleted %v, want qa_evaluations 4 and call_recordings 3+1", got)
	}

	// A request that fails for good still reports what was deleted.
	er = &scriptedEraser{attempts: []func(locate.Finished) ([]schemas.ArtefactCount, error){first}}
	c = newChannel(schemas.ChannelVoice, er, &memBinder{})
	m, _ = requestMsg(t, tC1, tC2)
	out, err = c.failureResult(c.handleRequest)(m)
	if err != nil {
		t.Fatal(err)
	}
	res := decodeResult(t, out)
	got = map[string]int64{}
	for _, a := range res.Artefacts {
		got[a.Artefact] = a.Deleted
	}
	if res.Status != schemas.StatusFailed || got["qa_evaluations"] != 4 || got["call_recordings"] != 3 {
		t.Fatalf("failed result %s %v, want what the attempt deleted", res.Status, got)
	}
}

// A request past its deadline is not started: no store is touched.
func TestChannelStopsAtTheRequestDeadline(t *testing.T) {
	er := &countingEraser{}
	c := newChannel(schemas.ChannelVoice, er, &memBinder{})
	c.Deadline = time.Second
	c.Now = func() time.Time { return time.Now().Add(2 * time.Second) }
	m, _ := requestMsg(t, tC1)
	out, err := c.failureResult(c.handleRequest)(m)
	if err != nil {
		t.Fatal(err)
	}
	if res := decodeResult(t, out); res.Status != schemas.StatusFailed || res.ErrorCode != schemas.ErrCodeDeadline || len(er.calls) != 0 {
		t.Fatalf("result %s %s after %d erase calls; want deadline_exceeded and none", res.Status, res.ErrorCode, len(er.calls))
	}
}

// A run that follows one which ended without a result (its process killed
// after deleting, before publishing) says so: its counts cannot include
// what the lost run deleted. Retries within one process are not such runs.
func TestRunAfterALostRunIsMarkedInterrupted(t *testing.T) {
	b := &memBinder{}
	er := &countingEraser{err: stores.Retryable(errors.New("store blip"))}
	c := newChannel(schemas.ChannelVoice, er, b)
	m, _ := requestMsg(t, tC1)
	if _, err := c.handleRequest(m); err == nil {
		t.Fatal("the first attempt should fail")
	}
	er.err = nil
	out, err := c.handleRequest(m) // a retry in the same process
	if err != nil {
		t.Fatal(err)
	}
	if res := decodeResult(t, out); res.Interrupted {
		t.Fatalf("a retry in the same process is marked interrupted: %+v", res)
	}

	// The same request delivered to a new process (a restart: no progress
	// in memory) after a run that never published.
	m2, _ := requestMsg(t, tC1)
	restarted := newChannel(schemas.ChannelVoice, &countingEraser{}, b)
	b.MarkRun(t.Context(), tReqID, schemas.ChannelSocial) // another channel's runs do not count
	if _, err := b.MarkRun(t.Context(), "019ac4a0-1111-7000-8000-0000000000ff", schemas.ChannelVoice); err != nil {
		t.Fatal(err)
	}
	out, err = restarted.handleRequest(m2)
	if err != nil {
		t.Fatal(err)
	}
	if res := decodeResult(t, out); !res.Interrupted || res.Status != schemas.StatusSucceeded {
		t.Fatalf("the run after a lost one: %+v", res)
	}
}
