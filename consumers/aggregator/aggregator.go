// Package aggregator joins each deletion request with its channels' results:
// it starts phase 2 (the contact-search channel) once every artefact channel
// succeeded, applies the deadline, writes the audit entry and publishes the
// final outcome. Its join state lives in the ledger, so in-flight requests
// survive a restart.
//
// Every deletion performed is audited: a request is decided only when no
// artefact channel is still running (or its deadline passed), and a result
// that arrives after the decision gets a late entry of its own. A request ID
// reused with other content is refused and audited as such; its channels
// deleted nothing and nothing of it is joined to the request.
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
	BindRequest(ctx context.Context, requestID, digest string) (string, error)
	PutRequest(ctx context.Context, r schemas.DeletionRequested, deadline time.Time) error
	PutResult(ctx context.Context, r schemas.ChannelCompleted) error
	State(ctx context.Context, requestID string) (stores.RequestState, error)
	MarkFinalizing(ctx context.Context, requestID string) error
	Overdue(ctx context.Context, now time.Time, limit int) ([]string, error)
	Complete(ctx context.Context, out schemas.DeletionCompleted, functionality string) (schemas.DeletionCompleted, bool, error)
	MarkPublished(ctx context.Context, requestID string) error
	Unpublished(ctx context.Context, limit int) ([]string, error)
	Amend(ctx context.Context, res schemas.ChannelCompleted) (stores.AuditEntry, bool, error)
	Refuse(ctx context.Context, out schemas.DeletionCompleted, functionality string) (schemas.DeletionCompleted, bool, error)
	Audit(ctx context.Context, f stores.AuditFilter) ([]stores.AuditEntry, error)
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
		// Results are produced by erasure's channels only; requests by
		// erasure or by an upstream system with a producer key of its own.
		if h.topic == a.Topics.ChannelResults() {
			hd.AddMiddleware(consumers.Verify(cfg.Keys, h.topic))
		} else {
			hd.AddMiddleware(consumers.VerifyProducer(cfg.RequestProducers(), h.topic))
		}
		hd.AddMiddleware(consumers.HandlerStack(cfg, a.Logger)...)
	}
}

