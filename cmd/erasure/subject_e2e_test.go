package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// erasure delete --subject-phone finds every contact of one person in the
// contact index, whatever way the number is written there or on the
// command line, lists them, and submits them as one request with the reason
// and ticket given; a held contact among them is kept and reported. The
// number itself appears in no output and no audit entry.
func TestDeleteSubjectFromTheCLI(t *testing.T) {
	p := startPipeline(t, 12, nil)
	subject := []string{p.demo[0].ID, p.demo[1].ID, p.demo[2].ID}
	e164 := shareSubject(t, p, p.demo[0], p.demo[1], p.demo[2])
	national := "0" + strings.TrimPrefix(e164, "+44")
	placeHold(t, p, subject[2], schemas.HoldPlace)
	base := []string{"delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--data", p.cfg.DataDir, "--actor", "compliance", "--wait", "--timeout", "60s"}

	for _, bad := range [][]string{
		{"--reason", "because", "--subject-phone", national},
		{"--ticket", "07700900304", "--subject-phone", national},
		{"--subject-phone", "Alex"},
		{"--subject-phone", "+44 7700 900999"},
		{"--subject-phone", national, subject[0]},
	} {
		code, stdout, stderr := cli(t, "", append(slices.Clone(base), bad...)...)
		if code == 0 || strings.Contains(stdout+stderr, national) {
			t.Errorf("%v: exit %d\n%s\n%s", bad, code, stdout, stderr)
		}
	}
	if n := requestsPublished(t, p); n != 0 {
		t.Fatalf("refused invocations published %d requests", n)
	}

	code, stdout, stderr := cli(t, "", append(slices.Clone(base), "--reason", "retention", "--ticket", "INC-20431", "--json",
		"--subject-phone", e164)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, id := range subject {
		if !strings.Contains(stderr, id) {
			t.Errorf("contact %s not listed before submitting:\n%s", id, stderr)
		}
	}
	if strings.Contains(stdout+stderr, national) || strings.Contains(stdout+stderr, e164) || strings.Contains(stdout+stderr, p.demo[0].Phone) {
		t.Errorf("the phone number is in the output:\n%s\n%s", stdout, stderr)
	}
	outs := decodeOutcomes(t, stdout)
	if len(outs) != 1 {
		t.Fatalf("%d outcomes, want one request", len(outs))
	}
	out := outs[0]
	got := slices.Clone(out.ContactIDs)
	slices.Sort(got)
	want := slices.Clone(subject)
	slices.Sort(want)
	if !slices.Equal(got, want) || out.Status != schemas.StatusSucceeded || !slices.Equal(out.HeldContactIDs, subject[2:]) ||
		out.Ticket != "INC-20431" || out.ReasonCode != "retention" {
		t.Fatalf("outcome %+v", out)
	}
	inv := p.inventory(t)
	if inv[subject[0]].Total() != 0 || inv[subject[1]].Total() != 0 || inv[subject[2]].Total() == 0 {
		t.Errorf("after the subject deletion: %d, %d, held %d items", inv[subject[0]].Total(), inv[subject[1]].Total(), inv[subject[2]].Total())
	}
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Ticket: "INC-20431"})
	if err != nil || len(entries) != 1 || entries[0].Functionality != "Bulk Delete" || len(entries[0].ContactIDs) != 3 {
		t.Fatalf("audit %+v %v", entries, err)
	}
	for _, c := range []struct {
		args []string
		want int
	}{{[]string{"--ticket", "INC-20431"}, 1}, {[]string{"--reason", "retention"}, 1}, {[]string{"--ticket", "INC-1"}, 0},
		{[]string{"--functionality", stores.FunctionalityLegalHold}, 1}} {
		code, out, errOut := cli(t, "", append([]string{"audit", "--data", p.cfg.DataDir, "--json"}, c.args...)...)
		if code != 0 || strings.Count(out, "\n") != c.want {
			t.Errorf("audit %v: exit %d, %d entries, want %d\n%s", c.args, code, strings.Count(out, "\n"), c.want, errOut)
		}
	}
}
