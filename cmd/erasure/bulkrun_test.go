package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
)

// fakePipeline stands in for the broker and the pipeline behind it: it
// records what is published and answers each request, when answer says
// so, after a delay, on the outcomes channel.
type fakePipeline struct {
	t      *testing.T
	outs   chan *message.Message
	answer func(req schemas.DeletionRequested) (schemas.Status, time.Duration, bool)

	mu             sync.Mutex
	published      []schemas.DeletionRequested
	outstanding    int
	maxOutstanding int
}

func (f *fakePipeline) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		var req schemas.DeletionRequested
		if err := json.Unmarshal(m.Payload, &req); err != nil {
			f.t.Error(err)
			continue
		}
		f.mu.Lock()
		f.published = append(f.published, req)
		f.outstanding++
		f.maxOutstanding = max(f.maxOutstanding, f.outstanding)
		f.mu.Unlock()
		st, delay, ok := f.answer(req)
		if !ok {
			continue
		}
		go func() {
			time.Sleep(delay)
			// Counted as answered before the CLI can see it, so the CLI
			// publishing the next request right away is not an overlap.
			f.mu.Lock()
			f.outstanding--
			f.mu.Unlock()
			f.outs <- outcomeMessage(f.t, req, st, req.ContentDigest())
		}()
	}
	return nil
}

func (f *fakePipeline) Close() error { return nil }

func outcomeMessage(t *testing.T, req schemas.DeletionRequested, st schemas.Status, digest string) *message.Message {
	out := &schemas.DeletionCompleted{RequestID: req.RequestID, ContactIDs: req.ContactIDs, RequestedBy: req.RequestedBy,
		RequestedAt: req.RequestedAt, CompletedAt: time.Now().UTC(), Source: req.Source, Status: st,
		Channels: []schemas.ChannelOutcome{}, AuditSeq: 1, AuditHash: strings.Repeat("ab", 32), RequestDigest: digest}
	if st == schemas.StatusFailed {
		out.ErrorCode = schemas.ErrCodeChannelFailed
	}
	m, err := producers.NewMessage(out, req.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testIDs returns n distinct contact IDs.
func testIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-4a77-4e53-9d5e-1c2d3e4f5a6b", i)
	}
	return ids
}

