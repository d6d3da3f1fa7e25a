package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/kafka"
	"github.com/erasure-project/erasure/webapi"
)

const holdUsage = `usage: erasure hold place|lift CONTACT-ID --reason CODE [--ticket T] --actor NAME [--wait] [flags]
       erasure hold list [--data DIR] [--config F]

Places or lifts a legal hold on one contact, as the web API does: the
change is checked (contact ID, a reason of holds.reasons or
holds.lift_reasons, ticket), signed with the deployment's event key and
published; the aggregator applies it and audits it (Functionality
'Legal Hold'). While a contact is held, nothing of it is deleted, whoever
asks. list prints the holds in force.
`

// cmdHold places, lifts or lists legal holds.
func cmdHold(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, holdUsage)
		return exitError{2}
	}
	switch args[0] {
	case "place":
		return holdChange(ctx, schemas.HoldPlace, args[1:], stdout, stderr)
	case "lift":
		return holdChange(ctx, schemas.HoldLift, args[1:], stdout, stderr)
	case "list":
		return holdList(ctx, args[1:], stdout, stderr)
	}
	if args[0] != "-h" && args[0] != "--help" && args[0] != "help" {
		fmt.Fprintf(stderr, "erasure hold: unknown action %q\n", args[0])
	}
	fmt.Fprint(stderr, holdUsage)
	return exitError{2}
}

// holdChange checks a hold change, publishes it signed and, with --wait,
// waits until the aggregator has applied it.
func holdChange(ctx context.Context, action schemas.HoldAction, args []string, stdout, stderr io.Writer) error {
	fl := newCommand("hold "+string(action), stderr, true)
	fl.Usage = func() {
		fmt.Fprint(stderr, holdUsage, "\n")
		fl.PrintDefaults()
	}
	brokers := fl.String("brokers", "", "Kafka brokers, comma-separated (default 127.0.0.1:9092, the embedded broker)")
	prefix := fl.String("topic-prefix", "", "topic prefix (default erasure.)")
	pattern := fl.String("contact-id-pattern", "", "contact ID pattern (default: the Amazon Connect UUID form)")
	reason := fl.String("reason", "", "reason code, one of holds.reasons to place (default litigation, regulatory-inquiry, complaint, law-enforcement) or holds.lift_reasons to lift (matter-closed, placed-in-error, retention-review)")
	ticket := fl.String("ticket", "", "matter or case reference, e.g. LEGAL-2026-114 (letters, digits and . _ : / -; no personal data)")
	actor := fl.String("actor", "", "who places or lifts the hold, recorded in the audit log (required)")
	wait := fl.Bool("wait", false, "wait until the hold is applied and audited; exit 1 if it is not within --timeout")
	timeout := fl.Duration("timeout", 30*time.Second, "with --wait: how long to wait")
	// The contact ID may come before the flags, as in the usage line.
	var ids []string
	for rest := args; ; {
		if err := fl.parse(rest); err != nil {
			return err
		}
		if fl.NArg() == 0 {
			break
		}
		ids, rest = append(ids, fl.Arg(0)), fl.Args()[1:]
	}
	c, err := newPipelineClient(*fl.configPath, *brokers, *prefix, *pattern, "erasure-hold")
	if err != nil {
		return err
	}
	if *fl.dataDir != "" {
		c.cfg.DataDir = *fl.dataDir
	}
	ev, err := checkHoldChange(c, action, ids, *reason, *ticket, *actor)
	if err != nil {
		return fmt.Errorf("%w; nothing changed", err)
	}
	if *wait && *timeout <= 0 {
		return errors.New("--timeout must be positive; nothing changed")
	}
	// The aggregator applies only signed hold changes: a forged lift would
	// let a held contact be erased.
	keys, err := c.cfg.EventKeys(false)
	if err != nil {
		return fmt.Errorf("hold changes are signed with the deployment's event key: configure events.keys, or --data the data directory of `erasure up`: %w; nothing changed", err)
	}

	// The contact must exist, and the change must change something, as
	// the web API checks.
	ix, closeIndex, err := app.OpenIndex(ctx, c.cfg)
	if err != nil {
		return fmt.Errorf("%w; nothing changed", err)
	}
	_, err = ix.Get(ctx, subjectIndex, ev.ContactID)
	closeIndex()
	if errors.Is(err, stores.ErrNotFound) {
		return errors.New("no contact with this ID in the contact index (it may have been deleted); nothing changed")
	} else if err != nil {
		return fmt.Errorf("contact index: %w; nothing changed", err)
	}
	st, closeStores, err := app.OpenStores(ctx, c.cfg)
	if err != nil {
		return fmt.Errorf("%w; nothing changed", err)
	}
	defer closeStores()
	cur, err := st.Holds.Held(ctx, ev.ContactID)
	if err != nil {
		return fmt.Errorf("holds: %w; nothing changed", err)
	}
	if h, held := cur[ev.ContactID]; held && action == schemas.HoldPlace {
		return fmt.Errorf("the contact is already under legal hold (placed by %s on %s, reason %s, audit entry #%d); nothing changed",
			h.PlacedBy, h.PlacedAt.Format(time.RFC3339), h.ReasonCode, h.AuditSeq)
	} else if !held && action == schemas.HoldLift {
		return errors.New("the contact is not under legal hold; nothing changed")
	}

	kp, err := kafka.NewPublisher(c.kafka)
	if err != nil {
		return err
	}
	defer kp.Close()
	hr := producers.HoldRequester{Publisher: producers.SigningPublisher{Publisher: kp, Keys: keys}, Topics: c.q.Topics}
	if err := hr.RequestHold(ctx, ev); err != nil {
		return fmt.Errorf("publish: %w; nothing changed", err)
	}
	verb := map[schemas.HoldAction]string{schemas.HoldPlace: "place", schemas.HoldLift: "lift"}[action]
	if !*wait {
		fmt.Fprintf(stdout, "requested: %s legal hold on %s (hold change %s)\n", verb, ev.ContactID, ev.HoldID)
		return nil
	}
	return waitHold(ctx, st, ev, *timeout, stdout)
}

