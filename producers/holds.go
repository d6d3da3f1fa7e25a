package producers

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/schemas"
)

// HoldRequester publishes legal hold changes to the holds topic, keyed by
// contact so that the changes of one contact keep their order. The
// publisher must sign them: the aggregator applies only signed ones.
type HoldRequester struct {
	Publisher message.Publisher
	Topics    schemas.Topics
}

// RequestHold validates and publishes one hold change.
func (h *HoldRequester) RequestHold(ctx context.Context, ev schemas.HoldRequested) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return Publish(h.Publisher, h.Topics.Holds(), &ev, ev.ContactID)
}
