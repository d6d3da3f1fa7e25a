package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
)

// Eraser erases one channel's artefacts for a batch of contacts and
// verifies they are gone, returning per-artefact counts. done carries the
// artefact types earlier attempts finished, and gains those this one
// finishes (see locate.Finished). *locate.Locator is one.
type Eraser interface {
	EraseChannel(ctx context.Context, ch schemas.Channel, contactIDs []string, done locate.Finished) ([]schemas.ArtefactCount, error)
}

// RequestBinder binds a request ID to the content first seen with it and
// returns the digest the ID is bound to. stores.Ledger is one.
type RequestBinder interface {
	BindRequest(ctx context.Context, requestID, digest string) (bound string, err error)
}

// ErrRequestIDConflict is the error of an event whose request ID is bound to
// other content. It is an invalid event, so the poison queue sends it to the
// dlq; the reason names the request ID and nothing of either content.
func ErrRequestIDConflict(requestID string) error {
	return fmt.Errorf("%w: request_id %s is bound to other content", schemas.ErrInvalidEvent, requestID)
}

// Channel is one channel's consumer; channels differ only in their name,
// which selects their artefacts in the data map. Artefact channels
// (data-warehouse, email-webform, voice, messaging, social) consume
// requests. contact-search consumes finalize: it runs in phase 2, only after
// every other channel succeeded, because until then the contact must stay
// findable and the other channels locate artefacts by its date.
type Channel struct {
	Name   schemas.Channel
	Eraser Eraser
	// Binder is required: no store is touched for a request until its ID is
	// known to be bound to the content at hand.
	Binder RequestBinder
	// States is required for contact-search: it deletes only for a request
	// the ledger knows whose artefact channels all succeeded.
	States RequestStates
	// Required are the channels of the data map in force, as the
	// aggregator waits for them.
	Required []schemas.Channel
	Rule     schemas.ContactIDRule
	// Deadline is a request's deadline when it names none, as the
	// aggregator applies it: past it, the channel does no more work.
	Deadline time.Duration
	Now      func() time.Time
	Logger   *slog.Logger

	progress       progress
	attemptTimeout time.Duration
}

// progress keeps, per request, what its attempts in this process finished,
// so a retry resumes there and the counts add up; a request's entry goes
// when its result is published.
type progress struct {
	mu   sync.Mutex
	done map[string]locate.Finished
}

func (p *progress) get(key string) locate.Finished {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		p.done = map[string]locate.Finished{}
	}
	f, ok := p.done[key]
	if !ok {
		f = locate.Finished{}
		p.done[key] = f
	}
	return f
}

// take removes a request's entry and returns it (nil if none).
func (p *progress) take(key string) locate.Finished {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.done[key]
	delete(p.done, key)
	return f
}

// Register adds the channel's handler to a router: it reads its phase's
// topic in its own consumer group and publishes one ChannelCompleted per
// request to channel-results.
func (c *Channel) Register(r *message.Router, cfg RouterConfig, topics schemas.Topics, sub message.Subscriber, pub message.Publisher) {
	topic, handle := topics.Requests(), c.handleRequest
	if c.Name == schemas.ChannelContactSearch {
		topic, handle = topics.Finalize(), c.handleFinalize
	}
	h := r.AddHandler("channel-"+string(c.Name), topic, sub, topics.ChannelResults(), pub, handle)
	if c.Name == schemas.ChannelContactSearch {
		h.AddMiddleware(Verify(cfg.Keys, topic))
	}
	h.AddMiddleware(c.failureResult)
	// The handler bounds each attempt itself, by the batch's size and the
	// request's deadline; a fixed timeout would cut every large batch.
	c.attemptTimeout = cfg.Defaults().AttemptTimeout
	stack := cfg
	stack.AttemptTimeout = -1
	h.AddMiddleware(HandlerStack(stack, c.Logger)...)
}

// perContact is the time an attempt gets for each contact of its batch on
// top of the base attempt timeout: batched store work grows slowly with the
// batch, but a listing or a mutation does grow.
const perContact = 20 * time.Millisecond

func (c *Channel) handleRequest(msg *message.Message) ([]*message.Message, error) {
	var req schemas.DeletionRequested
	if err := Decode(msg, c.Rule, &req); err != nil {
		return nil, err
	}
	digest := req.ContentDigest()
	if err := c.checkBinding(msg.Context(), req.RequestID, digest); err != nil {
		return nil, err
	}
	// Past its deadline the aggregator has failed the request: the work
	// stops here instead of running on for nobody (a rerun resubmits it).
	d := c.Deadline
	if req.DeadlineSeconds > 0 {
		d = time.Duration(req.DeadlineSeconds) * time.Second
	}
	if d > 0 {
		deadline := req.RequestedAt.Add(d)
		if !c.now().Before(deadline) {
			c.Logger.WarnContext(msg.Context(), "request past its deadline: not started", "request_id", req.RequestID, "channel", c.Name,
				"contacts", len(req.ContactIDs))
			return c.result(req.RequestID, digest, schemas.StatusFailed, nil, schemas.ErrCodeDeadline)
		}
		ctx, cancel := context.WithDeadline(msg.Context(), deadline)
		defer cancel()
		msg.SetContext(ctx)
	}
	// Every mapped channel runs for every request, whatever channels the
	// request lists: a request cannot narrow a deletion by leaving a channel
	// out, and running an extra channel only deletes nothing twice.
	return c.erase(msg.Context(), req.RequestID, digest, req.ContactIDs)
}

