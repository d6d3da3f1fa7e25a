package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/webapi"
)

func cmdDelete(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fl := newCommand("delete", stderr, true)
	fl.Usage = func() {
		fmt.Fprint(stderr, `usage: erasure delete [flags] ID... | --file F | - | --subject-phone P | --subject-email E

Deletes contacts: IDs as arguments, from a file (--file), or from stdin (-);
a file or stdin holds one ID a line, or is CSV with --column. Every ID is
checked and repeats are dropped before anything is submitted.

With --subject-phone or --subject-email, deletes every contact of one
person: the contacts whose phone number is that number (however either is
written) or whose email address is that address, found in the configured
contact index (--data for the embedded one). It lists them first and
submits them as one request. The number or address itself is not
submitted, logged or audited.

`)
		fl.PrintDefaults()
	}
	brokers := fl.String("brokers", "", "Kafka brokers, comma-separated (default 127.0.0.1:9092, the embedded broker)")
	prefix := fl.String("topic-prefix", "", "topic prefix (default erasure.)")
	file := fl.String("file", "", "read contact IDs from this file: one a line (blank lines and # comments skipped), or CSV with --column")
	column := fl.String("column", "", "the file or stdin is CSV with a header row; take contact IDs from the column of this name")
	actor := fl.String("actor", "", "who is deleting, recorded in the audit log (default: the OS user)")
	reason := fl.String("reason", "", "reason code recorded with the request, one of the configured reasons, e.g. gdpr-art17")
	ticket := fl.String("ticket", "", "case reference recorded with the request, e.g. INC-20431 (letters, digits and . _ : / -; no personal data)")
	subjectPhone := fl.String("subject-phone", "", "delete every contact of the person with this phone number, in one request")
	subjectEmail := fl.String("subject-email", "", "delete every contact of the person with this email address, in one request")
	batch := fl.Int("batch", 0, fmt.Sprintf("contacts per request (1-%d; default %d from a file or stdin, 1 for IDs given as arguments); each request is audited and reported on its own", schemas.MaxContactsPerRequest, defaultFileBatch))
	wait := fl.Bool("wait", false, "wait for every request's outcome and keep at most --in-flight outstanding; exit 1 if any failed (default true from a file or stdin)")
	inFlight := fl.Int("in-flight", 4, "with --wait: requests outstanding at once; the next is published as an outcome arrives")
	timeout := fl.Duration("timeout", 0, "with --wait: give up after this long (default no limit; the run stops if a request has no outcome well after its deadline)")
	asJSON := fl.Bool("json", false, "print one JSON result object per request on stdout, and the summary as one JSON object on stderr")
	quiet := fl.Bool("quiet", false, "no progress output")
	progressEvery := fl.Duration("progress-interval", 10*time.Second, "when stderr is not a terminal: time between progress lines")
	pattern := fl.String("contact-id-pattern", "", "contact ID pattern (default: the Amazon Connect UUID form)")
	journalPath := fl.String("journal", "", "resumable run: record requests and outcomes in this file; a rerun over the same input skips finished requests, resubmits unanswered ones under their IDs and retries failed ones under new IDs")
	deadline := fl.Duration("deadline", 0, fmt.Sprintf("how long each request may take before it is failed (default: the configured deadline plus %s for each contact that may be in the pipeline with it: its own, those of the other requests that may be outstanding, and without --wait those published before it)", perContactDeadline))
	if err := fl.parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *batch < 0 || *batch > schemas.MaxContactsPerRequest:
		return fmt.Errorf("--batch must be between 1 and %d", schemas.MaxContactsPerRequest)
	case *inFlight < 1:
		return errors.New("--in-flight must be at least 1")
	case *deadline < 0:
		return errors.New("--deadline must not be negative")
	case *progressEvery <= 0:
		return errors.New("--progress-interval must be positive")
	case *column != "" && *file == "" && !slices.Contains(fl.Args(), "-"):
		return errors.New("--column applies to --file or stdin (-)")
	case (*subjectPhone != "" || *subjectEmail != "") && (*file != "" || len(fl.Args()) > 0):
		return errors.New("--subject-phone and --subject-email take no contact IDs, --file or stdin")
	}
	c, err := newPipelineClient(*fl.configPath, *brokers, *prefix, *pattern, "erasure-delete")
	if err != nil {
		return err
	}
	if *fl.dataDir != "" {
		c.cfg.DataDir = *fl.dataDir
	}
	if *reason != "" && !slices.ContainsFunc(c.cfg.ReasonCodes(), func(r webapi.Reason) bool { return r.Code == *reason }) {
		var codes []string
		for _, r := range c.cfg.ReasonCodes() {
			codes = append(codes, r.Code)
		}
		return fmt.Errorf("--reason: not a configured reason (configured: %s)", strings.Join(codes, ", "))
	}
	args = fl.Args()
	if *subjectPhone != "" || *subjectEmail != "" {
		if args, err = subjectContacts(ctx, c.cfg, *subjectPhone, *subjectEmail, stderr); err != nil {
			return err
		}
		// One person, one request: one confirmation in the audit log.
		if !set["batch"] {
			*batch = len(args)
		}
	}
	*actor = defaultActor(*actor)
	policy := deadlinePolicy{fixed: *deadline, base: c.cfg.Deadline}
	start := time.Now()
	in, err := readBulkInput(ctx, bulkInputOptions{Args: args, File: *file, Stdin: stdin, Column: *column,
		Check: func(ids []string) error {
			return c.rule.ValidateSubmission(schemas.Submission{ContactIDs: ids, RequestedBy: *actor, Source: schemas.SourceCLI,
				ReasonCode: *reason, Ticket: *ticket, Deadline: policy.max()})
		}})
	if err != nil {
		return err
	}
	defer in.Close()
	if *batch == 0 {
		// A supervisor deleting two contacts by ID expects two audit
		// entries; a list is worked through in requests of many.
		*batch = 1
		if in.Streamed {
			*batch = defaultFileBatch
		}
	}
	policy.sharing = (*inFlight - 1) * *batch
	if !set["wait"] {
		*wait = in.Streamed
	}
	requests := (in.Unique + *batch - 1) / *batch
	if !*quiet {
		fmt.Fprintf(stderr, "%d contacts checked (%d read, %d duplicates dropped): %d requests of up to %d\n",
			in.Unique, in.Read, in.Duplicates, requests, *batch)
	}

	r := &bulkRun{q: c.q, rule: c.rule, batch: *batch, deadline: policy, wait: *wait, inFlight: *inFlight, asJSON: *asJSON,
		template: producers.Request{RequestedBy: *actor, Source: schemas.SourceCLI, ReasonCode: *reason, Ticket: *ticket},
		stdout:   stdout, stderr: stderr, ttyStdout: isTerminal(stdout), now: time.Now, grace: answerGrace,
		sum: newBulkSummary(in, requests, *wait)}
	var since *time.Time
	if *wait {
		t := time.Now()
		since = &t
	}
	if *journalPath != "" {
		if r.jr, err = openJournal(*journalPath); err != nil {
			return err
		}
		defer r.jr.Close()
		p, err := r.plan(in)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "journal: %d requests already have their outcome, %d resubmitted, %d new, %d retried under a new request ID after failing\n",
			p.done.Requests, p.resubmit.Requests, p.fresh.Requests, p.retry.Requests)
		// Outcomes of requests a stopped run left unanswered may have been
		// published while no one was listening.
		if t := r.jr.unfinishedSince(); since != nil && !t.IsZero() && t.Before(*since) {
			since = &t
		}
	}
	verb := "done"
	if !*wait {
		verb = "submitted"
	}
	r.prog = newProgress(stderr, *quiet, *progressEvery, verb, in.Unique, requests)
	pub, outs, closeClients, err := c.connect(ctx, since, stderr)
	defer closeClients()
	if err != nil {
		return err
	}
	r.pub, r.outs = pub, outs
	err = r.run(ctx, in, *timeout)
	r.sum.end(time.Since(start), r.handled)
	r.sum.print(stderr, *asJSON)
	switch {
	case err != nil:
		return err
	case r.stop == stopInterrupted:
		return exitError{130}
	case r.sum.failed():
		return exitError{1}
	}
	return nil
}

