// Package emailwebform is the email / webform channel consumer: email content, threads (shared
// by several contacts, so only this contact's messages go), attachments and
// webform submissions.
package emailwebform

import (
	"log/slog"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/schemas"
)

// Artefacts are the artefact types of this channel in the specification;
// the default data map maps each of them.
var Artefacts = []string{"email_content", "email_thread_messages", "email_attachments", "webform_submissions"}

// New returns the channel's consumer.
func New(e consumers.Eraser, rule schemas.ContactIDRule, logger *slog.Logger) *consumers.Channel {
	return &consumers.Channel{Name: schemas.ChannelEmailWebform, Eraser: e, Rule: rule, Logger: logger}
}
