package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/internal/app"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/kafka"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/webapi"
	"golang.org/x/crypto/bcrypt"
)

// pipeline is the whole product in-process on the embedded defaults.
type pipeline struct {
	cfg    app.Config
	app    *app.App
	broker *kafka.EmbeddedBroker
	demo   []demo.Contact
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startPipeline seeds contacts and runs every role until the test ends.
func startPipeline(t testing.TB, contacts int, mutate func(*app.Config)) *pipeline {
	t.Helper()
	return startPipelineWith(t, contacts, mutate, app.AllRoles())
}

// startPipelineWith runs only the given roles.
func startPipelineWith(t testing.TB, contacts int, mutate func(*app.Config), roles []string) *pipeline {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := app.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Partitions = 3
	cfg.Deadline = 60 * time.Second
	for _, role := range []string{"agent", "dpo", "auditor", "admin"} {
		hash, err := bcrypt.GenerateFromPassword([]byte(role+"-pass"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Web.Users = append(cfg.Web.Users, webapi.User{Name: role, PasswordHash: string(hash), Roles: []string{role}})
	}
	if mutate != nil {
		mutate(&cfg)
	}
	logger := testLogger(t)
	broker, err := kafka.StartEmbedded(ctx, filepath.Join(cfg.DataDir, "kafka"), freePort(t), cfg.Partitions, logger)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.Brokers = []string{broker.Addr()}
	// Seeded before the start-up check, which needs the demo stores.
	var seeded []demo.Contact
	a, cleanup, err := app.New(ctx, cfg, roles, logger, app.Prepare(func(ctx context.Context, st *app.Stores) error {
		var err error
		seeded, err = demo.Seed(ctx, st.Demo(), demo.Options{Contacts: contacts, Seed: 7})
		return err
	}))
	if err != nil {
		broker.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("app: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("app did not stop within 30s")
		}
		cleanup()
		broker.Close()
	})
	select {
	case <-a.Running():
	case <-time.After(30 * time.Second):
		t.Fatal("router did not start")
	}
	return &pipeline{cfg: cfg, app: a, broker: broker, demo: seeded}
}

// inventory counts every contact's artefacts per channel and type.
func (p *pipeline) inventory(t *testing.T) map[string]locate.Remaining {
	t.Helper()
	out := map[string]locate.Remaining{}
	for _, c := range p.demo {
		r, err := p.app.Stores.Locator.Remaining(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[c.ID] = r
	}
	return out
}

// cli runs an erasure command in-process and returns its exit code and output.
func cli(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// pickCoverage returns contacts that between them hold every artefact type.
func pickCoverage(contacts []demo.Contact) []demo.Contact {
	want := []func(demo.Contact) bool{
		func(c demo.Contact) bool { return c.Kind == "voice" && c.Video },
		func(c demo.Contact) bool { return c.Kind == "chat" && c.Attach },
		func(c demo.Contact) bool { return c.Kind == "email" && c.Attach },
		func(c demo.Contact) bool { return c.Kind == "email" && c.Webform },
		func(c demo.Contact) bool { return c.Kind == "social" },
	}
	var out []demo.Contact
	for _, w := range want {
		for _, c := range contacts {
			if w(c) && !slices.ContainsFunc(out, func(o demo.Contact) bool { return o.ID == c.ID }) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func TestEndToEndEveryArtefactType(t *testing.T) {
	p := startPipeline(t, 48, nil)
	targets := pickCoverage(p.demo)
	if len(targets) != 5 {
		t.Fatalf("demo data lacks coverage: %d targets", len(targets))
	}
	before := p.inventory(t)

	// Every artefact type the data map names is held by at least one target.
	covered := map[string]int64{}
	var ids []string
	for _, c := range targets {
		ids = append(ids, c.ID)
		for ch, arts := range before[c.ID] {
			for a, n := range arts {
				covered[string(ch)+"/"+a] += n
			}
		}
	}
	for ch, arts := range p.app.Stores.DataMap.ArtefactTypes() {
		for _, a := range arts {
			if covered[string(ch)+"/"+a] == 0 {
				t.Errorf("no target holds %s/%s: the test would prove nothing for it", ch, a)
			}
		}
	}
	// Neighbours share a thread or a data-lake file with a target.
	neighbours := 0
	for _, c := range p.demo {
		if slices.Contains(ids, c.ID) {
			continue
		}
		for _, tc := range targets {
			if (c.ThreadID != "" && c.ThreadID == tc.ThreadID) || c.Date.Format("2006-01-02") == tc.Date.Format("2006-01-02") {
				neighbours++
			}
		}
	}
	if neighbours == 0 {
		t.Fatal("no contact shares a thread or data-lake file with a target")
	}

	args := append([]string{"delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "e2e-test", "--wait", "--json", "--timeout", "90s"}, ids...)
	code, stdout, stderr := cli(t, "", args...)
	if code != 0 {
		t.Fatalf("delete exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var outs []schemas.DeletionCompleted
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var o schemas.DeletionCompleted
		if err := dec.Decode(&o); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
	}
	if len(outs) != len(ids) {
		t.Fatalf("%d outcomes for %d requests", len(outs), len(ids))
	}
	deleted := map[string]int64{}
	for _, o := range outs {
		if o.Status != schemas.StatusSucceeded {
			t.Errorf("request %s: %s %s", o.RequestID, o.Status, o.ErrorCode)
		}
		for _, ch := range o.Channels {
			for _, a := range ch.Artefacts {
				deleted[string(ch.Channel)+"/"+a.Artefact] += a.Deleted
				if a.After != 0 {
					t.Errorf("%s/%s: after = %d", ch.Channel, a.Artefact, a.After)
				}
			}
		}
	}

	after := p.inventory(t)
	for _, c := range p.demo {
		if slices.Contains(ids, c.ID) {
			if n := after[c.ID].Total(); n != 0 {
				t.Errorf("deleted contact %s still has %d items: %v", c.ID, n, after[c.ID])
			}
			continue
		}
		for ch, arts := range before[c.ID] {
			for a, n := range arts {
				if got := after[c.ID][ch][a]; got != n {
					t.Errorf("contact %s (%s) lost data: %s/%s %d -> %d", c.ID, c.Kind, ch, a, n, got)
				}
			}
		}
	}
	// The channel results account for what was there.
	for k, n := range covered {
		if deleted[k] < n {
			t.Errorf("%s: outcome reports %d deleted, %d were there", k, deleted[k], n)
		}
	}

	// verify agrees, and finds the neighbours' data still there.
	if code, out, _ := cli(t, "", append([]string{"verify", "--data", p.cfg.DataDir}, ids...)...); code != 0 {
		t.Errorf("verify exit %d:\n%s", code, out)
	}
	var other string
	for _, c := range p.demo {
		if !slices.Contains(ids, c.ID) {
			other = c.ID
			break
		}
	}
	if code, out, _ := cli(t, "", "verify", "--data", p.cfg.DataDir, other); code != 1 {
		t.Errorf("verify of an untouched contact: exit %d, want 1:\n%s", code, out)
	}

	// One audit entry per request, and the chain holds.
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Actor: "e2e-test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(ids) {
		t.Errorf("%d audit entries for %d requests", len(entries), len(ids))
	}
	for _, e := range entries {
		if e.Setting != stores.AuditSetting || e.Functionality != "Bulk Delete" {
			t.Errorf("audit entry %d: setting %q functionality %q", e.Seq, e.Setting, e.Functionality)
		}
	}
	if _, err := p.app.Stores.Ledger.VerifyChain(t.Context()); err != nil {
		t.Error(err)
	}

	// Resubmitting a request (same ID) never yields a second outcome; a new
	// request for contacts already gone succeeds with zero counts.
	req := &producers.Requester{Publisher: p.app.Publisher, Topics: p.app.Topics, Channels: p.app.Stores.DataMap.ChannelsFor(), Rule: p.app.Stores.Rule}
	if _, err := req.Submit(t.Context(), producers.Request{RequestID: outs[0].RequestID, ContactIDs: outs[0].ContactIDs, RequestedBy: "e2e-test", Source: schemas.SourceCLI}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "e2e-again", "--wait", "--json", "--timeout", "60s", ids[0])
	if code != 0 {
		t.Fatalf("second delete: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var again schemas.DeletionCompleted
	if err := json.Unmarshal([]byte(stdout), &again); err != nil {
		t.Fatal(err)
	}
	for _, ch := range again.Channels {
		for _, a := range ch.Artefacts {
			if a.Before != 0 || a.Deleted != 0 {
				t.Errorf("already deleted: %s/%s before=%d deleted=%d", ch.Channel, a.Artefact, a.Before, a.Deleted)
			}
		}
	}
	entries, err = p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{RequestID: outs[0].RequestID})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("resubmitted request has %d audit entries, want 1", len(entries))
	}
}

func TestDeleteRejectsBadInput(t *testing.T) {
	p := startPipeline(t, 12, nil)
	before := p.inventory(t)
	good := p.demo[0].ID
	cases := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"wildcard", "", []string{good, "*"}},
		{"percent", "", []string{good[:35] + "%"}},
		{"query syntax", "", []string{`contact_id:* OR 1=1`}},
		{"prefix of a real ID", "", []string{good[:8]}},
		{"uppercase variant", "", []string{strings.ToUpper(good)}},
		{"empty list", "", nil},
		{"empty stdin", "\n\n# only comments\n", []string{"-"}},
		{"bad line on stdin", good + "\n" + good + "?\n", []string{"-"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "bad-input"}, tc.args...)
			code, _, stderr := cli(t, tc.stdin, args...)
			if code == 0 {
				t.Fatalf("exit 0 for bad input")
			}
			if !strings.Contains(stderr, "nothing was submitted") && !strings.Contains(stderr, "no contact IDs") {
				t.Errorf("unclear error: %q", stderr)
			}
		})
	}
	// A schema-invalid upstream event and an oversized one go to the dlq
	// with a reason and delete nothing.
	pub := p.app.Publisher
	invalid := []byte(`{"type":"DeletionRequested","schema_version":1,"request_id":"0190aaaa-0000-7000-8000-000000000000","contact_ids":["*"],"requested_by":"crm","requested_at":"2026-01-01T00:00:00Z","source":"upstream","channels":["contact-search"]}`)
	// Signed, so that it is refused for what it says, not for who sent it.
	m := message.NewMessage(watermill.NewUUID(), invalid)
	m.Metadata.Set(schemas.HeaderEventType, schemas.TypeDeletionRequested)
	if err := pub.Publish(p.app.Topics.Requests(), m); err != nil {
		t.Fatal(err)
	}
	// Five artefact channels and the aggregator each read requests, so the
	// invalid event reaches the dlq once from each.
	reasons := readDLQ(t, p, 6)
	for _, r := range reasons {
		if !strings.Contains(r, "invalid event") || !strings.Contains(r, "/contact_ids/0") {
			t.Errorf("dlq reason %q does not say what is wrong", r)
		}
		if strings.Contains(r, `"*"`) {
			t.Errorf("dlq reason repeats the payload: %q", r)
		}
	}
	// An event over 1 MB is refused by the producer or, if a broker takes
	// it, by every consumer.
	huge := append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), schemas.MaxEventBytes)...)
	huge = append(huge, '"', '}')
	if err := pub.Publish(p.app.Topics.Requests(), message.NewMessage(watermill.NewUUID(), huge)); err == nil {
		for _, r := range readDLQ(t, p, 12)[6:] {
			if !strings.Contains(r, "larger than") {
				t.Errorf("oversized event: dlq reason %q", r)
			}
		}
	} else if !strings.Contains(err.Error(), "larger than the max message size") {
		t.Errorf("oversized event refused with an unclear error: %v", err)
	}
	after := p.inventory(t)
	for id, r := range before {
		if after[id].Total() != r.Total() {
			t.Errorf("contact %s changed after bad input: %d -> %d", id, r.Total(), after[id].Total())
		}
	}
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("%d audit entries after bad input only", len(entries))
	}
}

// readDLQ reads the dlq from the start until it holds n records, and returns
// their reasons.
func readDLQ(t *testing.T, p *pipeline, n int) []string {
	t.Helper()
	sub, err := kafka.NewSubscriber(p.app.Kafka, kafka.SubscriberConfig{FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, p.app.Topics.DLQ())
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for len(reasons) < n {
		select {
		case m := <-msgs:
			reasons = append(reasons, m.Metadata.Get(middleware.ReasonForPoisonedKey))
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("dlq holds %d records, want %d", len(reasons), n)
		}
	}
	return reasons
}
