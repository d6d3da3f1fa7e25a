package producers

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/schemas"
)

// SigningPublisher signs every internal event (see schemas.Signed) it
// publishes, over the exact payload bytes, and passes other messages
// through. It is the one place erasure signs: every process wraps its
// publisher in one, so Publish, NewMessage plus Publish, and the messages
// handlers return all go through it. The dlq publisher is not wrapped: a
// refused event must never leave with our signature.
type SigningPublisher struct {
	message.Publisher
	Keys *schemas.Keyring
}

// Publish signs then publishes msgs.
func (p SigningPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := Sign(p.Keys, m); err != nil {
			return err
		}
	}
	return p.Publisher.Publish(topic, msgs...)
}

// Sign sets the signature headers of msg if it is an internal event.
func Sign(keys *schemas.Keyring, msg *message.Message) error {
	typ := msg.Metadata.Get(schemas.HeaderEventType)
	if !schemas.Signed(typ) || msg.Metadata.Get(schemas.HeaderDLQReason) != "" {
		return nil
	}
	id, sig, err := keys.Sign(msg.Payload)
	if err != nil {
		return fmt.Errorf("sign %s: %w", typ, err)
	}
	msg.Metadata.Set(schemas.HeaderKeyID, id)
	msg.Metadata.Set(schemas.HeaderSignature, sig)
	return nil
}
