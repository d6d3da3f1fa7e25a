package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
)

func cmdDelete(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fl := newCommand("delete", stderr, false)
	fl.Usage = func() {
		fmt.Fprint(stderr, "usage: erasure delete [flags] ID... | --file F | -\n\n")
		fl.PrintDefaults()
	}
	brokers := fl.String("brokers", "", "Kafka brokers, comma-separated (default 127.0.0.1:9092, the embedded broker)")
	prefix := fl.String("topic-prefix", "", "topic prefix (default erasure.)")
	file := fl.String("file", "", "read contact IDs from this file, one per line")
	actor := fl.String("actor", "", "who is deleting, recorded in the audit log (default: the OS user)")
	reason := fl.String("reason", "", "reason code recorded with the request, e.g. gdpr-art17")
	batch := fl.Int("batch", 1, "contacts per request (1-1000); each request is audited and reported on its own")
	wait := fl.Bool("wait", false, "wait for every request's outcome; exit 1 if any failed")
	timeout := fl.Duration("timeout", 10*time.Minute, "with --wait: give up after this long")
	asJSON := fl.Bool("json", false, "print one JSON result object per request")
	pattern := fl.String("contact-id-pattern", "", "contact ID pattern (default: the Amazon Connect UUID form)")
	journalPath := fl.String("journal", "", "resumable run: record requests and outcomes in this file, and on a rerun reuse its request IDs and skip what is done")
	deadline := fl.Duration("deadline", 0, "how long each request may take before it is failed (default: 30s plus 20ms per request in this run, since a bulk run queues)")
	if err := fl.parse(args); err != nil {
		return err
	}
	if *batch < 1 || *batch > schemas.MaxContactsPerRequest {
		return fmt.Errorf("--batch must be between 1 and %d", schemas.MaxContactsPerRequest)
	}
	c, err := newPipelineClient(*fl.configPath, *brokers, *prefix, *pattern, "erasure-delete")
	if err != nil {
		return err
	}
	rule, q := c.rule, c.q
	*actor = defaultActor(*actor)
	ids, err := readIDs(fl.Args(), *file, stdin)
	if err != nil {
		return err
	}
	// Validate every request before publishing any: one bad line stops the
	// whole run with nothing deleted.
	for start := 0; start < len(ids); start += *batch {
		err := rule.ValidateSubmission(schemas.Submission{ContactIDs: ids[start:min(start+*batch, len(ids))],
			RequestedBy: *actor, Source: schemas.SourceCLI, ReasonCode: *reason})
		var se *schemas.SubmissionError
		if errors.As(err, &se) && se.Position > 0 {
			return fmt.Errorf("input line %d: %w; nothing was submitted", start+se.Position, schemas.ErrInvalidContactID)
		}
		if err != nil {
			return fmt.Errorf("%w; nothing was submitted", err)
		}
	}
	if *deadline <= 0 {
		*deadline = bulkDeadline(c.cfg.Deadline, (len(ids)+*batch-1) / *batch)
	}
	var jr *journal
	if *journalPath != "" {
		if jr, err = openJournal(*journalPath); err != nil {
			return err
		}
		defer jr.Close()
	}
	var reqs, fresh []schemas.DeletionRequested
	var done []schemas.DeletionCompleted
	for start := 0; start < len(ids); start += *batch {
		end := min(start+*batch, len(ids))
		r := producers.Request{ContactIDs: ids[start:end], RequestedBy: *actor, Source: schemas.SourceCLI, ReasonCode: *reason, Deadline: *deadline}
		if jr != nil {
			r.RequestID = jr.requestID(r.ContactIDs)
		}
		ev, err := q.Build(r)
		if err != nil {
			return fmt.Errorf("%w; nothing was submitted", err)
		}
		// Only an outcome for this very content counts as done: an ID the
		// journal gives two batches has one outcome, and the other batch is
		// submitted (and refused by the pipeline, deleting nothing).
		if jr != nil && r.RequestID != "" {
			if out, ok := jr.outcome(ev); ok {
				done = append(done, out)
				continue
			}
		}
		reqs = append(reqs, ev)
		if r.RequestID == "" {
			fresh = append(fresh, ev)
		}
	}
	if jr != nil {
		fmt.Fprintf(stderr, "journal: %d requests already have their outcome, %d resubmitted, %d new\n", len(done), len(reqs)-len(fresh), len(fresh))
		if err := jr.recordSubmitted(fresh); err != nil {
			return fmt.Errorf("journal: %w; nothing was submitted", err)
		}
		printOutcomes(stdout, done, *asJSON)
	}

	var since *time.Time
	if *wait {
		t := time.Now()
		if jr != nil && !jr.earliest.IsZero() && jr.earliest.Before(t) {
			t = jr.earliest // outcomes of a run that stopped before recording them
		}
		since = &t
	}
	outs, closeClients, err := c.publish(ctx, reqs, since, stderr)
	defer closeClients()
	if err != nil {
		return err
	}
	if !*wait {
		for _, r := range reqs {
			if *asJSON {
				json.NewEncoder(stdout).Encode(map[string]any{"request_id": r.RequestID, "contact_ids": r.ContactIDs, "status": "submitted"})
			} else {
				fmt.Fprintf(stdout, "%s submitted %s\n", r.RequestID, strings.Join(r.ContactIDs, ","))
			}
		}
		return nil
	}
	var record func(schemas.DeletionCompleted)
	if jr != nil {
		record = func(out schemas.DeletionCompleted) {
			if err := jr.recordOutcome(out); err != nil {
				fmt.Fprintf(stderr, "journal: %v\n", err)
			}
		}
	}
	err = waitOutcomes(ctx, reqs, outs, *timeout, *asJSON, rule, record, stdout, stderr)
	if err == nil && anyFailed(done) {
		return exitError{1}
	}
	return err
}

