package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// A bulk run that stopped after submitting resumes from its journal: the
// same request IDs are reused, so nothing is audited twice, outcomes
// produced while no one was waiting are still reported, and a third run
// publishes nothing.
func TestDeleteResumesFromJournal(t *testing.T) {
	p := startPipeline(t, 8, nil)
	j := filepath.Join(t.TempDir(), "run.journal")
	ids := []string{p.demo[0].ID, p.demo[1].ID, p.demo[2].ID}
	input := strings.Join(ids, "\n")
	base := []string{"delete", "--brokers", p.broker.Addr(), "--actor", "bulk", "--journal", j, "--batch", "1"}

	// First run: submits, then "dies" before waiting.
	if code, _, stderr := cli(t, input, append(base, "--wait=false", "-")...); code != 0 {
		t.Fatalf("first run: %d %s", code, stderr)
	}
	audited := func() int {
		es, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Actor: "bulk"})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	for deadline := time.Now().Add(60 * time.Second); audited() < 3 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}

	// Second run resubmits the same IDs and collects the outcomes.
	code, stdout, stderr := cli(t, input, append(base, "--timeout", "60s", "-")...)
	if code != 0 || strings.Count(stdout, " succeeded ") != 3 {
		t.Fatalf("resumed run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "0 requests already have their outcome, 3 resubmitted, 0 new") {
		t.Errorf("resumed run did not reuse the journal: %s", stderr)
	}
	// Third run: everything is in the journal; nothing is published.
	code, stdout, stderr = cli(t, input, append(base, "--timeout", "60s", "-")...)
	if code != 0 || strings.Count(stdout, " succeeded ") != 3 || !strings.Contains(stderr, "3 requests already have their outcome, 0 resubmitted, 0 new") {
		t.Fatalf("third run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	time.Sleep(time.Second) // a second audit entry, if any, would have landed
	if n := audited(); n != 3 {
		t.Fatalf("%d audit entries for 3 contacts over three runs", n)
	}
}
