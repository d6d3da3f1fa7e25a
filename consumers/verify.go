package consumers

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/schemas"
)

// Verify is the handler middleware that admits only events signed with one
// of keys, before anything decodes them: finalize and channel results are
// produced by erasure alone, and acting on a forged one would delete
// without an audit entry or audit a deletion that never happened. A refusal
// is an ErrInvalidEvent, so the poison queue sends it to the dlq with a
// reason naming the topic and key ID only. With no keys every event is
// refused.
func Verify(keys *schemas.Keyring, topic string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if err := VerifyMessage(keys, topic, msg); err != nil {
				return nil, err
			}
			return h(msg)
		}
	}
}

// VerifyMessage checks the signature headers of msg, read from topic,
// against keys.
func VerifyMessage(keys *schemas.Keyring, topic string, msg *message.Message) error {
	return keys.Verify(topic, msg.Metadata.Get(schemas.HeaderKeyID), msg.Metadata.Get(schemas.HeaderSignature), msg.Payload)
}