func anyFailed(outs []schemas.DeletionCompleted) bool {
	for _, o := range outs {
		if failedStatus(o.Status) {
			return true
		}
	}
	return false
}

// failedStatus is what makes delete exit 1: a failed or refused request. A
// contact found nowhere is gone, which is what was asked.
func failedStatus(s schemas.Status) bool {
	return s != schemas.StatusSucceeded && s != schemas.StatusNotFound
}

// statusText is a status as people read it.
func statusText(s schemas.Status) string {
	if s == schemas.StatusNotFound {
		return "not found"
	}
	return string(s)
}

func printOutcomes(w io.Writer, outs []schemas.DeletionCompleted, asJSON bool) {
	enc := json.NewEncoder(w)
	for _, out := range outs {
		if asJSON {
			enc.Encode(out)
		} else {
			fmt.Fprintf(w, "%s %s %s%s\n", out.RequestID, statusText(out.Status), strings.Join(out.ContactIDs, ","), suffixCode(out.ErrorCode))
		}
	}
}

// answers reports whether out is req's outcome: the same request ID and the
// same content. A refused submission shares its request ID with the request
// it collided with, so the ID alone could credit one with the other's
// outcome. Outcomes from before digests existed are matched by contacts and
// requester.
func answers(out schemas.DeletionCompleted, req schemas.DeletionRequested) bool {
	if out.RequestID != req.RequestID {
		return false
	}
	if out.RequestDigest != "" {
		return out.RequestDigest == req.ContentDigest()
	}
	a, b := slices.Clone(out.ContactIDs), slices.Clone(req.ContactIDs)
	slices.Sort(a)
	slices.Sort(b)
	return out.RequestedBy == req.RequestedBy && slices.Equal(slices.Compact(a), slices.Compact(b))
}

