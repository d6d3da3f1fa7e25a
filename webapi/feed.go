package webapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/schemas"
)

// RunFeed consumes channel results and outcomes and pushes each to the
// browser sessions that own the request. The subscriber must not be in a
// consumer group shared with other instances: every instance has to see
// every event, since any of them may hold the owner's connection. Each
// message is acked once handed to the hub; a lost push is recovered by the
// browser's watch after it reconnects. RunFeed returns nil when ctx ends.
func (s *Server) RunFeed(ctx context.Context, sub message.Subscriber, topics schemas.Topics) error {
	results, err := sub.Subscribe(ctx, topics.ChannelResults())
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", topics.ChannelResults(), err)
	}
	outcomes, err := sub.Subscribe(ctx, topics.Outcomes())
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", topics.Outcomes(), err)
	}
	seen := newRecentKeys(recentOutcomes)
	for results != nil || outcomes != nil {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-results:
			if !ok {
				results = nil
				continue
			}
			if s.verified(topics.ChannelResults(), msg) {
				s.onResult(msg)
			}
			msg.Ack()
		case msg, ok := <-outcomes:
			if !ok {
				outcomes = nil
				continue
			}
			if s.verified(topics.Outcomes(), msg) {
				s.onOutcome(msg, seen)
			}
			msg.Ack()
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("feed: subscriptions closed")
}

// verified reports whether msg carries a valid signature of erasure's own
// keys; only the aggregator and the channels publish to these topics.
func (s *Server) verified(topic string, msg *message.Message) bool {
	if s.cfg.EventKeys == nil {
		return true
	}
	err := s.cfg.EventKeys.Verify(topic, msg.Metadata.Get(schemas.HeaderKeyID), msg.Metadata.Get(schemas.HeaderSignature), msg.Payload)
	if err != nil {
		s.log.Warn("feed: event refused", "topic", topic, "err", err)
		return false
	}
	return true
}

func (s *Server) onResult(msg *message.Message) {
	var ev schemas.ChannelCompleted
	if err := schemas.Decode(msg.Payload, s.rule, &ev); err != nil {
		// The reason names schema locations only, never values.
		s.log.Warn("feed: invalid channel result", "err", err)
		return
	}
	s.forward(ev.RequestID, progressOf(ev))
}

func (s *Server) onOutcome(msg *message.Message, seen *recentKeys) {
	var ev schemas.DeletionCompleted
	if err := schemas.Decode(msg.Payload, s.rule, &ev); err != nil {
		s.log.Warn("feed: invalid outcome", "err", err)
		return
	}
	// An outcome can be published twice (an aggregator stopped between
	// publishing it and recording that): the copy names the same audit
	// entry, and reaches no one. A refused reuse of the ID has an entry and
	// digest of its own, so it is not taken for a copy.
	if !seen.add(ev.RequestID + "/" + ev.RequestDigest + "/" + strconv.FormatInt(ev.AuditSeq, 10)) {
		return
	}
	// The outcome of other content under an ID this instance's user
	// submitted (a refused reuse of the ID) is not theirs: it must not end
	// their deletion in their browser. Browsers check the digest as well.
	if o, ok := s.owners.get(ev.RequestID); ok && o.req.RequestID != "" && ev.RequestDigest != "" &&
		ev.RequestDigest != o.req.ContentDigest() {
		s.log.Info("feed: outcome of other content under a tracked request ID not forwarded", "request_id", ev.RequestID,
			"status", ev.Status)
		return
	}
	s.forward(ev.RequestID, outcomeMsg{Type: "outcome", DeletionCompleted: ev})
	// Every open record of these contacts is out of date now, whoever asked.
	s.notifyContacts(ev.ContactIDs, contactMsg{RequestID: ev.RequestID, Status: ev.Status})
}

// forward hands a message to the hub with the owner's scope if this instance
// knows it; clients that watch the request get it either way.
func (s *Server) forward(requestID string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		s.log.Error("feed: encode", "err", err)
		return
	}
	o, _ := s.owners.get(requestID)
	s.hub.publish(delivery{requestID: requestID, scope: o.scope, msg: raw})
}

// recentOutcomes is how many outcomes the feed remembers to drop copies of:
// a copy is published within seconds of the first, far fewer outcomes apart.
const recentOutcomes = 4096

// recentKeys is a set of the last max keys added; the feed's loop alone
// uses it.
type recentKeys struct {
	max   int
	keys  map[string]struct{}
	order []string // oldest first
}

func newRecentKeys(max int) *recentKeys {
	return &recentKeys{max: max, keys: make(map[string]struct{}, max)}
}

// add adds key and reports whether it was new.
func (r *recentKeys) add(key string) bool {
	if _, ok := r.keys[key]; ok {
		return false
	}
	if len(r.order) == r.max {
		delete(r.keys, r.order[0])
		r.order = r.order[1:]
	}
	r.keys[key] = struct{}{}
	r.order = append(r.order, key)
	return true
}
