// Package producers turns the ways a deletion can be asked for — the web UI,
// the bulk script, a replay — into DeletionRequested events, and builds the
// messages every other event is published with.
package producers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/erasure-project/erasure/schemas"
)

// ErrNoContacts is schemas.ErrNoContacts, for callers that test for it here.
var ErrNoContacts = schemas.ErrNoContacts

// NewMessage encodes and validates an event and wraps it in a message keyed
// by key (the request ID), with its type and version in headers.
func NewMessage(ev schemas.Event, key string) (*message.Message, error) {
	raw, err := schemas.Encode(ev)
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(uuid.NewString(), raw)
	msg.Metadata.Set(schemas.MetadataPartitionKey, key)
	msg.Metadata.Set(schemas.HeaderEventType, schemas.TypeOf(ev))
	msg.Metadata.Set(schemas.HeaderSchemaVersion, strconv.Itoa(schemas.Version))
	return msg, nil
}

// Publish encodes ev and publishes it to topic.
func Publish(pub message.Publisher, topic string, ev schemas.Event, key string) error {
	msg, err := NewMessage(ev, key)
	if err != nil {
		return err
	}
	if err := pub.Publish(topic, msg); err != nil {
		return fmt.Errorf("publish %s: %w", schemas.TypeOf(ev), err)
	}
	return nil
}

// Requester publishes deletion requests.
type Requester struct {
	Publisher message.Publisher
	Topics    schemas.Topics
	// Channels a request expects, from the data map in force.
	Channels []schemas.Channel
	Rule     schemas.ContactIDRule
	Now      func() time.Time
}

// Request describes one deletion request. It is the submission the schemas
// package validates, so what is checked and what is built cannot drift.
type Request = schemas.Submission

// Build validates r and returns the event it would publish. Nothing is
// published for bad input: r is refused with a *schemas.SubmissionError
// before an event exists.
func (q *Requester) Build(r Request) (schemas.DeletionRequested, error) {
	if err := q.Rule.ValidateSubmission(r); err != nil {
		return schemas.DeletionRequested{}, err
	}
	ids := make([]string, 0, len(r.ContactIDs))
	seen := map[string]bool{}
	for _, id := range r.ContactIDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	id := r.RequestID
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return schemas.DeletionRequested{}, fmt.Errorf("request ID: %w", err)
		}
		id = u.String()
	}
	now := time.Now
	if q.Now != nil {
		now = q.Now
	}
	ev := schemas.DeletionRequested{
		RequestID:       id,
		ContactIDs:      ids,
		RequestedBy:     r.RequestedBy,
		RequestedAt:     now().UTC(),
		Source:          r.Source,
		Channels:        q.Channels,
		ReasonCode:      r.ReasonCode,
		ReplayOf:        r.ReplayOf,
		DeadlineSeconds: r.DeadlineSeconds(),
		Ticket:          r.Ticket,
	}
	// The submission is valid, so this refuses only what the Requester itself
	// contributes, such as a data map without contact-search.
	if _, err := schemas.Encode(&ev); err != nil {
		return schemas.DeletionRequested{}, err
	}
	return ev, nil
}

// Submit validates and publishes one request and returns the event.
func (q *Requester) Submit(ctx context.Context, r Request) (schemas.DeletionRequested, error) {
	ev, err := q.Build(r)
	if err != nil {
		return ev, err
	}
	if err := ctx.Err(); err != nil {
		return ev, err
	}
	if err := Publish(q.Publisher, q.Topics.Requests(), &ev, ev.RequestID); err != nil {
		return ev, err
	}
	return ev, nil
}