// waitOutcomes prints each request's outcome as it arrives (and passes it
// to record, if set) until all have one or the timeout ends.
func waitOutcomes(ctx context.Context, reqs []schemas.DeletionRequested, outs <-chan *message.Message, timeout time.Duration,
	asJSON bool, rule schemas.ContactIDRule, record func(schemas.DeletionCompleted), stdout, stderr io.Writer) error {
	// Pending requests by ID: a hand-edited journal can give two batches one.
	pending := make(map[string][]schemas.DeletionRequested, len(reqs))
	for _, r := range reqs {
		pending[r.RequestID] = append(pending[r.RequestID], r)
	}
	left := len(reqs)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	failed, done := 0, 0
	byStatus := map[schemas.Status]int{}
	enc := json.NewEncoder(stdout)
	for left > 0 {
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "gave up waiting: %d of %d requests have no outcome\n", left, len(reqs))
			for id, rs := range pending {
				for range rs {
					if asJSON {
						enc.Encode(map[string]any{"request_id": id, "status": "unknown", "error_code": "wait_timeout"})
					} else {
						fmt.Fprintf(stdout, "%s no outcome yet\n", id)
					}
				}
			}
			return exitError{1}
		case m, ok := <-outs:
			if !ok {
				return errors.New("outcome stream closed")
			}
			var out schemas.DeletionCompleted
			err := schemas.Decode(m.Payload, rule, &out)
			m.Ack()
			if err != nil {
				continue
			}
			// Someone else's request, a repeat of one we have, or the
			// outcome of other content under one of our IDs.
			i := slices.IndexFunc(pending[out.RequestID], func(r schemas.DeletionRequested) bool { return answers(out, r) })
			if i < 0 {
				continue
			}
			if rs := slices.Delete(pending[out.RequestID], i, i+1); len(rs) > 0 {
				pending[out.RequestID] = rs
			} else {
				delete(pending, out.RequestID)
			}
			left--
			done++
			byStatus[out.Status]++
			if failedStatus(out.Status) {
				failed++
			}
			if record != nil {
				record(out)
			}
			printOutcomes(stdout, []schemas.DeletionCompleted{out}, asJSON)
			if done%1000 == 0 {
				fmt.Fprintf(stderr, "outcomes %d/%d\n", done, len(reqs))
			}
		}
	}
	if len(reqs) > 0 {
		fmt.Fprintf(stderr, "%d requests: %d succeeded, %d not found, %d failed", len(reqs),
			byStatus[schemas.StatusSucceeded], byStatus[schemas.StatusNotFound], byStatus[schemas.StatusFailed])
		if n := byStatus[schemas.StatusRefused]; n > 0 {
			fmt.Fprintf(stderr, ", %d refused (request ID already used for other contacts; nothing deleted)", n)
		}
		fmt.Fprintln(stderr)
	}
	if failed > 0 {
		return exitError{1}
	}
	return nil
}

// bulkDeadline gives every request of a bulk run time for the requests
// queued ahead of it: requests are stamped when the run starts, and the
// pipeline works through them at tens to hundreds per second.
func bulkDeadline(base time.Duration, requests int) time.Duration {
	return base + time.Duration(requests)*20*time.Millisecond
}

func suffixCode(code string) string {
	if code == "" {
		return ""
	}
	return " (" + code + ")"
}

// readIDs takes contact IDs from arguments, a file, or stdin ("-"), one per
// line; blank lines and lines starting with # are skipped.
func readIDs(args []string, file string, stdin io.Reader) ([]string, error) {
	var ids []string
	scan := func(r io.Reader) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			ids = append(ids, line)
		}
		return sc.Err()
	}
	for _, a := range args {
		if a == "-" {
			if err := scan(stdin); err != nil {
				return nil, fmt.Errorf("stdin: %w", err)
			}
			continue
		}
		ids = append(ids, a)
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := scan(f); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	if len(ids) == 0 {
		return nil, producers.ErrNoContacts
	}
	return ids, nil
}
