package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/consumers"
)

// verified passes on only the outcomes signed with the deployment's event
// keys, so that a forged outcome cannot end a wait with a false result.
// The keys are read as every process reads them (events.keys, or the data
// directory's event.key, never created here). Without any the outcomes are
// passed on unverified and stderr says so: a client on another machine
// may hold no key, and refusing to wait would hide every outcome.
func (c *pipelineClient) verified(ctx context.Context, in <-chan *message.Message, stderr io.Writer) <-chan *message.Message {
	keys, err := c.cfg.EventKeys(false)
	if err != nil {
		fmt.Fprintf(stderr, "warning: outcomes are not verified (%v); configure events.keys or set data_dir\n", err)
		return in
	}
	topic := c.q.Topics.Outcomes()
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for m := range in {
			if err := consumers.VerifyMessage(keys, topic, m); err != nil {
				fmt.Fprintf(stderr, "ignored: %v\n", err)
				m.Ack()
				continue
			}
			select {
			case out <- m:
			case <-ctx.Done():
				m.Nack()
				return
			}
		}
	}()
	return out
}
