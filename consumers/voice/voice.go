// Package voice is the voice channel consumer: call recordings, transcripts, QA evaluations,
// video sessions (video and images) and sentiment data.
package voice

import (
	"log/slog"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/schemas"
)

// Artefacts are the artefact types of this channel in the specification;
// the default data map maps each of them.
var Artefacts = []string{"call_recordings", "transcripts", "qa_evaluations", "video_sessions", "sentiment"}

// New returns the channel's consumer.
func New(e consumers.Eraser, rule schemas.ContactIDRule, logger *slog.Logger) *consumers.Channel {
	return &consumers.Channel{Name: schemas.ChannelVoice, Eraser: e, Rule: rule, Logger: logger}
}
