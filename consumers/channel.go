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
// returns the digest the ID is bound to, and counts a channel's runs of a
// request (see stores.Ledger.MarkRun). stores.Ledger is one.
type RequestBinder interface {
	BindRequest(ctx context.Context, requestID, digest string) (bound string, err error)
	MarkRun(ctx context.Context, requestID string, ch schemas.Channel) (first bool, err error)
}

// HoldChecker reads the legal holds in force; stores.Holds is one.
type HoldChecker interface {
	Held(ctx context.Context, contactIDs ...string) (map[string]stores.Hold, error)
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
	// Holds is required: a contact under legal hold is never erased, whoever
	// asked (the UI, the CLI, an upstream system or a replay), so every
	// attempt asks the ledger which of its contacts are held just before it
	// erases.
	Holds HoldChecker
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

// progress keeps, per request, what its attempts in this process did, so a
// retry resumes where the last one stopped and the counts add up across
// attempts; a request's entry goes when its result is published.
type progress struct {
	mu sync.Mutex
	m  map[string]*attempts
}

// attempts is what earlier attempts at one request did: the artefact types
// they finished, and what they deleted of those they did not finish.
type attempts struct {
	done    locate.Finished
	partial map[string]int64
	// interrupted: a run of this channel in another process (or before a
	// restart) ended without a result, so the counts are a lower bound.
	interrupted bool
}

// get returns a request's entry; fresh says it was made now, by the
// first attempt in this process.
func (p *progress) get(key string) (a *attempts, fresh bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*attempts{}
	}
	a, ok := p.m[key]
	if !ok {
		a = &attempts{done: locate.Finished{}, partial: map[string]int64{}}
		p.m[key] = a
	}
	return a, !ok
}

// take removes a request's entry and returns it (nil if none).
func (p *progress) take(key string) *attempts {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.m[key]
	delete(p.m, key)
	return a
}

// failed notes what a failed attempt deleted of the types it did not finish.
func (a *attempts) failed(counts []schemas.ArtefactCount) {
	for _, c := range counts {
		if _, ok := a.done[c.Artefact]; !ok {
			a.partial[c.Artefact] += c.Deleted
		}
	}
}

// add puts what earlier attempts deleted into an attempt's counts.
func (a *attempts) add(counts []schemas.ArtefactCount) []schemas.ArtefactCount {
	for i, c := range counts {
		if n := a.partial[c.Artefact]; n > 0 {
			counts[i].Before += n
			counts[i].Deleted += n
		}
	}
	return counts
}

// sofar is everything the attempts deleted, for a failed result.
func (a *attempts) sofar() []schemas.ArtefactCount {
	if a == nil {
		return nil
	}
	var out []schemas.ArtefactCount
	for _, c := range a.done {
		out = append(out, c)
	}
	for art, n := range a.partial {
		if _, ok := a.done[art]; !ok && n > 0 {
			out = append(out, schemas.ArtefactCount{Artefact: art, Before: n, Deleted: n})
		}
	}
	slices.SortFunc(out, func(x, y schemas.ArtefactCount) int { return strings.Compare(x.Artefact, y.Artefact) })
	for i := range out {
		if _, ok := a.done[out[i].Artefact]; ok {
			out[i] = a.add(out[i : i+1])[0]
		}
	}
	return out
}

// errPastDeadline stops the work for a request the aggregator has already
// failed at its deadline.
var errPastDeadline = stores.Permanent(fmt.Errorf("request past its deadline: %w", context.DeadlineExceeded))

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
	} else {
		h.AddMiddleware(VerifyProducer(cfg.producers(), topic))
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
	if err := DecodeRequest(msg, c.Rule, &req); err != nil {
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
			return nil, errPastDeadline
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

// withoutHeld splits contactIDs into those that may be erased and those
// under legal hold now.
func (c *Channel) withoutHeld(ctx context.Context, requestID string, contactIDs []string) (free, held []string, err error) {
	if c.Holds == nil {
		return nil, nil, stores.Permanent(errors.New("channel: no hold checker configured"))
	}
	holds, err := c.Holds.Held(ctx, contactIDs...)
	if err != nil {
		return nil, nil, fmt.Errorf("legal holds: %w", err)
	}
	for _, id := range contactIDs {
		if _, ok := holds[id]; ok {
			held = append(held, id)
		} else {
			free = append(free, id)
		}
	}
	if len(held) > 0 {
		c.Logger.WarnContext(ctx, "contacts under legal hold left alone", "request_id", requestID, "channel", c.Name,
			"held", len(held), "contacts", len(contactIDs))
	}
	return free, held, nil
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
	// Checked on every attempt, right before the stores are touched, so a
	// hold placed while a request waited or retried is honoured.
	contactIDs, held, err := c.withoutHeld(ctx, requestID, contactIDs)
	if err != nil {
		return nil, err
	}
	if len(contactIDs) == 0 {
		c.progress.take(key)
		return c.result(requestID, digest, schemas.StatusSucceeded, nil, "", held)
	}
	att, fresh := c.progress.get(key)
	if fresh {
		// Recorded before the stores are touched: if this process dies
		// before it publishes a result, the run that follows is told so.
		first, err := c.Binder.MarkRun(ctx, requestID, c.Name)
		if err != nil {
			c.progress.take(key)
			return nil, fmt.Errorf("mark run: %w", err)
		}
		att.interrupted = !first
	}
	counts, err := c.Eraser.EraseChannel(ctx, c.Name, contactIDs, att.done)
	if err != nil {
		att.failed(counts)
		c.Logger.WarnContext(ctx, "channel erase attempt failed",
			"request_id", requestID, "channel", c.Name, "retryable", stores.IsRetryable(err), "error", err)
		return nil, err
	}
	for _, a := range counts {
		channelArtefacts.WithLabelValues(string(c.Name), a.Artefact).Add(float64(a.Deleted))
	}
	counts = att.add(counts)
	c.progress.take(key)
	c.Logger.InfoContext(ctx, "channel erased", "request_id", requestID, "channel", c.Name,
		"contacts", len(contactIDs), "held", len(held), "deleted", totalDeleted(counts), "interrupted_before", att.interrupted,
		"took", time.Since(start))
	return c.resultOf(requestID, digest, schemas.StatusSucceeded, counts, "", held, att.interrupted)
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
		// What the attempts deleted before failing is gone: the failed
		// result carries it, so the audit records every deletion performed.
		att := c.progress.take(requestID + "/" + digest)
		sofar := att.sofar()
		c.Logger.ErrorContext(msg.Context(), "channel failed", "request_id", requestID, "channel", c.Name,
			"contacts", len(contactIDs), "error_code", code, "deleted", totalDeleted(sofar), "error", err)
		return c.resultOf(requestID, digest, schemas.StatusFailed, sofar, code, nil, att != nil && att.interrupted)
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

func (c *Channel) result(requestID, digest string, st schemas.Status, counts []schemas.ArtefactCount, code string, held []string) ([]*message.Message, error) {
	return c.resultOf(requestID, digest, st, counts, code, held, false)
}

func (c *Channel) resultOf(requestID, digest string, st schemas.Status, counts []schemas.ArtefactCount, code string, held []string, interrupted bool) ([]*message.Message, error) {
	now := c.now
	ev := &schemas.ChannelCompleted{
		RequestID:      requestID,
		Channel:        c.Name,
		Status:         st,
		Artefacts:      counts,
		ErrorCode:      code,
		CompletedAt:    now().UTC(),
		RequestDigest:  digest,
		HeldContactIDs: held,
		Interrupted:    interrupted,
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