// actorRE is the events' principal: who asked, never a customer identifier.
var actorRE = regexp.MustCompile(`^[A-Za-z0-9._@:+-]{1,128}$`)

// checkHoldChange checks everything given before anything is opened or
// published, and builds the event. Errors never repeat the contact ID or
// ticket given, which may be personal data typed in the wrong place.
func checkHoldChange(c *pipelineClient, action schemas.HoldAction, ids []string, reason, ticket, actor string) (schemas.HoldRequested, error) {
	var ev schemas.HoldRequested
	if len(ids) != 1 {
		return ev, fmt.Errorf("give exactly one contact ID (got %d)", len(ids))
	}
	if c.rule.Check(ids[0]) != nil {
		return ev, errors.New("the contact ID is not valid (see contact_id_pattern)")
	}
	if actor == "" {
		return ev, errors.New("--actor is required: who places or lifts a hold is recorded in the audit log")
	}
	if !actorRE.MatchString(actor) {
		return ev, errors.New("--actor: a user name of up to 128 letters, digits and . _ @ : + -")
	}
	reasons, flag := c.cfg.Holds.Reasons, "holds.reasons"
	if len(reasons) == 0 {
		reasons = webapi.DefaultHoldReasons
	}
	if action == schemas.HoldLift {
		reasons, flag = c.cfg.Holds.LiftReasons, "holds.lift_reasons"
		if len(reasons) == 0 {
			reasons = webapi.DefaultHoldLiftReasons
		}
	}
	if !slices.ContainsFunc(reasons, func(r webapi.Reason) bool { return r.Code == reason }) {
		codes := make([]string, len(reasons))
		for i, r := range reasons {
			codes[i] = r.Code
		}
		what := "not one of"
		if reason == "" {
			what = "required, one of"
		}
		return ev, fmt.Errorf("--reason: %s the configured %s (%s)", what, flag, strings.Join(codes, ", "))
	}
	if ticket != "" && schemas.CheckTicket(ticket) != nil {
		return ev, errors.New("--ticket: a case reference of up to 64 letters, digits, '.', '_', ':', '/' or '-', without personal data such as a phone number")
	}
	hid, err := uuid.NewV7()
	if err != nil {
		return ev, err
	}
	ev = schemas.HoldRequested{HoldID: hid.String(), ContactID: ids[0], Action: action, RequestedBy: actor,
		RequestedAt: time.Now().UTC(), ReasonCode: reason, Ticket: ticket}
	// The event's schema has the last word (the actor's form, for one).
	if _, err := schemas.Encode(&ev); err != nil {
		return ev, fmt.Errorf("the hold change is not valid: %w", err)
	}
	return ev, nil
}

