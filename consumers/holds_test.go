package consumers

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// memHolds is the holds in force, in memory.
type memHolds struct {
	mu    sync.Mutex
	held  map[string]bool
	err   error
	calls int
}

func (h *memHolds) set(id string, held bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held == nil {
		h.held = map[string]bool{}
	}
	h.held[id] = held
}

func (h *memHolds) Held(_ context.Context, ids ...string) (map[string]stores.Hold, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.err != nil {
		return nil, h.err
	}
	out := map[string]stores.Hold{}
	for _, id := range ids {
		if h.held[id] {
			out[id] = stores.Hold{ContactID: id}
		}
	}
	return out, nil
}

// A held contact never reaches a store; the others of its request do, and
// the result names the held ones.
func TestChannelLeavesHeldContactsAlone(t *testing.T) {
	er := &countingEraser{}
	c := newChannel(schemas.ChannelVoice, er, &memBinder{})
	holds := &memHolds{}
	holds.set(tC2, true)
	c.Holds = holds
	m, _ := requestMsg(t, tC1, tC2)
	out, err := c.handleRequest(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(er.calls) != 1 || !slices.Equal(er.calls[0], []string{tC1}) {
		t.Fatalf("eraser calls %v, want only the free contact", er.calls)
	}
	res := decodeResult(t, out)
	if res.Status != schemas.StatusSucceeded || !slices.Equal(res.HeldContactIDs, []string{tC2}) {
		t.Fatalf("result %+v, want succeeded with the held contact named", res)
	}
}

// A request whose every contact is held touches no store and says so.
func TestChannelAllHeldTouchesNothing(t *testing.T) {
	er := &countingEraser{}
	c := newChannel(schemas.ChannelVoice, er, &memBinder{})
	holds := &memHolds{}
	holds.set(tC1, true)
	holds.set(tC2, true)
	c.Holds = holds
	m, _ := requestMsg(t, tC1, tC2)
	out, err := c.handleRequest(m)
	if err != nil {
		t.Fatal(err)
	}
	res := decodeResult(t, out)
	if len(er.calls) != 0 || res.Status != schemas.StatusSucceeded || len(res.Artefacts) != 0 ||
		!slices.Equal(res.HeldContactIDs, []string{tC1, tC2}) {
		t.Fatalf("%d eraser calls, result %+v", len(er.calls), res)
	}
}

// Holds are read on every attempt: one placed while a request retries is
// honoured by the retry, and a hold check that fails erases nothing and is
// retried like any store failure.
func TestChannelChecksHoldsOnEveryAttempt(t *testing.T) {
	er := &countingEraser{err: stores.Retryable(errors.New("connection reset"))}
	c := newChannel(schemas.ChannelVoice, er, &memBinder{})
	holds := &memHolds{}
	c.Holds = holds
	m, _ := requestMsg(t, tC1)
	if _, err := c.handleRequest(m); err == nil {
		t.Fatal("first attempt succeeded")
	}
	holds.set(tC1, true)
	er.err = nil
	out, err := c.handleRequest(m)
	if err != nil {
		t.Fatal(err)
	}
	if res := decodeResult(t, out); len(er.calls) != 1 || !slices.Equal(res.HeldContactIDs, []string{tC1}) {
		t.Fatalf("after the hold: %d eraser calls, result %+v", len(er.calls), res)
	}

	holds.err = stores.Retryable(errors.New("ledger unavailable"))
	m2, _ := requestMsg(t, tC2)
	_, err = c.handleRequest(m2)
	if err == nil || !stores.IsRetryable(err) || len(er.calls) != 1 {
		t.Fatalf("hold check failed: err = %v (retryable %v), %d eraser calls", err, stores.IsRetryable(err), len(er.calls))
	}
}

func TestChannelWithoutHoldsDeletesNothing(t *testing.T) {
	er := &countingEraser{}
	c := newChannel(schemas.ChannelVoice, er, &memBinder{})
	c.Holds = nil
	m, _ := requestMsg(t, tC1)
	if _, err := c.handleRequest(m); !errors.Is(err, stores.ErrPermanent) || len(er.calls) != 0 {
		t.Fatalf("err = %v, %d calls", err, len(er.calls))
	}
}

// The index goes last and is held back too: contact-search checks the holds
// itself rather than trusting the finalize it was sent.
func TestContactSearchHonoursHolds(t *testing.T) {
	er, b := &countingEraser{}, &memBinder{}
	c := newChannel(schemas.ChannelContactSearch, er, b)
	holds := &memHolds{}
	holds.set(tC1, true)
	c.Holds = holds
	_, req := requestMsg(t, tC1, tC2)
	b.BindRequest(t.Context(), tReqID, req.ContentDigest())
	c.States = phase1Succeeded(req)
	fin := &schemas.FinalizeRequested{RequestID: tReqID, ContactIDs: []string{tC1, tC2}, RequestedAt: time.Now().UTC(),
		RequestDigest: req.ContentDigest()}
	m, err := producers.NewMessage(fin, tReqID)
	if err != nil {
		t.Fatal(err)
	}
	m.SetContext(t.Context())
	out, err := c.handleFinalize(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(er.calls) != 1 || !slices.Equal(er.calls[0], []string{tC2}) {
		t.Fatalf("index erase calls %v, want only the free contact", er.calls)
	}
	if res := decodeResult(t, []*message.Message(out)); !slices.Equal(res.HeldContactIDs, []string{tC1}) {
		t.Fatalf("result %+v", res)
	}
}