// failedStatus is what makes delete exit 1: a failed or refused request. A
// contact found nowhere is gone, which is what was asked; a contact under
// legal hold is kept as the law requires, which is not a failure either.
func failedStatus(s schemas.Status) bool {
	return s != schemas.StatusSucceeded && s != schemas.StatusNotFound && s != schemas.StatusHeld
}

// finished reports whether a request needs nothing more: a rerun with the
// journal submits again the requests that failed and those whose contacts
// were all held, since a hold may have been lifted since.
func finished(s schemas.Status) bool {
	return s == schemas.StatusSucceeded || s == schemas.StatusNotFound
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
			fmt.Fprintf(w, "%s %s %s%s%s\n", out.RequestID, statusText(out.Status), strings.Join(out.ContactIDs, ","), suffixCode(out.ErrorCode),
				suffixHeld(out))
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

// suffixHeld names the contacts of a request that a legal hold kept, when
// the request's status is about the others.
func suffixHeld(out schemas.DeletionCompleted) string {
	if len(out.HeldContactIDs) == 0 || out.Status == schemas.StatusHeld {
		return ""
	}
	return " (held: " + strings.Join(out.HeldContactIDs, ",") + ")"
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

// subjectContacts finds every contact of one data subject in the configured
// contact index and lists them on stderr (IDs, channels and dates only: the
// number or address searched for is printed nowhere). More than one request
// can carry, or none, is an error: nothing is submitted.
func subjectContacts(ctx context.Context, cfg app.Config, phone, email string, stderr io.Writer) ([]string, error) {
	q, err := stores.SubjectQuery(phone, email)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	ix, closeIndex, err := app.OpenIndex(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer closeIndex()
	docs, truncated, err := stores.FindSubject(ctx, ix, subjectIndex, q)
	if errors.Is(err, stores.ErrNotAPhoneNumber) {
		return nil, errors.New("subject: the phone number is not a phone number")
	}
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	if truncated {
		return nil, fmt.Errorf("subject: more than %d contacts, more than one request may carry; nothing submitted (delete them by ID with --file)",
			schemas.MaxContactsPerRequest)
	}
	if len(docs) == 0 {
		return nil, errors.New("subject: no contact has this phone number or email address; nothing submitted")
	}
	fmt.Fprintf(stderr, "subject: %d contacts found\n", len(docs))
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ch, _ := d.Fields["channel"].(string)
		at, _ := d.Fields[stores.FieldInitiation].(string)
		fmt.Fprintf(stderr, "  %s  %-8s %s\n", d.ID, ch, at)
		ids = append(ids, d.ID)
	}
	return ids, nil
}

// subjectIndex is the contact index the web API searches too.
const subjectIndex = "contacts"
