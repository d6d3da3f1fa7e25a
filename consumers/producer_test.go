package consumers

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
)

const tRequestsTopic = "t.requests"

// A deletion request reaches a store only with a producer the signature
// proves, and an upstream system cannot speak for the UI, the CLI or a
// replay; the producer recorded is never what the sender wrote.
func TestRequestProducerIsProvenBySignature(t *testing.T) {
	ours := testKeyring(t, "local", "local")
	crm := testKeyring(t, "crm", "crm")
	stranger, err := schemas.NewKeyring("crm", schemas.EventKey{ID: "crm", Secret: []byte(strings.Repeat("x", 32))})
	if err != nil {
		t.Fatal(err)
	}
	upstream := testKeyring(t, "", "crm")

	build := func(src schemas.Source, signer *schemas.Keyring, forgedHeader string) *message.Message {
		r := schemas.DeletionRequested{RequestID: tReqID, ContactIDs: []string{tC1}, RequestedBy: "jane.dpo",
			RequestedAt: time.Now().UTC(), Source: src, Channels: schemas.AllChannels}
		m, err := producers.NewMessage(&r, r.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		if signer != nil {
			if err := producers.Sign(signer, m); err != nil {
				t.Fatal(err)
			}
		}
		if forgedHeader != "" {
			m.Metadata.Set(headerProducer, forgedHeader)
		}
		return m
	}
	for _, c := range []struct {
		name          string
		msg           *message.Message
		allowUnsigned bool
		want          string // "" when refused
	}{
		{"ours, for the UI", build(schemas.SourceUI, ours, ""), false, "erasure:local"},
		{"ours, for a replay", build(schemas.SourceReplay, ours, ""), false, "erasure:local"},
		{"upstream key", build(schemas.SourceUpstream, crm, ""), false, "upstream:crm"},
		{"upstream key claiming the UI", build(schemas.SourceUI, crm, ""), false, ""},
		{"upstream key claiming the CLI", build(schemas.SourceCLI, crm, ""), false, ""},
		{"upstream key ID, wrong secret", build(schemas.SourceUpstream, stranger, ""), false, ""},
		{"unsigned", build(schemas.SourceUpstream, nil, ""), false, ""},
		{"unsigned with a forged producer header", build(schemas.SourceUpstream, nil, "erasure:local"), false, ""},
		{"unsigned, allowed", build(schemas.SourceUpstream, nil, ""), true, "unsigned"},
		{"unsigned, allowed, forged header", build(schemas.SourceUpstream, nil, "erasure:local"), true, "unsigned"},
		{"unsigned, allowed, claiming the UI", build(schemas.SourceUI, nil, ""), true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := Producers{Internal: ours, Upstream: upstream, AllowUnsigned: c.allowUnsigned}
			var req schemas.DeletionRequested
			reached := false
			_, err := VerifyProducer(p, tRequestsTopic)(func(m *message.Message) ([]*message.Message, error) {
				reached = true
				return nil, DecodeRequest(m, schemas.DefaultContactIDRule, &req)
			})(c.msg)
			if c.want == "" {
				if !errors.Is(err, schemas.ErrInvalidEvent) {
					t.Fatalf("admitted as %q (err %v); want a refusal to the dlq", req.Producer, err)
				}
				if strings.Contains(err.Error(), tC1) || strings.Contains(err.Error(), "jane.dpo") {
					t.Fatalf("refusal quotes the payload: %v", err)
				}
				return
			}
			if err != nil || !reached || req.Producer != c.want {
				t.Fatalf("producer %q, err %v; want %q", req.Producer, err, c.want)
			}
			var again schemas.DeletionRequested
			if err := p.Admit(tRequestsTopic, c.msg, schemas.DefaultContactIDRule, &again); err != nil || again.Producer != c.want {
				t.Fatalf("Admit: producer %q, err %v; want %q", again.Producer, err, c.want)
			}
		})
	}
}

// The producer is set by the consumer, never read from the payload: the
// schema refuses a request that names one.
func TestRequestPayloadCannotNameItsProducer(t *testing.T) {
	ours := testKeyring(t, "local", "local")
	payload := `{"type":"DeletionRequested","schema_version":1,"request_id":"` + tReqID + `","contact_ids":["` + tC1 +
		`"],"requested_by":"svc","requested_at":"2026-01-02T03:04:05Z","source":"upstream","channels":["voice"],"producer":"erasure:local"}`
	m := message.NewMessage("1", []byte(payload))
	m.Metadata.Set(schemas.HeaderEventType, schemas.TypeDeletionRequested)
	if err := producers.Sign(ours, m); err != nil {
		t.Fatal(err)
	}
	var req schemas.DeletionRequested
	err := Producers{Internal: ours}.Admit(tRequestsTopic, m, schemas.DefaultContactIDRule, &req)
	if !errors.Is(err, schemas.ErrInvalidEvent) {
		t.Fatalf("admitted a payload naming its producer: %+v, %v", req, err)
	}
}
