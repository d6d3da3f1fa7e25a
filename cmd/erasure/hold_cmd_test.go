package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// holdsPublished counts the events ever written to the holds topic: the
// sum of its partitions' end offsets.
func holdsPublished(t *testing.T, p *pipeline) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(p.app.Kafka.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, p.app.Topics.Holds())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n += o.Offset
	})
	return n
}

// Legal holds from the command line, against the whole pipeline: bad input
// is refused with a clear error before anything is published; a hold
// placed with `erasure hold place` makes `erasure delete` leave the contact
// alone; after `erasure hold lift` it is deleted; and the audit log has the
// two Legal Hold entries, signed, found by the exact user or by the start
// of the name in any case.
func TestHoldCommandEndToEnd(t *testing.T) {
	p := startPipeline(t, 8, nil)
	target := firstOfKind(t, p.demo, "voice")
	before := p.inventory(t)[target.ID]
	if before.Total() == 0 {
		t.Fatal("the contact holds nothing: the test would prove nothing")
	}
	conn := []string{"--brokers", p.broker.Addr(), "--data", p.cfg.DataDir}
	hold := func(args ...string) (int, string, string) {
		t.Helper()
		return cli(t, "", append(append([]string{"hold"}, args...), conn...)...)
	}
	const phone = "07700900304"

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown action", []string{"pause", target.ID}, 2, "unknown action"},
		{"no contact", []string{"place", "--reason", "litigation", "--actor", "legal.cli"}, 1, "exactly one contact ID"},
		{"two contacts", []string{"place", target.ID, p.demo[1].ID, "--reason", "litigation", "--actor", "legal.cli"}, 1, "exactly one contact ID"},
		{"not a contact ID", []string{"place", phone, "--reason", "litigation", "--actor", "legal.cli"}, 1, "contact ID is not valid"},
		{"no actor", []string{"place", target.ID, "--reason", "litigation"}, 1, "--actor is required"},
		{"no reason", []string{"place", target.ID, "--actor", "legal.cli"}, 1, "--reason: required, one of the configured holds.reasons (litigation,"},
		{"a deletion reason", []string{"place", target.ID, "--reason", "gdpr-art17", "--actor", "legal.cli"}, 1, "not one of the configured holds.reasons"},
		{"a lift reason to place", []string{"place", target.ID, "--reason", "matter-closed", "--actor", "legal.cli"}, 1, "not one of the configured holds.reasons"},
		{"a place reason to lift", []string{"lift", target.ID, "--reason", "litigation", "--actor", "legal.cli"}, 1, "not one of the configured holds.lift_reasons (matter-closed,"},
		{"a phone number as ticket", []string{"place", target.ID, "--reason", "litigation", "--ticket", phone, "--actor", "legal.cli"}, 1, "--ticket: a case reference"},
		{"an actor the event refuses", []string{"place", target.ID, "--reason", "litigation", "--actor", "legal cli"}, 1, "--actor: a user name"},
		{"a contact not in the index", []string{"place", "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b", "--reason", "litigation", "--actor", "legal.cli"}, 1, "no contact with this ID"},
		{"lifting no hold", []string{"lift", target.ID, "--reason", "matter-closed", "--actor", "legal.cli"}, 1, "not under legal hold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := hold(tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", code, tc.code, stdout, stderr, tc.want)
			}
			if code == 1 && !strings.Contains(stderr, "nothing changed") {
				t.Errorf("the error does not say nothing changed: %s", stderr)
			}
			if strings.Contains(stderr, phone) {
				t.Errorf("the error repeats the value given: %s", stderr)
			}
		})
	}
	if n := holdsPublished(t, p); n != 0 {
		t.Fatalf("bad input published %d hold changes", n)
	}
	if h, err := p.app.Stores.Holds.Held(t.Context(), target.ID); err != nil || len(h) != 0 {
		t.Fatalf("after bad input: holds %v %v", h, err)
	}

	// Place it, the contact ID first as in the usage line, and wait.
	code, stdout, stderr := hold("place", target.ID, "--reason", "litigation", "--ticket", "LEGAL-2026-7", "--actor", "legal.cli", "--wait")
	if code != 0 || !strings.Contains(stdout, "placed: legal hold on "+target.ID+" (audit entry #") {
		t.Fatalf("hold place: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := holdsPublished(t, p); n != 1 {
		t.Errorf("placing one hold published %d hold changes", n)
	}
	h, err := p.app.Stores.Holds.Held(t.Context(), target.ID)
	if err != nil || h[target.ID].PlacedBy != "legal.cli" || h[target.ID].ReasonCode != "litigation" || h[target.ID].Ticket != "LEGAL-2026-7" {
		t.Fatalf("hold in force: %+v %v", h[target.ID], err)
	}
	if code, _, stderr := hold("place", target.ID, "--reason", "complaint", "--actor", "legal.cli"); code != 1 || !strings.Contains(stderr, "already under legal hold") {
		t.Errorf("placing a second hold: exit %d %s", code, stderr)
	}
	if code, stdout, _ := cli(t, "", "hold", "list", "--data", p.cfg.DataDir); code != 0 ||
		!strings.Contains(stdout, target.ID) || !strings.Contains(stdout, "litigation") || !strings.Contains(stdout, "LEGAL-2026-7") {
		t.Errorf("hold list: exit %d\n%s", code, stdout)
	}

	// `erasure delete` leaves the held contact alone, and says so.
	del := func() (int, string, string) {
		t.Helper()
		return cli(t, "", append([]string{"delete", "--actor", "dpo.cli", "--reason", "gdpr-art17", "--wait", "--timeout", "90s"},
			append(conn, target.ID)...)...)
	}
	code, stdout, stderr = del()
	if code != 0 || !strings.Contains(stdout, " held "+target.ID) {
		t.Fatalf("delete of the held contact: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := p.inventory(t)[target.ID]; got.Total() != before.Total() {
		t.Fatalf("the held contact lost data: %d -> %d items", before.Total(), got.Total())
	}

	// Lifted, it is deleted.
	code, stdout, stderr = hold("lift", target.ID, "--reason", "matter-closed", "--actor", "legal.cli", "--wait")
	if code != 0 || !strings.Contains(stdout, "lifted: legal hold on "+target.ID+" (audit entry #") {
		t.Fatalf("hold lift: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = del()
	if code != 0 || !strings.Contains(stdout, " succeeded "+target.ID) {
		t.Fatalf("delete after the lift: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := p.inventory(t)[target.ID]; got.Total() != 0 {
		t.Errorf("after the lift and the deletion the contact still has %d items", got.Total())
	}

	// The audit log: the hold placed and lifted, newest first, signed.
	holds, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Functionality: stores.FunctionalityLegalHold})
	if err != nil || len(holds) != 2 ||
		holds[0].Status != stores.AuditHoldLifted || holds[0].ReasonCode != "matter-closed" ||
		holds[1].Status != stores.AuditHoldPlaced || holds[1].ReasonCode != "litigation" || holds[1].Ticket != "LEGAL-2026-7" ||
		holds[0].Actor != "legal.cli" || holds[1].Actor != "legal.cli" || holds[0].Signature == "" || holds[1].Signature == "" {
		t.Fatalf("legal hold audit entries: %+v %v", holds, err)
	}
	held, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{ContactID: target.ID, Actor: "dpo.cli"})
	if err != nil || len(held) != 2 || held[1].Status != schemas.StatusHeld || held[0].Status != schemas.StatusSucceeded {
		t.Errorf("deletion audit entries of the contact: %+v %v", held, err)
	}

	// `erasure audit`: --user is the exact name, --user-prefix its start in any case.
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--user", "legal.cli"}, 2},
		{[]string{"--user", "legal"}, 0},
		{[]string{"--user", "LEGAL.CLI"}, 0},
		{[]string{"--user-prefix", "LEGAL"}, 2},
		{[]string{"--user-prefix", "dpo."}, 2},
		{[]string{"--user-prefix", "legal.cli", "--user", "legal.cli"}, 2},
	} {
		code, stdout, stderr := cli(t, "", append([]string{"audit", "--data", p.cfg.DataDir}, tc.args...)...)
		if lines := strings.Count(stdout, "\n"); code != 0 || lines != tc.want {
			t.Errorf("audit %q: exit %d, %d entries, want %d\n%s%s", tc.args, code, lines, tc.want, stdout, stderr)
		}
	}
	verifyChain(t, p)
}
