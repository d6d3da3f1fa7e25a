// Package aggregator joins each deletion request with its channels' results:
// it starts phase 2 (the contact-search channel) once every artefact channel
// succeeded, applies the deadline, writes the audit entry and publishes the
// final outcome. Its join state lives in the ledger, so in-flight requests
// survive a restart.
package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// Ledger is the join state and audit log the aggregator needs.
type Ledger interface {
	PutRequest(ctx context.Context, r schemas.DeletionRequested, deadline time.Time) error
	PutResult(ctx context.Context, r schemas.ChannelCompleted) error
	State(ctx context.Context, requestID string) (stores.RequestState, error)
	MarkFinalizing(ctx context.Context, requestID string) error
	Overdue(ctx context.Context, now time.Time, limit int) ([]string, error)
	Complete(ctx context.Context, out schemas.DeletionCompleted, functionality string) (schemas.DeletionCompleted, bool, error)
	MarkPublished(ctx context.Context, requestID string) error
}

// DefaultDeadline is the specification's "up to 30 seconds".
const DefaultDeadline = 30 * time.Second

// Functionality names, as shown in the audit log's Functionality filter.
var Functionality = map[schemas.Source]string{
	schemas.SourceUI:       "Delete Contact",
	schemas.SourceCLI:      "Bulk Delete",
	schemas.SourceUpstream: "Upstream Request",
	schemas.SourceReplay:   "Replay",
}

// Aggregator joins requests and results.
type Aggregator struct {
	Ledger    Ledger
	Publisher message.Publisher
	Topics    schemas.Topics
	Rule      schemas.ContactIDRule
	// Required are the channels of the data map in force: a request waits
	// for these as well as for those it lists, so an upstream request that
	// leaves channels out cannot finish before they ran.
	Required []schemas.Channel
	Deadline time.Duration
	Now      func() time.Time
	Logger   *slog.Logger

	locks stores.KeyedMutex
}

func (a *Aggregator) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// Register adds the aggregator's two handlers, on requests and on
// channel-results, each in the aggregator's consumer group.
func (a *Aggregator) Register(r *message.Router, cfg consumers.RouterConfig, requests, results message.Subscriber) {
	for _, h := range []struct {
		name, topic string
		sub         message.Subscriber
		fn          message.NoPublishHandlerFunc
	}{
		{"aggregator-requests", a.Topics.Requests(), requests, a.onRequest},
		{"aggregator-results", a.Topics.ChannelResults(), results, a.onResult},
	} {
		hd := r.AddNoPublisherHandler(h.name, h.topic, h.sub, h.fn)
		hd.AddMiddleware(consumers.HandlerStack(cfg, a.Logger)...)
	}
}

func (a *Aggregator) onRequest(msg *message.Message) error {
	var req schemas.DeletionRequested
	if err := consumers.Decode(msg, a.Rule, &req); err != nil {
		return err
	}
	ctx := msg.Context()
	unlock := a.locks.Lock(req.RequestID)
	defer unlock()
	// A request ID is an idempotency key: the same ID with other contacts is
	// not a redelivery but a producer bug, and must not be joined with the
	// first request's results as if it were.
	if st, err := a.Ledger.State(ctx, req.RequestID); err == nil && st.Request.RequestID != "" &&
		!slices.Equal(sorted(st.Request.ContactIDs), sorted(req.ContactIDs)) {
		a.Logger.ErrorContext(ctx, "request ID reused with different contacts", "request_id", req.RequestID)
		return fmt.Errorf("%w: request_id %s reused with different contact_ids", schemas.ErrInvalidEvent, req.RequestID)
	}
	d := a.Deadline
	if req.DeadlineSeconds > 0 {
		d = time.Duration(req.DeadlineSeconds) * time.Second
	}
	if err := a.Ledger.PutRequest(ctx, req, req.RequestedAt.Add(d)); err != nil {
		return fmt.Errorf("record request: %w", err)
	}
	return a.evaluate(ctx, req.RequestID)
}

func (a *Aggregator) onResult(msg *message.Message) error {
	var res schemas.ChannelCompleted
	if err := consumers.Decode(msg, a.Rule, &res); err != nil {
		return err
	}
	ctx := msg.Context()
	unlock := a.locks.Lock(res.RequestID)
	defer unlock()
	st, err := a.Ledger.State(ctx, res.RequestID)
	if err != nil && !errors.Is(err, stores.ErrNotFound) {
		return err
	}
	// A redelivered request makes a channel run again and report zero
	// counts; the first success is the one that deleted, so it is kept.
	if prev, ok := st.Results[res.Channel]; ok && prev.Status == schemas.StatusSucceeded {
		return a.evaluate(ctx, res.RequestID)
	}
	if err := a.Ledger.PutResult(ctx, res); err != nil {
		return fmt.Errorf("record result: %w", err)
	}
	if st.Outcome != nil {
		a.Logger.InfoContext(ctx, "late result recorded", "request_id", res.RequestID, "channel", res.Channel, "status", res.Status)
	}
	return a.evaluate(ctx, res.RequestID)
}

