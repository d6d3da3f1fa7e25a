package consumers

import (
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/schemas"
)

// Producers says who may publish deletion requests. Erasure's own
// processes (the web API, the CLI, replays) sign them with the event keys;
// each upstream system signs with a producer key of its own, named in
// configuration; unsigned requests are refused unless allowed. The key a
// request is signed with is its producer's identity, recorded in the audit
// beside the requester and source the request claims.
type Producers struct {
	Internal *schemas.Keyring
	Upstream *schemas.Keyring
	// AllowUnsigned admits unsigned requests, recorded as "unsigned".
	AllowUnsigned bool
}

// Producer identities, as the audit records them.
const (
	producerInternal = "erasure:"
	producerUpstream = "upstream:"
	producerUnsigned = "unsigned"
)

// headerProducer carries, inside this process only, the identity the
// VerifyProducer middleware established; whatever a record arrived with
// under this name is overwritten.
const headerProducer = "erasure-verified-producer"

// Identify verifies the signature of a deletion request read from topic
// and returns its producer. A refusal is an ErrInvalidEvent naming the
// topic and key ID only.
func (p Producers) Identify(topic string, msg *message.Message) (string, error) {
	keyID, sig := msg.Metadata.Get(schemas.HeaderKeyID), msg.Metadata.Get(schemas.HeaderSignature)
	switch {
	case keyID == "" && sig == "":
		if p.AllowUnsigned {
			return producerUnsigned, nil
		}
		return "", fmt.Errorf("%w: unsigned request on %s: upstream systems sign with a configured producer key", schemas.ErrInvalidEvent, topic)
	case p.Internal.Has(keyID):
		if err := p.Internal.Verify(topic, keyID, sig, msg.Payload); err != nil {
			return "", err
		}
		return producerInternal + keyID, nil
	case p.Upstream.Has(keyID):
		if err := p.Upstream.Verify(topic, keyID, sig, msg.Payload); err != nil {
			return "", err
		}
		return producerUpstream + keyID, nil
	}
	return "", fmt.Errorf("%w: request on %s signed with unknown key %q", schemas.ErrInvalidEvent, topic, keyID)
}

// VerifyProducer is the middleware of every handler of deletion requests:
// a request whose producer cannot be established never reaches a store.
func VerifyProducer(p Producers, topic string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			who, err := p.Identify(topic, msg)
			if err != nil {
				return nil, err
			}
			msg.Metadata.Set(headerProducer, who)
			return h(msg)
		}
	}
}

// DecodeRequest decodes a deletion request that VerifyProducer admitted and
// sets its Producer. Only erasure's own processes speak for the UI, the
// CLI and replays: a request signed with a producer key, or unsigned, that
// claims one of those sources is refused.
func DecodeRequest(msg *message.Message, rule schemas.ContactIDRule, req *schemas.DeletionRequested) error {
	if err := Decode(msg, rule, req); err != nil {
		return err
	}
	who := msg.Metadata.Get(headerProducer)
	if who == "" {
		return fmt.Errorf("message %s: %w: request not verified", msg.UUID, schemas.ErrInvalidEvent)
	}
	if !strings.HasPrefix(who, producerInternal) && req.Source != schemas.SourceUpstream {
		return fmt.Errorf("message %s: %w: request signed by %s claims source %q", msg.UUID, schemas.ErrInvalidEvent, who, req.Source)
	}
	req.Producer = who
	return nil
}

// Admit is VerifyProducer and DecodeRequest in one, for a reader outside a
// router (a replay reading the topic).
func (p Producers) Admit(topic string, msg *message.Message, rule schemas.ContactIDRule, req *schemas.DeletionRequested) error {
	who, err := p.Identify(topic, msg)
	if err != nil {
		return err
	}
	msg.Metadata.Set(headerProducer, who)
	return DecodeRequest(msg, rule, req)
}
