package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
)

const (
	// defaultFileBatch is the request size for a file or stdin: the most
	// a request may hold. A channel handles a request as one batch per
	// store, so larger requests are faster: on the embedded pipeline 4,000
	// contacts took 0.9 s in requests of 1,000 and 1.7 s in requests of 250.
	defaultFileBatch = schemas.MaxContactsPerRequest
	// perContactDeadline is the time a request is given for each contact
	// that may be in the pipeline with it. A channel's attempt may take 20 s
	// plus 20 ms a contact (consumers.perContact), and is retried; 50 ms a
	// contact over every contact that may be outstanding keeps a request's
	// deadline above what its channels may spend on it, while the embedded
	// pipeline needs well under 1 ms a contact.
	perContactDeadline = 50 * time.Millisecond
	// maxRequestDeadline is the event schema's limit.
	maxRequestDeadline = 24 * time.Hour
	// answerGrace is how long after a request's deadline plus one base
	// deadline its outcome may still take: the aggregator gives a request
	// in phase 2 one more base deadline, and sweeps for overdue requests
	// every second.
	answerGrace = 30 * time.Second
	// publishChunk is how many requests a run that does not wait
	// journals and publishes at a time.
	publishChunk = 100
)

// deadlinePolicy sets each request's deadline: --deadline when given,
// otherwise the configured base plus time for every contact that may be in
// the pipeline while the request is: its own, those of the requests
// published before it and perhaps still queued ahead of it (none in a
// paced run, whose outstanding requests are worked on alongside it), and
// those of the requests that may be outstanding with it. A paced run keeps
// few requests outstanding, so its deadlines stay short; a run that does
// not wait publishes everything at once, so its later requests get longer.
type deadlinePolicy struct {
	fixed   time.Duration
	base    time.Duration
	sharing int // contacts of the other requests that may be outstanding at once
}

func (p deadlinePolicy) forRequest(contacts, queuedAhead int) time.Duration {
	if p.fixed > 0 {
		return p.fixed
	}
	return min(p.base+time.Duration(contacts+queuedAhead+p.sharing)*perContactDeadline, maxRequestDeadline)
}

// max is the longest deadline the policy gives, checked once up front.
func (p deadlinePolicy) max() time.Duration {
	if p.fixed > 0 {
		return p.fixed
	}
	return maxRequestDeadline
}

// bulkRun turns a checked deletion list into requests. When it waits, at
// most inFlight requests are outstanding: the next is built and published
// as an outcome arrives, so requests are stamped, and their deadlines
// start, when the pipeline can work on them rather than when the run began.
type bulkRun struct {
	q         *producers.Requester
	rule      schemas.ContactIDRule
	pub       message.Publisher
	outs      <-chan *message.Message
	jr        *journal
	template  producers.Request
	batch     int
	deadline  deadlinePolicy
	wait      bool
	inFlight  int
	asJSON    bool
	stdout    io.Writer
	stderr    io.Writer
	ttyStdout bool // clear the progress line before each outcome line
	prog      *progress
	sum       *bulkSummary
	now       func() time.Time
	// grace is how long after its deadline plus one base deadline a
	// request's outcome may take before the run stops: answerGrace.
	grace time.Duration

	pending     map[string][]*flight
	outstanding int // contacts in pending requests
	ahead       int // without waiting: contacts published so far
	handled     int // contacts answered (or, without waiting, published) in this run
	unsent      []unsent
	// stop, once set, says why no more requests are published.
	stop string
	// early holds outcomes of requests that a journal from before content
	// digests names, until their batch is reached and can be matched.
	early map[string][]schemas.DeletionCompleted
}

type flight struct {
	req     schemas.DeletionRequested
	expect  time.Time // an outcome should have come by then
	overdue bool
}

type unsent struct {
	req     schemas.DeletionRequested
	retryOf string
	journal bool // not yet in the journal
}

// Reasons to stop publishing.
const (
	stopStalled     = "stalled"
	stopInterrupted = "interrupted"
	stopTimeout     = "timeout"
)

// journalPlan is what a rerun will do with each request of the input.
type journalPlan struct {
	done, resubmit, retry, fresh tally
}