func (c *Channel) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Channel) handleFinalize(msg *message.Message) ([]*message.Message, error) {
	var fin schemas.FinalizeRequested
	if err := Decode(msg, c.Rule, &fin); err != nil {
		return nil, err
	}
	// The aggregator names the content it finalizes; without that the
	// binding cannot be checked, so nothing is deleted.
	if fin.RequestDigest == "" {
		return nil, fmt.Errorf("%w: finalize of request_id %s carries no request digest", schemas.ErrInvalidEvent, fin.RequestID)
	}
	if err := c.checkBinding(msg.Context(), fin.RequestID, fin.RequestDigest); err != nil {
		return nil, err
	}
	if err := c.checkPhase1(msg.Context(), fin.RequestID); err != nil {
		return nil, err
	}
	return c.erase(msg.Context(), fin.RequestID, fin.RequestDigest, fin.ContactIDs)
}

// checkBinding refuses a request whose ID is bound to other content: a
// reused request ID must delete nothing anywhere.
func (c *Channel) checkBinding(ctx context.Context, requestID, digest string) error {
	if c.Binder == nil {
		return stores.Permanent(errors.New("channel: no request binder configured"))
	}
	bound, err := c.Binder.BindRequest(ctx, requestID, digest)
	if err != nil {
		return fmt.Errorf("bind request: %w", err)
	}
	if bound != digest {
		c.Logger.ErrorContext(ctx, "request ID reused with other content: nothing deleted", "request_id", requestID, "channel", c.Name)
		return ErrRequestIDConflict(requestID)
	}
	return nil
}

func (c *Channel) erase(ctx context.Context, requestID, digest string, contactIDs []string) ([]*message.Message, error) {
	start := time.Now()
	timeout := c.attemptTimeout
	if timeout <= 0 {
		timeout = RouterConfig{}.Defaults().AttemptTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Duration(len(contactIDs))*perContact)
	defer cancel()
	key := requestID + "/" + digest
	counts, err := c.Eraser.EraseChannel(ctx, c.Name, contactIDs, c.progress.get(key))
	if err != nil {
		c.Logger.WarnContext(ctx, "channel erase attempt failed",
			"request_id", requestID, "channel", c.Name, "retryable", stores.IsRetryable(err), "error", err)
		return nil, err
	}
	for _, a := range counts {
		channelArtefacts.WithLabelValues(string(c.Name), a.Artefact).Add(float64(a.Deleted))
	}
	c.progress.take(key)
	c.Logger.InfoContext(ctx, "channel erased", "request_id", requestID, "channel", c.Name,
		"contacts", len(contactIDs), "deleted", totalDeleted(counts), "took", time.Since(start))
	return c.result(requestID, digest, schemas.StatusSucceeded, counts, "")
}

// failureResult turns a store failure that outlived its retries into a
// failed ChannelCompleted, so the aggregator fails the request at once
// instead of waiting for the deadline. Invalid events pass through to the
// poison queue.
func (c *Channel) failureResult(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil || errors.Is(err, schemas.ErrInvalidEvent) || errors.Is(err, context.Canceled) {
			return out, err
		}
		requestID, digest, contactIDs, ok := c.peek(msg)
		if !ok {
			return out, err
		}
		code := schemas.ErrCodeStoreUnavailable
		switch {
		case errors.Is(err, stores.ErrNotErased):
			code = schemas.ErrCodeVerifyFailed
		case !stores.IsRetryable(err):
			code = schemas.ErrCodeStoreRejected
		}
		if errors.Is(err, context.DeadlineExceeded) {
			code = schemas.ErrCodeDeadline
		}
		// What the attempts did finish was deleted: the failed result
		// carries it, so the audit records every deletion performed.
		var done []schemas.ArtefactCount
		for _, a := range c.progress.take(requestID + "/" + digest) {
			done = append(done, a)
		}
		slices.SortFunc(done, func(x, y schemas.ArtefactCount) int { return strings.Compare(x.Artefact, y.Artefact) })
		c.Logger.ErrorContext(msg.Context(), "channel failed", "request_id", requestID, "channel", c.Name,
			"contacts", len(contactIDs), "error_code", code, "error", err)
		return c.result(requestID, digest, schemas.StatusFailed, done, code)
	}
}

// peek re-decodes the triggering event for the failure path.
func (c *Channel) peek(msg *message.Message) (requestID, digest string, contactIDs []string, ok bool) {
	if c.Name == schemas.ChannelContactSearch {
		var fin schemas.FinalizeRequested
		if schemas.Decode(msg.Payload, c.Rule, &fin) != nil {
			return "", "", nil, false
		}
		return fin.RequestID, fin.RequestDigest, fin.ContactIDs, true
	}
	var req schemas.DeletionRequested
	if schemas.Decode(msg.Payload, c.Rule, &req) != nil {
		return "", "", nil, false
	}
	return req.RequestID, req.ContentDigest(), req.ContactIDs, true
}

func (c *Channel) result(requestID, digest string, st schemas.Status, counts []schemas.ArtefactCount, code string) ([]*message.Message, error) {
	now := c.now
	ev := &schemas.ChannelCompleted{
		RequestID:     requestID,
		Channel:       c.Name,
		Status:        st,
		Artefacts:     counts,
		ErrorCode:     code,
		CompletedAt:   now().UTC(),
		RequestDigest: digest,
	}
	if ev.Artefacts == nil {
		ev.Artefacts = []schemas.ArtefactCount{}
	}
	msg, err := producers.NewMessage(ev, requestID)
	if err != nil {
		return nil, stores.Permanent(err)
	}
	return []*message.Message{msg}, nil
}

func totalDeleted(counts []schemas.ArtefactCount) int64 {
	var n int64
	for _, a := range counts {
		n += a.Deleted
	}
	return n
}