// newTestRun is a run over ids as arguments, against f.
func newTestRun(t *testing.T, f *fakePipeline, ids []string, batch, inFlight int, wait bool, policy deadlinePolicy) (*bulkRun, *bulkInput, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	rule, err := schemas.NewContactIDRule("")
	if err != nil {
		t.Fatal(err)
	}
	in, err := readBulkInput(t.Context(), bulkInputOptions{Args: ids, Check: checkWith(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	var stdout, stderr bytes.Buffer
	requests := (in.Unique + batch - 1) / batch
	policy.sharing = (inFlight - 1) * batch
	r := &bulkRun{q: &producers.Requester{Topics: schemas.Topics{Prefix: "erasure."}, Channels: schemas.AllChannels, Rule: rule},
		rule: rule, pub: f, outs: f.outs, batch: batch, deadline: policy, wait: wait, inFlight: inFlight,
		template: producers.Request{RequestedBy: "ops", Source: schemas.SourceCLI},
		stdout:   &stdout, stderr: &stderr, now: time.Now, grace: answerGrace,
		sum: newBulkSummary(in, requests, wait), prog: newProgress(&stderr, false, time.Nanosecond, "done", in.Unique, requests)}
	return r, in, &stdout, &stderr
}

// A waiting run keeps at most --in-flight requests outstanding and
// publishes the next as an outcome arrives; outcomes of other requests,
// and of other content under one of its request IDs, are not its own.
func TestBulkRunKeepsAtMostNInFlight(t *testing.T) {
	const inFlight, batch = 3, 10
	var once sync.Once
	var f *fakePipeline
	f = &fakePipeline{t: t, outs: make(chan *message.Message), answer: func(req schemas.DeletionRequested) (schemas.Status, time.Duration, bool) {
		once.Do(func() {
			stranger := req
			stranger.RequestID = "019ac4a0-1111-7000-8000-000000000001"
			other := req
			other.RequestedBy = "someone-else"
			go func() {
				f.outs <- outcomeMessage(t, stranger, schemas.StatusSucceeded, stranger.ContentDigest())
				f.outs <- outcomeMessage(t, other, schemas.StatusRefused, other.ContentDigest())
			}()
		})
		st := schemas.StatusSucceeded
		if strings.HasPrefix(req.ContactIDs[0], "0000000a") { // the second request
			st = schemas.StatusNotFound
		}
		return st, time.Duration(rand.IntN(30)) * time.Millisecond, true
	}}
	policy := deadlinePolicy{base: 30 * time.Second}
	r, in, stdout, stderr := newTestRun(t, f, testIDs(130), batch, inFlight, true, policy)
	if err := r.run(t.Context(), in, time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(f.published) != 13 || f.maxOutstanding != inFlight {
		t.Fatalf("%d requests published, at most %d outstanding; want 13 and %d", len(f.published), f.maxOutstanding, inFlight)
	}
	s := r.sum
	if s.Succeeded.Requests != 12 || s.NotFound.Requests != 1 || s.NotFound.Contacts != batch || s.Failed.Requests != 0 ||
		s.Succeeded.Contacts != 120 || s.failed() || r.stop != "" {
		t.Fatalf("summary %+v, stop %q", s, r.stop)
	}
	if n := strings.Count(stdout.String(), "\n"); n != 13 {
		t.Errorf("%d outcome lines:\n%s", n, stdout)
	}
	// Each deadline covers the request's contacts and those of the others
	// that may be outstanding with it.
	for _, req := range f.published {
		d := policy.base + time.Duration(len(req.ContactIDs)+(inFlight-1)*batch)*perContactDeadline
		if want := int(math.Ceil(d.Seconds())); req.DeadlineSeconds != want {
			t.Errorf("request of %d: deadline %ds, want %ds", len(req.ContactIDs), req.DeadlineSeconds, want)
		}
	}
	if !strings.Contains(stderr.String(), "130/130 contacts done (100.0%)") {
		t.Errorf("progress:\n%s", stderr)
	}
}

// A run that does not wait publishes everything at once; each request's
// deadline grows with the contacts published before it, which may still
// be queued ahead of it.
func TestBulkRunWithoutWaitingScalesDeadlinesWithTheQueue(t *testing.T) {
	f := &fakePipeline{t: t, outs: make(chan *message.Message), answer: func(schemas.DeletionRequested) (schemas.Status, time.Duration, bool) {
		return "", 0, false
	}}
	policy := deadlinePolicy{base: 30 * time.Second}
	const batch = 100
	r, in, stdout, _ := newTestRun(t, f, testIDs(450), batch, 1, false, policy)
	if err := r.run(t.Context(), in, 0); err != nil {
		t.Fatal(err)
	}
	if len(f.published) != 5 {
		t.Fatalf("%d requests published", len(f.published))
	}
	ahead := 0
	for i, req := range f.published {
		d := policy.base + time.Duration(len(req.ContactIDs)+ahead)*perContactDeadline
		if want := int(math.Ceil(d.Seconds())); req.DeadlineSeconds != want {
			t.Errorf("request %d: deadline %ds, want %ds", i, req.DeadlineSeconds, want)
		}
		ahead += len(req.ContactIDs)
		if !strings.Contains(stdout.String(), req.RequestID+" submitted ") {
			t.Errorf("request %s not printed", req.RequestID)
		}
	}
	if r.sum.Submitted.Contacts != 450 || r.sum.failed() {
		t.Fatalf("summary %+v", r.sum)
	}
}

// When the pipeline stops answering, the run stops publishing once an
// outcome is overdue, and says what was not submitted.
func TestBulkRunStopsWhenOutcomesStop(t *testing.T) {
	f := &fakePipeline{t: t, outs: make(chan *message.Message), answer: func(req schemas.DeletionRequested) (schemas.Status, time.Duration, bool) {
		return schemas.StatusSucceeded, 0, strings.HasPrefix(req.ContactIDs[0], "00000000")
	}}
	r, in, stdout, stderr := newTestRun(t, f, testIDs(10), 1, 2, true, deadlinePolicy{fixed: time.Second})
	r.grace = 200 * time.Millisecond
	start := time.Now()
	if err := r.run(t.Context(), in, 0); err != nil {
		t.Fatal(err)
	}
	// The first request is answered; the next two never are, and nothing
	// follows them.
	if len(f.published) != 3 || r.stop != stopStalled {
		t.Fatalf("%d published, stop %q", len(f.published), r.stop)
	}
	s := r.sum
	if s.Succeeded.Requests != 1 || s.NoOutcome.Requests != 2 || s.FailedBy[codeNoOutcome].Requests != 2 || s.NotSent.Requests != 7 || !s.failed() {
		t.Fatalf("summary %+v", s)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s to notice", took)
	}
	if strings.Count(stdout.String(), "no outcome yet") != 2 || !strings.Contains(stderr.String(), "is the pipeline running?") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// Without a terminal, progress is plain lines at most one an interval,
// and a last line at the end.
func TestBulkProgressPlainLines(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	p := newProgress(&buf, false, 10*time.Second, "done", 1000, 4)
	p.now = func() time.Time { return now }
	p.start, p.last = now, now
	for _, step := range []struct {
		after    time.Duration
		contacts int
	}{{4 * time.Second, 250}, {6 * time.Second, 250}, {5 * time.Second, 0}, {3 * time.Second, 250}, {1 * time.Second, 250}} {
		now = now.Add(step.after)
		if step.contacts > 0 {
			p.add(step.contacts, 1)
		} else {
			p.tick()
		}
	}
	p.finish()
	want := "500/1000 contacts done (50.0%), 50 contacts/s, ETA 10s, 2/4 requests\n" +
		"1000/1000 contacts done (100.0%), 53 contacts/s, ETA 0s, 4/4 requests\n"
	if buf.String() != want {
		t.Fatalf("progress:\n%s\nwant:\n%s", buf.String(), want)
	}
	// --quiet: nothing.
	buf.Reset()
	p = newProgress(&buf, true, time.Nanosecond, "done", 10, 1)
	p.add(10, 1)
	p.finish()
	if buf.Len() != 0 {
		t.Fatalf("quiet progress wrote %q", buf.String())
	}
}

// An interrupted run publishes nothing more, and its summary says what was
// not submitted.
func TestBulkRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var f *fakePipeline
	f = &fakePipeline{t: t, outs: make(chan *message.Message), answer: func(schemas.DeletionRequested) (schemas.Status, time.Duration, bool) {
		if len(f.published) == 2 {
			cancel() // Ctrl-C while the second request is outstanding
		}
		return schemas.StatusSucceeded, 20 * time.Millisecond, true
	}}
	r, in, _, _ := newTestRun(t, f, testIDs(10), 2, 1, true, deadlinePolicy{base: 30 * time.Second})
	if err := r.run(ctx, in, 0); err != nil {
		t.Fatal(err)
	}
	s := r.sum
	if len(f.published) != 2 || r.stop != stopInterrupted || !s.Interrupted || s.Submitted.Requests != 2 || s.NotSent.Requests != 3 ||
		s.Succeeded.Requests+s.NoOutcome.Requests != 2 || s.NoOutcome.Requests != s.FailedBy[codeInterrupted].Requests {
		t.Fatalf("%d published, stop %q, summary %+v", len(f.published), r.stop, s)
	}
}

// On a terminal the progress is one line redrawn in place, with a bar.
func TestBulkProgressTerminal(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	p := newProgress(&buf, false, time.Hour, "done", 100, 2)
	p.tty = true
	p.now = func() time.Time { return now }
	p.start, p.last = now, now
	now = now.Add(time.Second)
	p.add(50, 1)
	p.clear()
	now = now.Add(time.Second)
	p.add(50, 1)
	p.finish()
	want := "\r\x1b[K[############------------] 50/100 contacts done (50.0%), 50 contacts/s, ETA 1s, 1/2 requests" +
		"\r\x1b[K" +
		"\r\x1b[K[########################] 100/100 contacts done (100.0%), 50 contacts/s, ETA 0s, 2/2 requests" +
		"\r\x1b[K[########################] 100/100 contacts done (100.0%), 50 contacts/s, ETA 0s, 2/2 requests\n"
	if buf.String() != want {
		t.Fatalf("terminal progress:\n%q\nwant:\n%q", buf.String(), want)
	}
}

// A rerun after a run that stopped without its outcomes: the pipeline
// answers a resubmission under the same ID with nothing new, so the
// outcomes published meanwhile are what the rerun reads. One that arrives
// before its batch is reached is journaled, and the batch is not
// published again.
func TestBulkRunResumeUsesOutcomesPublishedMeanwhile(t *testing.T) {
	ids := testIDs(3)
	path := filepath.Join(t.TempDir(), "run.journal")
	jr, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	var old []schemas.DeletionRequested
	for i, id := range ids {
		old = append(old, schemas.DeletionRequested{RequestID: fmt.Sprintf("019ac4a0-1111-7000-8000-%012d", i), ContactIDs: []string{id},
			RequestedBy: "ops", Source: schemas.SourceCLI, RequestedAt: time.Now().Add(-time.Minute).UTC()})
	}
	if err := jr.recordSubmitted(old, make([]string, len(old))); err != nil {
		t.Fatal(err)
	}
	f := &fakePipeline{t: t, outs: make(chan *message.Message), answer: func(schemas.DeletionRequested) (schemas.Status, time.Duration, bool) {
		return "", 0, false
	}}
	go func() {
		for _, i := range []int{2, 0, 1} {
			f.outs <- outcomeMessage(t, old[i], schemas.StatusSucceeded, old[i].ContentDigest())
		}
	}()
	r, in, stdout, _ := newTestRun(t, f, ids, 1, 1, true, deadlinePolicy{base: 30 * time.Second})
	r.jr = jr
	if err := r.run(t.Context(), in, time.Minute); err != nil {
		t.Fatal(err)
	}
	var published []string
	for _, req := range f.published {
		published = append(published, req.RequestID)
	}
	if !slices.Equal(published, []string{old[0].RequestID, old[1].RequestID}) {
		t.Fatalf("published %v, want the first two resubmitted under their IDs", published)
	}
	s := r.sum
	if s.Succeeded.Requests != 3 || s.AlreadyDone.Requests != 1 || s.Submitted.Requests != 2 || s.failed() {
		t.Fatalf("summary %+v", s)
	}
	for _, req := range old {
		if !strings.Contains(stdout.String(), req.RequestID+" succeeded "+req.ContactIDs[0]) {
			t.Errorf("no outcome line for %s:\n%s", req.RequestID, stdout)
		}
	}
	// All three outcomes are in the journal now: a third run has nothing to do.
	for _, req := range old {
		if o, ok := jr.outcome(req); !ok || o.status != schemas.StatusSucceeded {
			t.Errorf("journal outcome of %s: %+v %v", req.RequestID, o, ok)
		}
	}
}

// A resumed run that is waiting for a slot before resubmitting a request
// an earlier run left unanswered may meet that request's outcome first (the
// pipeline finishes the earlier submission): the request is then done, not
// resubmitted, since a resubmission under the same ID gets no second
// outcome and the run would wait for it until it gave up.
func TestBulkRunResumeSkipsWhatIsAnsweredWhileWaiting(t *testing.T) {
	ids := testIDs(3)
	jr, err := openJournal(filepath.Join(t.TempDir(), "run.journal"))
	if err != nil {
		t.Fatal(err)
	}
	var old []schemas.DeletionRequested
	for i, id := range ids {
		old = append(old, schemas.DeletionRequested{RequestID: fmt.Sprintf("019ac4a0-2222-7000-8000-%012d", i), ContactIDs: []string{id},
			RequestedBy: "ops", Source: schemas.SourceCLI, RequestedAt: time.Now().Add(-time.Minute).UTC()})
	}
	if err := jr.recordSubmitted(old, make([]string, len(old))); err != nil {
		t.Fatal(err)
	}
	f := &fakePipeline{t: t, outs: make(chan *message.Message), answer: func(schemas.DeletionRequested) (schemas.Status, time.Duration, bool) {
		return "", 0, false // a resubmission gets no second outcome
	}}
	go func() {
		// While the run waits to resubmit the second request (one in
		// flight: the first), the earlier submissions' outcomes come.
		for _, i := range []int{2, 1, 0} {
			f.outs <- outcomeMessage(t, old[i], schemas.StatusSucceeded, old[i].ContentDigest())
		}
	}()
	r, in, _, stderr := newTestRun(t, f, ids, 1, 1, true, deadlinePolicy{base: time.Second})
	r.grace = time.Second
	r.jr = jr
	if err := r.run(t.Context(), in, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	var published []string
	for _, req := range f.published {
		published = append(published, req.RequestID)
	}
	if !slices.Equal(published, []string{old[0].RequestID}) {
		t.Fatalf("published %v, want only the first resubmitted", published)
	}
	if s := r.sum; r.stop != "" || s.failed() || s.Succeeded.Requests != 3 || s.AlreadyDone.Requests != 2 {
		t.Fatalf("stop %q, summary %+v\n%s", r.stop, s, stderr)
	}
}