// plan reads the spool once to say what a journaled rerun will do.
func (r *bulkRun) plan(in *bulkInput) (journalPlan, error) {
	var p journalPlan
	err := in.spool.batches(r.batch, func(ids []string) error {
		req := schemas.DeletionRequested{ContactIDs: ids, RequestedBy: r.template.RequestedBy, Source: r.template.Source,
			ReasonCode: r.template.ReasonCode}
		id, ok := r.jr.requestFor(ids, req.ContentDigest())
		if !ok {
			p.fresh.add(len(ids))
			return nil
		}
		req.RequestID = id
		o, ok := r.jr.outcome(req)
		switch {
		case !ok:
			p.resubmit.add(len(ids))
		case !finished(o.status):
			p.retry.add(len(ids))
		default:
			p.done.add(len(ids))
		}
		return nil
	})
	return p, err
}

// run publishes every batch of the spool and, when waiting, collects the
// outcomes. The summary is complete whatever it returns.
func (r *bulkRun) run(ctx context.Context, in *bulkInput, timeout time.Duration) error {
	r.pending = map[string][]*flight{}
	waitCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	err := in.spool.batches(r.batch, func(ids []string) error {
		return r.next(waitCtx, ids)
	})
	if err == nil && !r.wait {
		if r.stop == "" {
			err = r.flush()
		} else {
			for _, u := range r.unsent { // built, but the run was interrupted
				r.sum.NotSent.add(len(u.req.ContactIDs))
			}
		}
	}
	if err == nil && r.wait {
		err = r.waitFor(waitCtx, 0)
	}
	r.prog.finish()
	code := codeNoOutcome
	if r.stop == stopInterrupted {
		code = codeInterrupted
	}
	for _, fs := range r.pending {
		for _, f := range fs {
			r.sum.NoOutcome.add(len(f.req.ContactIDs))
			r.sum.fail(code, len(f.req.ContactIDs))
			if r.asJSON {
				json.NewEncoder(r.stdout).Encode(map[string]any{"request_id": f.req.RequestID, "status": "unknown", "error_code": code})
			} else {
				fmt.Fprintf(r.stdout, "%s no outcome yet\n", f.req.RequestID)
			}
		}
	}
	switch r.stop {
	case stopStalled:
		fmt.Fprintf(r.stderr, "stopped: a request had no outcome %s after its deadline; is the pipeline running?\n", r.deadline.base+r.grace)
	case stopTimeout:
		fmt.Fprintf(r.stderr, "gave up waiting after %s\n", timeout)
	case stopInterrupted:
		r.sum.Interrupted = true
	}
	if r.stop != "" && r.sum.Failed.Requests+r.sum.NotSent.Requests > 0 {
		if r.jr != nil {
			fmt.Fprintln(r.stderr, "run again with the same --journal to resume: finished requests are skipped, failed ones retried")
		} else {
			fmt.Fprintln(r.stderr, "with --journal a rerun resumes where a run stopped")
		}
	}
	return err
}

