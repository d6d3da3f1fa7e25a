// Package contactsearch is the contact-search channel consumer: the contact index and the CTR
// index. It runs in phase 2, on FinalizeRequested, only after every other
// channel succeeded: until then the contact stays findable and the other
// channels can still locate artefacts by its date.
package contactsearch

import (
	"log/slog"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/schemas"
)

// Artefacts are the artefact types of this channel in the specification;
// the default data map maps each of them.
var Artefacts = []string{"contact_index", "ctr_index"}

// New returns the channel's consumer.
func New(e consumers.Eraser, rule schemas.ContactIDRule, logger *slog.Logger) *consumers.Channel {
	return &consumers.Channel{Name: schemas.ChannelContactSearch, Eraser: e, Rule: rule, Logger: logger}
}
