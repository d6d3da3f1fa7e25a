package webapi

import (
	"io"
	"log/slog"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
)

// The feed pushes to browsers only what erasure itself signed: a forged
// outcome on the outcomes topic never reaches a toast.
func TestFeedPushesOnlySignedEvents(t *testing.T) {
	ours, err := schemas.NewKeyring("k1", schemas.EventKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := schemas.NewKeyring("k1", schemas.EventKey{ID: "k1", Secret: []byte("fedcba9876543210fedcba9876543210")})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{EventKeys: ours}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	topic := schemas.Topics{Prefix: "test."}.Outcomes()
	msg := func(keys *schemas.Keyring) *message.Message {
		m := message.NewMessage("1", []byte(`{"type":"DeletionCompleted"}`))
		m.Metadata.Set(schemas.HeaderEventType, schemas.TypeDeletionCompleted)
		if keys != nil {
			if err := producers.Sign(keys, m); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	if !s.verified(topic, msg(ours)) {
		t.Error("an outcome signed with our key was refused")
	}
	if s.verified(topic, msg(nil)) {
		t.Error("an unsigned outcome was pushed")
	}
	if s.verified(topic, msg(theirs)) {
		t.Error("an outcome signed with another key was pushed")
	}
	tampered := msg(ours)
	tampered.Payload = []byte(`{"type":"DeletionCompleted","status":"succeeded"}`)
	if s.verified(topic, tampered) {
		t.Error("a tampered outcome was pushed")
	}
}
