// Package messaging is the webchat / WhatsApp / SMS channel consumer: chat messages (transcript
// objects and message rows), attachments and ETRs.
package messaging

import (
	"log/slog"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/schemas"
)

// Artefacts are the artefact types of this channel in the specification;
// the default data map maps each of them.
var Artefacts = []string{"chat_messages", "chat_message_rows", "chat_attachments", "messaging_etrs"}

// New returns the channel's consumer.
func New(e consumers.Eraser, rule schemas.ContactIDRule, logger *slog.Logger) *consumers.Channel {
	return &consumers.Channel{Name: schemas.ChannelMessaging, Eraser: e, Rule: rule, Logger: logger}
}
