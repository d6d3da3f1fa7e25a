package consumers

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// RequestStates reads a request's join state. stores.Ledger is one.
type RequestStates interface {
	State(ctx context.Context, requestID string) (stores.RequestState, error)
}

// checkPhase1 refuses a finalize for a request the ledger does not know, or
// one of whose artefact channels has not succeeded: the index entry is what
// makes a contact findable, so it goes last and only once everything else
// is gone, whatever a finalize event claims.
func (c *Channel) checkPhase1(ctx context.Context, requestID string) error {
	if c.States == nil {
		return stores.Permanent(errors.New("channel: no request state reader configured"))
	}
	st, err := c.States.State(ctx, requestID)
	if errors.Is(err, stores.ErrNotFound) {
		c.Logger.ErrorContext(ctx, "finalize for an unknown request: nothing deleted", "request_id", requestID, "channel", c.Name)
		return fmt.Errorf("%w: finalize of request_id %s: request unknown to the ledger", schemas.ErrInvalidEvent, requestID)
	}
	if err != nil {
		return fmt.Errorf("request state: %w", err)
	}
	for _, ch := range schemas.ArtefactChannels {
		r, ran := st.Results[ch]
		expected := slices.Contains(st.Request.Channels, ch) || slices.Contains(c.Required, ch)
		if (ran && r.Status != schemas.StatusSucceeded) || (!ran && expected) {
			c.Logger.ErrorContext(ctx, "finalize before every artefact channel succeeded: nothing deleted",
				"request_id", requestID, "channel", c.Name, "artefact_channel", ch)
			return fmt.Errorf("%w: finalize of request_id %s: channel %s has not succeeded", schemas.ErrInvalidEvent, requestID, ch)
		}
	}
	return nil
}