// evaluate moves a request forward from whatever state it is in; running it
// again in the same state changes nothing, so redelivery is harmless.
func (a *Aggregator) evaluate(ctx context.Context, requestID string) error {
	st, err := a.Ledger.State(ctx, requestID)
	if errors.Is(err, stores.ErrNotFound) {
		return nil // results ahead of their request: joined when it arrives
	}
	if err != nil {
		return err
	}
	if st.Outcome != nil {
		if !st.Published {
			return a.publishOutcome(ctx, *st.Outcome)
		}
		return nil
	}
	req := st.Request
	var phase1Failed, phase1Pending bool
	for _, ch := range a.channels(req) {
		if ch == schemas.ChannelContactSearch {
			continue
		}
		r, ok := st.Results[ch]
		switch {
		case !ok:
			phase1Pending = true
		case r.Status != schemas.StatusSucceeded:
			phase1Failed = true
		}
	}
	if phase1Failed {
		return a.complete(ctx, st, schemas.StatusFailed, schemas.ErrCodeChannelFailed)
	}
	if phase1Pending {
		return nil
	}
	if r, ok := st.Results[schemas.ChannelContactSearch]; ok {
		if r.Status == schemas.StatusSucceeded {
			return a.complete(ctx, st, schemas.StatusSucceeded, "")
		}
		return a.complete(ctx, st, schemas.StatusFailed, schemas.ErrCodeChannelFailed)
	}
	if st.Finalizing {
		return nil
	}
	// Publish before marking: a crash in between re-publishes, and the
	// contact-search channel deletes idempotently.
	fin := &schemas.FinalizeRequested{RequestID: req.RequestID, ContactIDs: req.ContactIDs, RequestedAt: a.now()}
	if err := producers.Publish(a.Publisher, a.Topics.Finalize(), fin, req.RequestID); err != nil {
		return err
	}
	a.Logger.InfoContext(ctx, "phase 2 started", "request_id", req.RequestID)
	return a.Ledger.MarkFinalizing(ctx, req.RequestID)
}

// channels is what a request waits for: the channels it lists and the
// required ones, contact-search last.
func (a *Aggregator) channels(req schemas.DeletionRequested) []schemas.Channel {
	var out []schemas.Channel
	for _, ch := range schemas.AllChannels {
		if slices.Contains(req.Channels, ch) || slices.Contains(a.Required, ch) {
			out = append(out, ch)
		}
	}
	return out
}

// complete writes the outcome and its audit entry, then publishes it.
func (a *Aggregator) complete(ctx context.Context, st stores.RequestState, status schemas.Status, code string) error {
	req := st.Request
	out := schemas.DeletionCompleted{
		RequestID:   req.RequestID,
		ContactIDs:  req.ContactIDs,
		RequestedBy: req.RequestedBy,
		RequestedAt: req.RequestedAt,
		CompletedAt: a.now(),
		Source:      req.Source,
		Status:      status,
		ErrorCode:   code,
		ReplayOf:    req.ReplayOf,
	}
	for _, ch := range a.channels(req) {
		co := schemas.ChannelOutcome{Channel: ch}
		if r, ok := st.Results[ch]; ok {
			co.Status, co.Artefacts, co.ErrorCode = r.Status, r.Artefacts, r.ErrorCode
		} else if code == schemas.ErrCodeDeadline {
			co.Status, co.ErrorCode = schemas.StatusFailed, schemas.ErrCodeDeadline
		} else {
			co.Status = schemas.StatusSkipped
		}
		out.Channels = append(out.Channels, co)
	}
	stored, created, err := a.Ledger.Complete(ctx, out, Functionality[req.Source])
	if err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	if created {
		consumers.CountOutcome(stored)
		a.Logger.InfoContext(ctx, "deletion completed", "request_id", stored.RequestID, "status", stored.Status,
			"error_code", stored.ErrorCode, "contacts", len(stored.ContactIDs), "audit_seq", stored.AuditSeq)
	}
	st2, err := a.Ledger.State(ctx, req.RequestID)
	if err != nil {
		return err
	}
	if st2.Published {
		return nil
	}
	return a.publishOutcome(ctx, stored)
}

func (a *Aggregator) publishOutcome(ctx context.Context, out schemas.DeletionCompleted) error {
	if err := producers.Publish(a.Publisher, a.Topics.Outcomes(), &out, out.RequestID); err != nil {
		return err
	}
	return a.Ledger.MarkPublished(ctx, out.RequestID)
}

// RunDeadlines fails requests still incomplete at their deadline, until ctx
// ends. Results that arrive later are still recorded.
func (a *Aggregator) RunDeadlines(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ids, err := a.Ledger.Overdue(ctx, a.now(), 200)
		if err != nil {
			if ctx.Err() == nil {
				a.Logger.WarnContext(ctx, "deadline scan failed", "error", err)
			}
			continue
		}
		for _, id := range ids {
			if err := a.expire(ctx, id); err != nil && ctx.Err() == nil {
				a.Logger.WarnContext(ctx, "deadline failed to apply", "request_id", id, "error", err)
			}
		}
	}
}

func (a *Aggregator) expire(ctx context.Context, id string) error {
	unlock := a.locks.Lock(id)
	defer unlock()
	st, err := a.Ledger.State(ctx, id)
	if err != nil {
		return err
	}
	deadline := st.Deadline
	if st.Finalizing {
		// The index entries may be going right now: wait one more period for
		// contact-search rather than record a failure for a contact that is
		// no longer findable.
		deadline = deadline.Add(a.Deadline)
	}
	if st.Outcome != nil || a.now().Before(deadline) {
		return nil
	}
	return a.complete(ctx, st, schemas.StatusFailed, schemas.ErrCodeDeadline)
}

func sorted(ids []string) []string {
	return slices.Sorted(slices.Values(ids))
}
