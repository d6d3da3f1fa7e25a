package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

func cmdAudit(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "receipt" {
		return cmdAuditReceipt(ctx, args[1:], stdin, stdout, stderr)
	}
	fl := newCommand("audit", stderr, true)
	actor := fl.String("user", "", "only entries by exactly this user (the whole name, in its case; see --user-prefix)")
	actorPrefix := fl.String("user-prefix", "", "only entries by users whose name starts with this, in any case, as the web UI's User filter")
	functionality := fl.String("functionality", "", "only this functionality (Delete Contact, Bulk Delete, Upstream Request, Replay, Legal Hold)")
	reason := fl.String("reason", "", "only entries with this reason code")
	ticket := fl.String("ticket", "", "only entries with this ticket reference")
	contact := fl.String("contact", "", "only entries naming this contact ID")
	from := fl.String("from", "", "start date (YYYY-MM-DD or RFC 3339)")
	to := fl.String("to", "", "end date (YYYY-MM-DD, inclusive, or RFC 3339)")
	limit := fl.Int("limit", 100, "at most this many entries")
	asJSON := fl.Bool("json", false, "print entries as JSON lines")
	verify := fl.Bool("verify", false, "verify the whole audit log: hash chain, signatures and anchors")
	cfg, err := fl.load(args)
	if err != nil {
		return err
	}
	st, cleanup, err := app.OpenStores(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	if *verify {
		return auditVerify(ctx, cfg, st.Ledger, stdout)
	}
	f := stores.AuditFilter{Actor: *actor, ActorPrefix: *actorPrefix, Functionality: *functionality, ContactID: *contact,
		Limit: *limit, ReasonCode: *reason, Ticket: *ticket}
	if f.From, err = parseDay(*from, false); err != nil {
		return err
	}
	if f.To, err = parseDay(*to, true); err != nil {
		return err
	}
	entries, err := st.Ledger.Audit(ctx, f)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, e := range entries {
		if *asJSON {
			enc.Encode(e)
			continue
		}
		fmt.Fprintf(stdout, "%6d %s %-16s %-10s %-9s %s %s%s\n", e.Seq, e.CompletedAt.Format(time.RFC3339), e.Functionality,
			e.Actor, e.Status, e.RequestID, strings.Join(e.ContactIDs, ","), auditNote(e))
	}
	return nil
}

// auditNote says what a late or refused entry is, and how much each entry
// deleted.
func auditNote(e stores.AuditEntry) string {
	var deleted int64
	atLeast := ""
	for _, c := range e.Channels {
		for _, a := range c.Artefacts {
			deleted += a.Deleted
		}
		if c.Interrupted {
			atLeast = "at least " // a lost run's deletions are not counted
		}
	}
	by := ""
	if e.Producer != "" {
		by = ", submitted by " + e.Producer
	}
	switch {
	case e.Amends > 0 && len(e.Channels) == 1:
		return fmt.Sprintf(" (late result of %s for seq %d, deleted %s%d%s)", e.Channels[0].Channel, e.Amends, atLeast, deleted, by)
	case e.Status == schemas.StatusRefused:
		return " (refused: request ID already used for other content, nothing deleted" + by + ")"
	}
	return fmt.Sprintf(" (deleted %s%d%s)", atLeast, deleted, by)
}

// parseDay reads a date or a timestamp; an end date covers its whole day.
func parseDay(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: want YYYY-MM-DD or RFC 3339", s)
	}
	if end {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return t, nil
}