func (a *Aggregator) onRequest(msg *message.Message) error {
	var req schemas.DeletionRequested
	if err := consumers.DecodeRequest(msg, a.Rule, &req); err != nil {
		return err
	}
	ctx := msg.Context()
	unlock := a.locks.Lock(req.RequestID)
	defer unlock()
	// A request ID is an idempotency key bound to its content: the same ID
	// with other content is not a redelivery but a reuse, and must not be
	// joined with the first request's results as if it were.
	digest := req.ContentDigest()
	bound, err := a.Ledger.BindRequest(ctx, req.RequestID, digest)
	if err != nil {
		return fmt.Errorf("bind request: %w", err)
	}
	if bound != digest {
		return a.refuse(ctx, req, digest)
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
	// A result names the content its channel acted on; one for content the
	// ID is not bound to is never joined. (Results from before digests
	// existed carry none and are joined as before.)
	if res.RequestDigest != "" {
		bound, err := a.Ledger.BindRequest(ctx, res.RequestID, res.RequestDigest)
		if err != nil {
			return fmt.Errorf("bind request: %w", err)
		}
		if bound != res.RequestDigest {
			a.Logger.ErrorContext(ctx, "channel result for other content than its request ID is bound to: not joined",
				"request_id", res.RequestID, "channel", res.Channel, "status", res.Status)
			return consumers.ErrRequestIDConflict(res.RequestID)
		}
	}
	st, err := a.Ledger.State(ctx, res.RequestID)
	if err != nil && !errors.Is(err, stores.ErrNotFound) {
		return err
	}
	if st.Outcome != nil {
		return a.late(ctx, st, res)
	}
	// A redelivered request makes a channel run again and report zero
	// counts; the first success is the one that deleted, so it is kept.
	if prev, ok := st.Results[res.Channel]; ok && prev.Status == schemas.StatusSucceeded {
		return a.evaluate(ctx, res.RequestID)
	}
	if err := a.Ledger.PutResult(ctx, res); err != nil {
		return fmt.Errorf("record result: %w", err)
	}
	return a.evaluate(ctx, res.RequestID)
}

// late audits a result that arrived after its request was decided (a
// channel that outlived the deadline, contact-search finishing after it, a
// retry after a failure) as its own entry, so every deletion performed is
// in the audit log. The decision and its outcome stay as they are. A result
// the log already holds (a redelivery), and a rerun after an audited
// success that deleted nothing, add no entry.
func (a *Aggregator) late(ctx context.Context, st stores.RequestState, res schemas.ChannelCompleted) error {
	prev, err := a.lastAudited(ctx, st, res.Channel)
	if err != nil {
		return err
	}
	if sameResult(prev, res) || (prev.Status == schemas.StatusSucceeded && totalDeleted(res.Artefacts) == 0) {
		return a.evaluate(ctx, res.RequestID)
	}
	if err := a.Ledger.PutResult(ctx, res); err != nil {
		return fmt.Errorf("record result: %w", err)
	}
	e, created, err := a.Ledger.Amend(ctx, res)
	if err != nil {
		return fmt.Errorf("audit late result: %w", err)
	}
	if created {
		a.Logger.InfoContext(ctx, "late result audited", "request_id", res.RequestID, "channel", res.Channel,
			"status", res.Status, "deleted", totalDeleted(res.Artefacts), "audit_seq", e.Seq, "amends", e.Amends)
	}
	return a.evaluate(ctx, res.RequestID)
}

// lastAudited is what the audit log last says of a channel of a decided
// request: its latest late entry, or else its part of the decision.
func (a *Aggregator) lastAudited(ctx context.Context, st stores.RequestState, ch schemas.Channel) (schemas.ChannelOutcome, error) {
	entries, err := a.Ledger.Audit(ctx, stores.AuditFilter{RequestID: st.Request.RequestID, Limit: stores.AuditMaxLimit})
	if err != nil {
		return schemas.ChannelOutcome{}, fmt.Errorf("audit of request: %w", err)
	}
	for _, e := range entries { // newest first
		if e.Amends > 0 && len(e.Channels) == 1 && e.Channels[0].Channel == ch {
			return e.Channels[0], nil
		}
	}
	for _, co := range st.Outcome.Channels {
		if co.Channel == ch {
			return co, nil
		}
	}
	return schemas.ChannelOutcome{Channel: ch}, nil
}

// sameResult reports whether an audited channel outcome already says what
// res says.
func sameResult(co schemas.ChannelOutcome, res schemas.ChannelCompleted) bool {
	if co.Status != res.Status || co.ErrorCode != res.ErrorCode || len(co.Artefacts) != len(res.Artefacts) {
		return false
	}
	for i, x := range co.Artefacts {
		y := res.Artefacts[i]
		if x.Artefact != y.Artefact || x.Before != y.Before || x.Deleted != y.Deleted || x.After != y.After {
			return false
		}
	}
	return true
}

// refuse audits a submission whose request ID is bound to other content,
// publishes its refused outcome (so whoever submitted it hears, under the
// same ID but with its own digest) and sends the event to the dlq. The
// request the ID belongs to is not touched.
func (a *Aggregator) refuse(ctx context.Context, req schemas.DeletionRequested, digest string) error {
	out := schemas.DeletionCompleted{
		RequestID:     req.RequestID,
		ContactIDs:    req.ContactIDs,
		RequestedBy:   req.RequestedBy,
		RequestedAt:   req.RequestedAt,
		CompletedAt:   a.now(),
		Source:        req.Source,
		Status:        schemas.StatusRefused,
		ErrorCode:     schemas.ErrCodeRequestIDConflict,
		Channels:      []schemas.ChannelOutcome{},
		ReplayOf:      req.ReplayOf,
		RequestDigest: digest,
		ReasonCode:    req.ReasonCode,
		Ticket:        req.Ticket,
		Producer:      req.Producer,
	}
	stored, created, err := a.Ledger.Refuse(ctx, out, Functionality[req.Source])
	if err != nil {
		return fmt.Errorf("refuse: %w", err)
	}
	if created {
		consumers.CountOutcome(stored)
		a.Logger.ErrorContext(ctx, "request ID reused with other content: refused", "request_id", req.RequestID,
			"contacts", len(req.ContactIDs), "audit_seq", stored.AuditSeq)
	}
	// Published on every delivery of the refused event: it is sent to the
	// dlq right after, so that is once unless the publish itself fails.
	if err := producers.Publish(a.Publisher, a.Topics.Outcomes(), &stored, stored.RequestID); err != nil {
		return err
	}
	return consumers.ErrRequestIDConflict(req.RequestID)
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
		if !st.Published && a.stale(*st.Outcome) {
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
	// A failed channel fails the request, but channels still deleting are
	// waited for (until the deadline), so that what they delete is in the
	// decision rather than reported as never run.
	if phase1Pending {
		return nil
	}
	if phase1Failed {
		return a.complete(ctx, st, schemas.StatusFailed, failureCode(st))
	}
	if r, ok := st.Results[schemas.ChannelContactSearch]; ok {
		if r.Status != schemas.StatusSucceeded {
			return a.complete(ctx, st, schemas.StatusFailed, schemas.ErrCodeChannelFailed)
		}
		if foundNothing(st, a.channels(req)) {
			return a.complete(ctx, st, schemas.StatusNotFound, "")
		}
		return a.complete(ctx, st, schemas.StatusSucceeded, "")
	}
	if st.Finalizing {
		return nil
	}
	// A contact an artefact channel found under legal hold keeps its index
	// entries, so it stays findable with what it still has; with every
	// contact held there is nothing to finalize.
	free := freeContacts(req.ContactIDs, heldContacts(st))
	if len(free) == 0 {
		return a.complete(ctx, st, schemas.StatusHeld, schemas.ErrCodeLegalHold)
	}
	// Publish before marking: a crash in between re-publishes, and the
	// contact-search channel deletes idempotently.
	fin := &schemas.FinalizeRequested{RequestID: req.RequestID, ContactIDs: free, RequestedAt: a.now(),
		RequestDigest: req.ContentDigest()}
	if err := producers.Publish(a.Publisher, a.Topics.Finalize(), fin, req.RequestID); err != nil {
		return err
	}
	a.Logger.InfoContext(ctx, "phase 2 started", "request_id", req.RequestID)
	return a.Ledger.MarkFinalizing(ctx, req.RequestID)
}

// heldContacts is every contact some channel of the request left alone
// under legal hold, each once, in the order the channels reported them.
func heldContacts(st stores.RequestState) []string {
	var held []string
	for _, ch := range schemas.AllChannels {
		for _, id := range st.Results[ch].HeldContactIDs {
			if !slices.Contains(held, id) {
				held = append(held, id)
			}
		}
	}
	return held
}

// freeContacts is contactIDs without held.
func freeContacts(contactIDs, held []string) []string {
	var free []string
	for _, id := range contactIDs {
		if !slices.Contains(held, id) {
			free = append(free, id)
		}
	}
	return free
}

// foundNothing reports whether no channel found anything of the request's
// contacts: every artefact count of every channel has before = 0 (and so
// deleted nothing). Counts are per artefact type over all the request's
// contacts, so a request of several contacts where only some were found is
// not "not found", and which ones held nothing is not known.
func foundNothing(st stores.RequestState, channels []schemas.Channel) bool {
	for _, ch := range channels {
		// A run that ended without a result may have deleted what this
		// one found gone: nothing found is then not known.
		if st.Results[ch].Interrupted {
			return false
		}
		for _, c := range st.Results[ch].Artefacts {
			if c.Before > 0 || c.Deleted > 0 {
				return false
			}
		}
	}
	return true
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

// complete writes the outcome and its audit entry, then publishes it. A
// channel without a result is one the deadline overtook (an artefact
// channel, or contact-search once phase 2 started), or contact-search that
// never started because an artefact channel failed.
func (a *Aggregator) complete(ctx context.Context, st stores.RequestState, status schemas.Status, code string) error {
	req := st.Request
	out := schemas.DeletionCompleted{
		RequestID:     req.RequestID,
		ContactIDs:    req.ContactIDs,
		RequestedBy:   req.RequestedBy,
		RequestedAt:   req.RequestedAt,
		CompletedAt:   a.now(),
		Source:        req.Source,
		Status:        status,
		ErrorCode:     code,
		ReplayOf:      req.ReplayOf,
		RequestDigest: req.ContentDigest(),
		ReasonCode:    req.ReasonCode,
		Ticket:        req.Ticket,
		Producer:      req.Producer,
		// A contact held in any channel is reported held: it was not
		// erased everywhere, whatever other channels did before the hold.
		HeldContactIDs: heldContacts(st),
	}
	for _, ch := range a.channels(req) {
		co := schemas.ChannelOutcome{Channel: ch}
		if r, ok := st.Results[ch]; ok {
			co.Status, co.Artefacts, co.ErrorCode, co.Interrupted = r.Status, r.Artefacts, r.ErrorCode, r.Interrupted
		} else if ch != schemas.ChannelContactSearch || st.Finalizing {
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
	} else if !a.stale(stored) {
		return nil // whoever stored it is publishing it
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

// publishGrace is how old an outcome must be before an aggregator that did
// not store it publishes it: until then whoever stored it (this process on
// an earlier delivery, or another aggregator) is publishing it, and a second
// publish would only be a duplicate for every reader to drop. A publish that
// failed is retried by the sweep once the grace has passed. Duplicates stay
// possible (a crash between publishing and marking it published), so
// readers of outcomes keep the first per request ID, digest and audit seq.
const publishGrace = 3 * time.Second

// stale reports whether out was stored long enough ago that whoever stored
// it would have published it by now.
func (a *Aggregator) stale(out schemas.DeletionCompleted) bool {
	return !a.now().Before(out.CompletedAt.Add(publishGrace))
}

func (a *Aggregator) publishOutcome(ctx context.Context, out schemas.DeletionCompleted) error {
	if err := producers.Publish(a.Publisher, a.Topics.Outcomes(), &out, out.RequestID); err != nil {
		return err
	}
	return a.Ledger.MarkPublished(ctx, out.RequestID)
}

// RunDeadlines fails requests still incomplete at their deadline, and
// publishes outcomes whose publish failed (a broker blip after the audit
// entry was written), every period until ctx ends. Results that arrive
// later are still audited.
func (a *Aggregator) RunDeadlines(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		a.sweep(ctx)
	}
}

// sweep runs one pass of RunDeadlines.
func (a *Aggregator) sweep(ctx context.Context) {
	ids, err := a.Ledger.Overdue(ctx, a.now(), 200)
	if err != nil && ctx.Err() == nil {
		a.Logger.WarnContext(ctx, "deadline scan failed", "error", err)
	}
	for _, id := range ids {
		if err := a.expire(ctx, id); err != nil && ctx.Err() == nil {
			a.Logger.WarnContext(ctx, "deadline failed to apply", "request_id", id, "error", err)
		}
	}
	ids, err = a.Ledger.Unpublished(ctx, 200)
	if err != nil && ctx.Err() == nil {
		a.Logger.WarnContext(ctx, "unpublished outcome scan failed", "error", err)
	}
	for _, id := range ids {
		if err := a.republish(ctx, id); err != nil && ctx.Err() == nil {
			a.Logger.WarnContext(ctx, "outcome publish failed again", "request_id", id, "error", err)
		}
	}
}

// republish publishes a stored outcome not yet marked published. The lock
// keeps it from racing a handler of this process that is publishing it right
// now, and the grace one of another aggregator.
func (a *Aggregator) republish(ctx context.Context, id string) error {
	unlock := a.locks.Lock(id)
	defer unlock()
	st, err := a.Ledger.State(ctx, id)
	if err != nil {
		return err
	}
	if st.Outcome == nil || st.Published || !a.stale(*st.Outcome) {
		return nil
	}
	if err := a.publishOutcome(ctx, *st.Outcome); err != nil {
		return err
	}
	a.Logger.InfoContext(ctx, "outcome published after an earlier attempt failed", "request_id", id)
	return nil
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
	// A channel that failed is the reason; otherwise the deadline is.
	code := schemas.ErrCodeDeadline
	for _, r := range st.Results {
		if r.Status != schemas.StatusSucceeded {
			code = schemas.ErrCodeChannelFailed
		}
	}
	return a.complete(ctx, st, schemas.StatusFailed, code)
}

// failureCode is why a request with a failed channel failed: its deadline,
// when every failed channel stopped at it (a channel stops there, possibly
// just before the deadline sweep sees it), else a channel failure.
func failureCode(st stores.RequestState) string {
	for _, r := range st.Results {
		if r.Status != schemas.StatusSucceeded && r.ErrorCode != schemas.ErrCodeDeadline {
			return schemas.ErrCodeChannelFailed
		}
	}
	return schemas.ErrCodeDeadline
}

func totalDeleted(counts []schemas.ArtefactCount) int64 {
	var n int64
	for _, c := range counts {
		n += c.Deleted
	}
	return n
}
