// Package producers turns the ways a deletion can be asked for — the web UI,
// the bulk script, a replay — into DeletionRequested events, and builds the
// messages every other event is published with.
package producers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/erasure-project/erasure/schemas"
)

// ErrNoContacts is returned for an empty list of contact IDs.
var ErrNoContacts = errors.New("no contact IDs given")

// InvalidContactError names which input was not a valid contact ID without
// repeating it, since it could be anything someone typed.
type InvalidContactError struct{ Index int }

func (e *InvalidContactError) Error() string {
	return fmt.Sprintf("contact ID #%d: %v", e.Index+1, schemas.ErrInvalidContactID)
}

func (e *InvalidContactError) Unwrap() error { return schemas.ErrInvalidContactID }

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

// Request describes one deletion request.
type Request struct {
	// RequestID is set when resubmitting a request: the same ID never gets a
	// second outcome. Empty means a new time-ordered ID.
	RequestID   string
	ContactIDs  []string
	RequestedBy string
	Source      schemas.Source
	ReasonCode  string
	ReplayOf    string
	Deadline    time.Duration
}

// Build validates r and returns the event it would publish. Nothing is
// published for bad input.
func (q *Requester) Build(r Request) (schemas.DeletionRequested, error) {
	if len(r.ContactIDs) == 0 {
		return schemas.DeletionRequested{}, ErrNoContacts
	}
	if len(r.ContactIDs) > schemas.MaxContactsPerRequest {
		return schemas.DeletionRequested{}, fmt.Errorf("%d contact IDs in one request: at most %d", len(r.ContactIDs), schemas.MaxContactsPerRequest)
	}
	ids := make([]string, 0, len(r.ContactIDs))
	seen := map[string]bool{}
	for i, id := range r.ContactIDs {
		if err := q.Rule.Check(id); err != nil {
			return schemas.DeletionRequested{}, &InvalidContactError{Index: i}
		}
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
		RequestID:   id,
		ContactIDs:  ids,
		RequestedBy: r.RequestedBy,
		RequestedAt: now().UTC(),
		Source:      r.Source,
		Channels:    q.Channels,
		ReasonCode:  r.ReasonCode,
		ReplayOf:    r.ReplayOf,
	}
	if r.Deadline > 0 {
		ev.DeadlineSeconds = int((r.Deadline + time.Second - 1) / time.Second)
	}
	// Encoding validates against the schema, so a bad principal or reason
	// code is refused here rather than by every consumer.
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