// waitHold waits until the holds in force are as ev asks, then names the
// audit entry that made them so.
func waitHold(ctx context.Context, st *app.Stores, ev schemas.HoldRequested, timeout time.Duration, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cur, err := st.Holds.Held(ctx, ev.ContactID)
		if err == nil {
			if _, held := cur[ev.ContactID]; held == (ev.Action == schemas.HoldPlace) {
				break
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hold change %s was not applied within %s: it may still be; see `erasure hold list` and the audit log", ev.HoldID, timeout)
		case <-tick.C:
		}
	}
	what := map[schemas.HoldAction]string{schemas.HoldPlace: "placed", schemas.HoldLift: "lifted"}[ev.Action]
	entries, err := st.Ledger.Audit(ctx, stores.AuditFilter{RequestID: ev.HoldID, Functionality: stores.FunctionalityLegalHold, Limit: 1})
	if err != nil || len(entries) == 0 {
		// Applied, but by another change that came first.
		fmt.Fprintf(stdout, "%s: legal hold on %s (by another change; hold change %s changed nothing)\n", what, ev.ContactID, ev.HoldID)
		return nil
	}
	fmt.Fprintf(stdout, "%s: legal hold on %s (audit entry #%d, hold change %s)\n", what, ev.ContactID, entries[0].Seq, ev.HoldID)
	return nil
}

// holdList prints the holds in force: the contacts of the audit log's
// Legal Hold entries that are held now.
func holdList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newCommand("hold list", stderr, true)
	cfg, err := fl.load(args)
	if err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return errors.New("hold list takes no arguments")
	}
	st, cleanup, err := app.OpenStores(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	seen := map[string]bool{}
	var ids []string
	const page = 1000
	for off := 0; ; off += page {
		entries, err := st.Ledger.Audit(ctx, stores.AuditFilter{Functionality: stores.FunctionalityLegalHold, Offset: off, Limit: page})
		if err != nil {
			return err
		}
		for _, e := range entries {
			for _, id := range e.ContactIDs {
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
		if len(entries) < page {
			break
		}
	}
	slices.Sort(ids)
	n := 0
	for start := 0; start < len(ids); start += schemas.MaxContactsPerRequest {
		batch := ids[start:min(start+schemas.MaxContactsPerRequest, len(ids))]
		held, err := st.Holds.Held(ctx, batch...)
		if err != nil {
			return err
		}
		for _, id := range batch {
			h, ok := held[id]
			if !ok {
				continue
			}
			n++
			fmt.Fprintf(stdout, "%s %s %-16s %-20s %-16s #%d\n", id, h.PlacedAt.Format(time.RFC3339), h.PlacedBy, h.ReasonCode,
				orDash(h.Ticket), h.AuditSeq)
		}
	}
	fmt.Fprintf(stderr, "%d contacts under legal hold\n", n)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
