package consumers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// memStates is a ledger's join state in memory.
type memStates map[string]stores.RequestState

func (m memStates) State(_ context.Context, id string) (stores.RequestState, error) {
	st, ok := m[id]
	if !ok {
		return stores.RequestState{}, stores.ErrNotFound
	}
	return st, nil
}

// phase1Succeeded is the state of req once every artefact channel succeeded.
func phase1Succeeded(req schemas.DeletionRequested) memStates {
	st := stores.RequestState{Request: req, Results: map[schemas.Channel]schemas.ChannelCompleted{}}
	for _, ch := range schemas.ArtefactChannels {
		st.Results[ch] = schemas.ChannelCompleted{RequestID: req.RequestID, Channel: ch, Status: schemas.StatusSucceeded}
	}
	return memStates{req.RequestID: st}
}

func testKeyring(t *testing.T, signID string, ids ...string) *schemas.Keyring {
	t.Helper()
	var keys []schemas.EventKey
	for _, id := range ids {
		keys = append(keys, schemas.EventKey{ID: id, Secret: []byte(strings.Repeat(id, 32))[:32]})
	}
	k, err := schemas.NewKeyring(signID, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const tFinalizeTopic = "t.finalize"

// finalizeMsg is a finalize of req, signed with keys unless keys is nil.
func finalizeMsg(t *testing.T, req schemas.DeletionRequested, keys *schemas.Keyring) *message.Message {
	t.Helper()
	fin := &schemas.FinalizeRequested{RequestID: req.RequestID, ContactIDs: req.ContactIDs, RequestedAt: time.Now().UTC(),
		RequestDigest: req.ContentDigest()}
	m, err := producers.NewMessage(fin, req.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if keys != nil {
		if err := producers.Sign(keys, m); err != nil {
			t.Fatal(err)
		}
	}
	m.SetContext(t.Context())
	return m
}

// A forged finalize deletes nothing, whatever it lacks: our signature, our
// key, a request the ledger knows, or artefact channels that all succeeded.
// Each is an invalid event (the dlq) whose reason names no contact.
func TestForgedFinalizeDeletesNothing(t *testing.T) {
	ours := testKeyring(t, "k1", "k1")
	theirs := testKeyring(t, "kx", "kx")
	_, req := requestMsg(t, tC1)
	failed := phase1Succeeded(req)
	st := failed[req.RequestID]
	st.Results[schemas.ChannelVoice] = schemas.ChannelCompleted{RequestID: req.RequestID, Channel: schemas.ChannelVoice, Status: schemas.StatusFailed}
	for _, tc := range []struct {
		name   string
		keys   *schemas.Keyring
		states memStates
		reason string
	}{
		{"unsigned", nil, phase1Succeeded(req), "unsigned event on " + tFinalizeTopic},
		{"wrong key", theirs, phase1Succeeded(req), `unknown key "kx"`},
		{"unknown request", ours, memStates{}, "request unknown to the ledger"},
		{"failed channel", ours, failed, "channel voice has not succeeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			er := &countingEraser{}
			c := newChannel(schemas.ChannelContactSearch, er, &memBinder{})
			c.States = tc.states
			h := Verify(ours, tFinalizeTopic)(c.failureResult(c.handleFinalize))
			out, err := h(finalizeMsg(t, req, tc.keys))
			if !errors.Is(err, schemas.ErrInvalidEvent) || len(out) != 0 {
				t.Fatalf("err = %v, %d results; want an invalid event and no result", err, len(out))
			}
			if !strings.Contains(err.Error(), tc.reason) || strings.Contains(err.Error(), tC1) {
				t.Fatalf("reason %q: want %q and no contact ID", err, tc.reason)
			}
			if len(er.calls) != 0 {
				t.Fatalf("the index was touched: %v", er.calls)
			}
		})
	}
	t.Run("genuine", func(t *testing.T) {
		er := &countingEraser{}
		c := newChannel(schemas.ChannelContactSearch, er, &memBinder{})
		c.States = phase1Succeeded(req)
		h := Verify(ours, tFinalizeTopic)(c.failureResult(c.handleFinalize))
		if _, err := h(finalizeMsg(t, req, ours)); err != nil || len(er.calls) != 1 {
			t.Fatalf("err = %v, %d calls", err, len(er.calls))
		}
	})
}

// Rotation: an event signed with the old key is accepted while both keys
// are configured, and refused once the old one is removed.
func TestVerifyKeyRotation(t *testing.T) {
	_, req := requestMsg(t, tC1)
	old := testKeyring(t, "old", "old")
	signedOld := finalizeMsg(t, req, old)
	both := testKeyring(t, "new", "old", "new")
	if err := VerifyMessage(both, tFinalizeTopic, signedOld); err != nil {
		t.Fatalf("old key while both are configured: %v", err)
	}
	if err := VerifyMessage(both, tFinalizeTopic, finalizeMsg(t, req, both)); err != nil {
		t.Fatalf("new key: %v", err)
	}
	newOnly := testKeyring(t, "new", "new")
	err := VerifyMessage(newOnly, tFinalizeTopic, signedOld)
	if !errors.Is(err, schemas.ErrInvalidEvent) || !strings.Contains(err.Error(), `"old"`) {
		t.Fatalf("old key after removal: %v", err)
	}
	// A payload changed after signing fails under the right key.
	tampered := finalizeMsg(t, req, newOnly)
	tampered.Payload = append([]byte(nil), tampered.Payload...)
	tampered.Payload[len(tampered.Payload)-2] ^= 1
	if err := VerifyMessage(newOnly, tFinalizeTopic, tampered); !errors.Is(err, schemas.ErrInvalidEvent) {
		t.Fatalf("tampered payload: %v", err)
	}
}
