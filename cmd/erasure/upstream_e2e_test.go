package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/kafka"
)

// publishUpstream publishes a deletion request as an upstream system does:
// straight to the requests topic, signed with signer unless it is nil.
func publishUpstream(t *testing.T, p *pipeline, signer *schemas.Keyring, src schemas.Source, ids ...string) string {
	t.Helper()
	kp, err := kafka.NewPublisher(p.app.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	req := &schemas.DeletionRequested{RequestID: uuid.Must(uuid.NewV7()).String(), ContactIDs: ids, RequestedBy: "crm-service",
		RequestedAt: time.Now().UTC(), Source: src, Channels: schemas.AllChannels, ReasonCode: "gdpr-art17"}
	m, err := producers.NewMessage(req, req.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if signer != nil {
		if err := producers.Sign(signer, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := kp.Publish(p.app.Topics.Requests(), m); err != nil {
		t.Fatal(err)
	}
	return req.RequestID
}

// Upstream systems are known by the key they sign with: a request signed
// with a configured producer key is deleted and audited with
// upstream:<key> beside the requester it claims; an unsigned one, one
// signed with a key nobody configured, and one where an upstream key claims
// to be the UI all go to the dlq, delete nothing and leave no audit entry;
// erasure's own CLI is audited as erasure:local; a replay re-issues only
// what the pipeline admitted.
func TestUpstreamProducersAreIdentifiedByKey(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "crm.key")
	secret := []byte(strings.Repeat("c", 40))
	if err := os.WriteFile(keyFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t, 30, func(c *app.Config) {
		c.Upstream.Keys = []app.EventKeyFile{{ID: "crm", File: keyFile}}
	})
	crm, err := schemas.NewKeyring("crm", schemas.EventKey{ID: "crm", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := schemas.NewKeyring("rogue", schemas.EventKey{ID: "rogue", Secret: []byte(strings.Repeat("r", 40))})
	if err != nil {
		t.Fatal(err)
	}
	cs := pickCoverage(p.demo)
	if len(cs) < 5 {
		t.Fatalf("%d contacts with data", len(cs))
	}
	before := p.inventory(t)

	// Refused first, so that the dlq holds refusals of these only.
	refused := map[string]string{
		publishUpstream(t, p, nil, schemas.SourceUpstream, cs[1].ID):   cs[1].ID,
		publishUpstream(t, p, rogue, schemas.SourceUpstream, cs[2].ID): cs[2].ID,
		publishUpstream(t, p, crm, schemas.SourceUI, cs[3].ID):         cs[3].ID,
	}
	// The aggregator and every artefact channel read requests; each
	// refuses each of these to the dlq.
	reasons := readDLQ(t, p, 3)
	for _, r := range reasons {
		if !strings.Contains(r, "invalid event") {
			t.Errorf("dlq reason %q", r)
		}
	}

	signed := publishUpstream(t, p, crm, schemas.SourceUpstream, cs[0].ID)
	out := waitOutcome(t, p, signed)
	if out.Status != schemas.StatusSucceeded || out.Producer != "upstream:crm" {
		t.Fatalf("signed upstream request: %s producer %q", out.Status, out.Producer)
	}
	entries := auditOf(t, p, signed)
	if len(entries) != 1 || entries[0].Producer != "upstream:crm" || entries[0].Actor != "crm-service" ||
		entries[0].Functionality != "Upstream Request" {
		t.Fatalf("audit of the signed upstream request: %+v", entries)
	}
	if got := p.inventory(t)[cs[0].ID]; got.Total() != 0 {
		t.Errorf("the signed request's contact still has %d items", got.Total())
	}

	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "jane.dpo",
		"--wait", "--json", "--timeout", "60s", cs[4].ID)
	if code != 0 {
		t.Fatalf("cli delete: exit %d\n%s\n%s", code, stdout, stderr)
	}
	cliEntries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{ContactID: cs[4].ID})
	if err != nil || len(cliEntries) != 1 || cliEntries[0].Producer != "erasure:local" || cliEntries[0].Actor != "jane.dpo" {
		t.Fatalf("audit of the CLI request: %+v %v", cliEntries, err)
	}

	// The refused requests deleted nothing and were never audited.
	after := p.inventory(t)
	for id, contact := range refused {
		if got, want := after[contact].Total(), before[contact].Total(); got != want || want == 0 {
			t.Errorf("refused request %s: contact %d -> %d items", id, want, got)
		}
		if e := auditOf(t, p, id); len(e) != 0 {
			t.Errorf("refused request %s has audit entries: %+v", id, e)
		}
	}

	// The replay verifies with the deployment's configuration, upstream
	// keys included.
	cfgFile := filepath.Join(t.TempDir(), "erasure.yaml")
	if err := os.WriteFile(cfgFile, []byte("upstream:\n  keys:\n    - id: crm\n      file: "+keyFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = cli(t, "", "replay", "--config", cfgFile, "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir,
		"--since", "10m", "--dry-run")
	if code != 0 || strings.Count(stdout, "would replay") != 2 || !strings.Contains(stdout, signed) {
		t.Fatalf("replay dry run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for id := range refused {
		if strings.Contains(stdout, id) {
			t.Errorf("replay would re-issue refused request %s", id)
		}
	}
	verifyChain(t, p)
}

// waitOutcome waits for the outcome of request id.
func waitOutcome(t *testing.T, p *pipeline, id string) schemas.DeletionCompleted {
	t.Helper()
	sub, err := kafka.NewSubscriber(p.app.Kafka, kafka.SubscriberConfig{FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	outs, err := sub.Subscribe(ctx, p.app.Topics.Outcomes())
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-outs:
			m.Ack()
			var out schemas.DeletionCompleted
			if schemas.Decode(m.Payload, p.app.Stores.Rule, &out) == nil && out.RequestID == id {
				return out
			}
		case <-ctx.Done():
			t.Fatalf("no outcome for %s", id)
		}
	}
}
