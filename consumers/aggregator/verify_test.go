package aggregator

import (
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
)

// A forged ChannelCompleted (unsigned, or signed with a key we do not
// hold) is refused before it is joined: it cannot make a request succeed.
func TestForgedChannelResultRefused(t *testing.T) {
	a, _, led, now := setup(t)
	if err := onRequest(a, msg(t, request(*now))); err != nil {
		t.Fatal(err)
	}
	key := func(id string) *schemas.Keyring {
		k, err := schemas.NewKeyring(id, schemas.EventKey{ID: id, Secret: []byte(strings.Repeat("s", 32) + id)})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ours, theirs := key("ours"), key("theirs")
	topic := a.Topics.ChannelResults()
	h := consumers.Verify(ours, topic)(func(m *message.Message) ([]*message.Message, error) { return nil, a.onResult(m) })
	for name, signer := range map[string]*schemas.Keyring{"unsigned": nil, "wrong key": theirs} {
		res := &schemas.ChannelCompleted{RequestID: reqID, Channel: schemas.ChannelVoice, Status: schemas.StatusSucceeded,
			Artefacts: []schemas.ArtefactCount{}, CompletedAt: *now, RequestDigest: request(*now).ContentDigest()}
		m := msg(t, res)
		if signer != nil {
			if err := producers.Sign(signer, m); err != nil {
				t.Fatal(err)
			}
		}
		_, err := h(m)
		if !errors.Is(err, schemas.ErrInvalidEvent) || !strings.Contains(err.Error(), topic) {
			t.Fatalf("%s: err = %v, want an invalid event naming the topic", name, err)
		}
		st, err := led.State(t.Context(), reqID)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Results[schemas.ChannelVoice]; ok {
			t.Fatalf("%s: forged result joined", name)
		}
	}
}
