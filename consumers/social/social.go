// Package social is the social channel consumer: Facebook messages (DMs and comments) and
// other supported social artefacts.
package social

import (
	"log/slog"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/schemas"
)

// Artefacts are the artefact types of this channel in the specification;
// the default data map maps each of them.
var Artefacts = []string{"facebook_messages", "social_artefacts"}

// New returns the channel's consumer.
func New(e consumers.Eraser, rule schemas.ContactIDRule, logger *slog.Logger) *consumers.Channel {
	return &consumers.Channel{Name: schemas.ChannelSocial, Eraser: e, Rule: rule, Logger: logger}
}