// next handles one batch: skips it when the journal has its outcome,
// otherwise waits for a free slot, then builds its request and publishes
// it. The request is built only then because its deadline runs from when
// it is built.
func (r *bulkRun) next(ctx context.Context, ids []string) error {
	if r.stop == "" && ctx.Err() != nil {
		r.stop = stopInterrupted
	}
	if r.stop != "" {
		r.sum.NotSent.add(len(ids))
		return nil
	}
	reuse, retryOf, done := r.journaled(ids)
	if done {
		return nil
	}
	if r.wait {
		if err := r.waitFor(ctx, r.inFlight-1); err != nil {
			return err
		}
		if r.stop != "" {
			r.sum.NotSent.add(len(ids))
			return nil
		}
		if reuse != "" {
			// The outcome of an earlier run's submission may have come
			// while this waited for a slot: resubmitted under the same ID,
			// the request would get no second outcome.
			if reuse, retryOf, done = r.journaled(ids); done {
				return nil
			}
		}
	}
	tmpl := r.template
	tmpl.ContactIDs = ids
	ahead := r.ahead
	if r.wait {
		ahead = 0
	}
	tmpl.Deadline = r.deadline.forRequest(len(ids), ahead)
	ev, err := r.q.Build(tmpl)
	if err != nil {
		return fmt.Errorf("%w; the input was checked before anything was submitted", err)
	}
	if reuse != "" {
		ev.RequestID = reuse
	}
	u := unsent{req: ev, retryOf: retryOf, journal: r.jr != nil && reuse == ""}
	if !r.wait {
		r.ahead += len(ids)
		r.unsent = append(r.unsent, u)
		if len(r.unsent) >= publishChunk {
			return r.flush()
		}
		return nil
	}
	if u.journal {
		if err := r.jr.recordSubmitted([]schemas.DeletionRequested{ev}, []string{retryOf}); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	if err := r.publish(ev); err != nil {
		return err
	}
	r.submitted(u)
	r.pending[ev.RequestID] = append(r.pending[ev.RequestID], &flight{req: ev,
		expect: r.now().Add(time.Duration(ev.DeadlineSeconds)*time.Second + r.deadline.base + r.grace)})
	r.outstanding += len(ev.ContactIDs)
	return nil
}

// journaled says what the journal makes of a batch an earlier run
// submitted: resubmit it under its ID (reuse: no outcome yet), submit it
// under a new one (retryOf: it failed), or nothing (done: it finished, and
// is reported as such).
func (r *bulkRun) journaled(ids []string) (reuse, retryOf string, done bool) {
	if r.jr == nil {
		return "", "", false
	}
	content := schemas.DeletionRequested{ContactIDs: ids, RequestedBy: r.template.RequestedBy, Source: r.template.Source,
		ReasonCode: r.template.ReasonCode, ReplayOf: r.template.ReplayOf}
	id, ok := r.jr.requestFor(ids, content.ContentDigest())
	if !ok {
		return "", "", false
	}
	content.RequestID = id
	r.matchEarly(content)
	o, ok := r.jr.outcome(content)
	switch {
	case !ok:
		return id, "", false // resubmitted under its ID: the pipeline knows it
	case !finished(o.status):
		return "", id, false // a new ID: the old one keeps its outcome
	}
	r.alreadyDone(content, o)
	return "", "", true
}

// submitted counts a published request.
func (r *bulkRun) submitted(u unsent) {
	r.sum.Submitted.add(len(u.req.ContactIDs))
	if u.retryOf != "" {
		r.sum.Retried.add(len(u.req.ContactIDs))
	}
}

func (r *bulkRun) publish(reqs ...schemas.DeletionRequested) error {
	msgs := make([]*message.Message, 0, len(reqs))
	for i := range reqs {
		m, err := producers.NewMessage(&reqs[i], reqs[i].RequestID)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := r.pub.Publish(r.q.Topics.Requests(), msgs...); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// flush journals and publishes the requests a run that does not wait has
// built, and prints their IDs.
func (r *bulkRun) flush() error {
	if len(r.unsent) == 0 {
		return nil
	}
	var journalled []schemas.DeletionRequested
	var retryOf []string
	reqs := make([]schemas.DeletionRequested, 0, len(r.unsent))
	for _, u := range r.unsent {
		reqs = append(reqs, u.req)
		if u.journal {
			journalled = append(journalled, u.req)
			retryOf = append(retryOf, u.retryOf)
		}
	}
	if len(journalled) > 0 {
		if err := r.jr.recordSubmitted(journalled, retryOf); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	if err := r.publish(reqs...); err != nil {
		return err
	}
	for _, u := range r.unsent {
		r.submitted(u)
	}
	r.prog.clearFor(r.ttyStdout)
	enc := json.NewEncoder(r.stdout)
	contacts := 0
	for _, req := range reqs {
		contacts += len(req.ContactIDs)
		if r.asJSON {
			enc.Encode(map[string]any{"request_id": req.RequestID, "contact_ids": req.ContactIDs, "status": "submitted"})
		} else {
			fmt.Fprintf(r.stdout, "%s submitted %s\n", req.RequestID, strings.Join(req.ContactIDs, ","))
		}
	}
	r.handled += contacts
	r.prog.add(contacts, len(reqs))
	r.unsent = r.unsent[:0]
	return nil
}

// alreadyDone reports a request the journal has a final outcome for.
func (r *bulkRun) alreadyDone(req schemas.DeletionRequested, o journalOutcome) {
	n := len(req.ContactIDs)
	r.sum.AlreadyDone.add(n)
	r.sum.outcome(o.status, o.code, n, o.held)
	r.prog.clearFor(r.ttyStdout)
	if out, err := r.jr.readOutcome(o); err == nil {
		printOutcomes(r.stdout, []schemas.DeletionCompleted{out}, r.asJSON)
	} else if r.asJSON {
		json.NewEncoder(r.stdout).Encode(map[string]any{"request_id": req.RequestID, "contact_ids": req.ContactIDs, "status": o.status, "error_code": o.code})
	} else {
		fmt.Fprintf(r.stdout, "%s %s %s%s\n", req.RequestID, statusText(o.status), strings.Join(req.ContactIDs, ","), suffixCode(o.code))
	}
	r.prog.skip(n, 1)
}

// waitFor handles outcomes until at most n requests are awaited. A request
// whose outcome is overdue is no longer awaited, and nothing more is
// published: the pipeline is not answering.
func (r *bulkRun) waitFor(ctx context.Context, n int) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		awaited, next := 0, time.Time{}
		for _, fs := range r.pending {
			for _, f := range fs {
				if !f.overdue {
					awaited++
					if next.IsZero() || f.expect.Before(next) {
						next = f.expect
					}
				}
			}
		}
		if awaited <= n {
			return nil
		}
		timer := time.NewTimer(next.Sub(r.now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			r.stop = stopInterrupted
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				r.stop = stopTimeout
			}
			r.markAllOverdue()
			return nil
		case m, ok := <-r.outs:
			timer.Stop()
			if !ok {
				r.stop = stopInterrupted
				r.markAllOverdue()
				if ctx.Err() == nil {
					return errors.New("outcome stream closed")
				}
				return nil
			}
			r.handle(m)
		case <-timer.C:
			now := r.now()
			for _, fs := range r.pending {
				for _, f := range fs {
					if !f.overdue && !now.Before(f.expect) {
						f.overdue = true
						r.stop = stopStalled
					}
				}
			}
		case <-tick.C:
			timer.Stop()
			r.prog.tick()
		}
	}
}

func (r *bulkRun) markAllOverdue() {
	for _, fs := range r.pending {
		for _, f := range fs {
			f.overdue = true
		}
	}
}

// handle takes one message from the outcomes topic: an outcome of a
// request of this run, of one an earlier run left without its outcome, or
// of someone else's request.
func (r *bulkRun) handle(m *message.Message) {
	var out schemas.DeletionCompleted
	err := schemas.Decode(m.Payload, r.rule, &out)
	m.Ack()
	if err != nil {
		return
	}
	fs := r.pending[out.RequestID]
	i := slices.IndexFunc(fs, func(f *flight) bool { return answers(out, f.req) })
	if i < 0 {
		r.earlier(out)
		return
	}
	f := fs[i]
	if fs = slices.Delete(fs, i, i+1); len(fs) > 0 {
		r.pending[out.RequestID] = fs
	} else {
		delete(r.pending, out.RequestID)
	}
	n := len(f.req.ContactIDs)
	r.outstanding -= n
	r.handled += n
	r.record(out)
	r.sum.outcome(out.Status, out.ErrorCode, n, len(out.HeldContactIDs))
	r.prog.clearFor(r.ttyStdout)
	printOutcomes(r.stdout, []schemas.DeletionCompleted{out}, r.asJSON)
	r.prog.add(n, 1)
}

func (r *bulkRun) record(out schemas.DeletionCompleted) {
	if r.jr == nil {
		return
	}
	if err := r.jr.recordOutcome(out); err != nil {
		r.prog.clear()
		fmt.Fprintf(r.stderr, "journal: %v\n", err)
	}
}

// earlier keeps the outcome of a request an earlier run submitted and did
// not see answered, for when its batch is reached: a resubmission under
// the same ID gets no second outcome.
func (r *bulkRun) earlier(out schemas.DeletionCompleted) {
	if r.jr == nil {
		return
	}
	switch surely, possibly := r.jr.awaiting(out); {
	case surely:
		r.record(out)
	case possibly:
		// Without a digest only the batch can tell whether it is the
		// answer; such journals are from runs of small requests.
		if r.early == nil {
			r.early = map[string][]schemas.DeletionCompleted{}
		}
		r.early[out.RequestID] = append(r.early[out.RequestID], out)
	}
}

// matchEarly journals a kept outcome that answers req.
func (r *bulkRun) matchEarly(req schemas.DeletionRequested) {
	for _, out := range r.early[req.RequestID] {
		if answers(out, req) {
			r.record(out)
		}
	}
	delete(r.early, req.RequestID)
}
