package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// After a backup restore brings deleted contacts back, a replay deletes them
// again, as new requests that reference the originals and are audited as
// replays.
func TestReplayAfterRestore(t *testing.T) {
	p := startPipeline(t, 16, nil)
	ids := []string{p.demo[0].ID, p.demo[2].ID}
	code, stdout, stderr := cli(t, "", append([]string{"delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "dpo", "--wait", "--json", "--timeout", "60s"}, ids...)...)
	if code != 0 {
		t.Fatalf("delete: exit %d\n%s\n%s", code, stdout, stderr)
	}
	originals := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var o schemas.DeletionCompleted
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatal(err)
		}
		originals[o.RequestID] = true
	}

	// The restore: the same dataset written again.
	if _, err := demo.Seed(t.Context(), p.app.Stores.Demo(), demo.Options{Contacts: 16, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if rem, err := p.app.Stores.Locator.Remaining(t.Context(), id); err != nil || rem.Total() == 0 {
			t.Fatalf("restore did not bring %s back: %v", id, err)
		}
	}

	if code, out, _ := cli(t, "", "replay", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--since", "10m", "--dry-run"); code != 0 || strings.Count(out, "would replay") != 2 {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	code, stdout, stderr = cli(t, "", "replay", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--since", time.Now().Add(-10*time.Minute).Format(time.RFC3339),
		"--actor", "ops", "--wait", "--json", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s\n%s", code, stdout, stderr)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var o schemas.DeletionCompleted
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatal(err)
		}
		n++
		if o.Status != schemas.StatusSucceeded || o.Source != schemas.SourceReplay || !originals[o.ReplayOf] {
			t.Errorf("replay outcome %s %s source %s replay_of %s", o.Status, o.ErrorCode, o.Source, o.ReplayOf)
		}
	}
	if n != 2 {
		t.Fatalf("%d replay outcomes, want 2", n)
	}
	for _, id := range ids {
		if rem, err := p.app.Stores.Locator.Remaining(t.Context(), id); err != nil || rem.Total() != 0 {
			t.Errorf("%s not erased again: %v %v", id, rem, err)
		}
	}
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Functionality: "Replay"})
	if err != nil || len(entries) != 2 || entries[0].Actor != "ops" {
		t.Fatalf("replay audit entries: %v %+v", err, entries)
	}
	// Replays are not replayed again.
	if code, out, _ := cli(t, "", "replay", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--since", "10m", "--dry-run"); code != 0 || strings.Count(out, "would replay") != 2 {
		t.Errorf("second dry run: exit %d\n%s", code, out)
	}
}
