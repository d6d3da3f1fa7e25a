package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/consumers/aggregator"
	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/kafka"
)

// End-to-end checks that every deletion is accounted for: a reused request
// ID deletes nothing, a failing channel does not hide what its siblings
// delete, a late result is audited, an unknown contact is not found, and an
// outcome whose publish failed is still published.

func firstOfKind(t *testing.T, contacts []demo.Contact, kind string, not ...string) demo.Contact {
	t.Helper()
	for _, c := range contacts {
		if c.Kind == kind && !slices.Contains(not, c.ID) {
			return c
		}
	}
	t.Fatalf("no %s contact in the demo data", kind)
	return demo.Contact{}
}

func decodeOutcomes(t *testing.T, stdout string) []schemas.DeletionCompleted {
	t.Helper()
	var outs []schemas.DeletionCompleted
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var o schemas.DeletionCompleted
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("outcome %q: %v", stdout, err)
		}
		outs = append(outs, o)
	}
	return outs
}

func auditOf(t *testing.T, p *pipeline, requestID string) []stores.AuditEntry {
	t.Helper()
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{RequestID: requestID})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func verifyChain(t *testing.T, p *pipeline) {
	t.Helper()
	if _, err := p.app.Stores.Ledger.VerifyChain(t.Context()); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}

// A request ID reused with another contact (here by a hand-edited journal)
// deletes nothing of that contact anywhere, goes to the dlq with a reason
// naming only the request ID, is audited as refused next to the original
// request's entry, which it leaves alone, and the CLI reports it refused.
func TestReusedRequestIDDeletesNothing(t *testing.T) {
	p := startPipeline(t, 12, nil)
	first := firstOfKind(t, p.demo, "voice")
	second := firstOfKind(t, p.demo, "voice", first.ID)

	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "reuse-test", "--wait", "--json", "--timeout", "60s", first.ID)
	if code != 0 {
		t.Fatalf("first delete: exit %d\n%s\n%s", code, stdout, stderr)
	}
	orig := decodeOutcomes(t, stdout)[0]
	if orig.Status != schemas.StatusSucceeded {
		t.Fatalf("first delete: %s", orig.Status)
	}

	before := p.inventory(t)[second.ID]
	if before.Total() == 0 {
		t.Fatal("the second contact holds nothing: the test would prove nothing")
	}
	journal := filepath.Join(t.TempDir(), "ids.journal")
	line, _ := json.Marshal(map[string]any{"request_id": orig.RequestID, "contact_ids": []string{second.ID}, "submitted_at": time.Now().UTC()})
	if err := os.WriteFile(journal, append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "reuse-test", "--journal", journal,
		"--wait", "--timeout", "60s", second.ID)
	if code != 1 {
		t.Fatalf("delete under a reused request ID: exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "succeeded") || !strings.Contains(stdout, orig.RequestID+" refused "+second.ID+" ("+schemas.ErrCodeRequestIDConflict+")") {
		t.Fatalf("CLI output for a reused request ID:\n%s", stdout)
	}

	// Nothing of the second contact was deleted, in any store.
	after := p.inventory(t)[second.ID]
	for ch, arts := range before {
		for a, n := range arts {
			if after[ch][a] != n {
				t.Errorf("%s/%s of the second contact: %d -> %d", ch, a, n, after[ch][a])
			}
		}
	}
	if _, err := p.app.Stores.Index.Get(t.Context(), "contacts", second.ID); err != nil {
		t.Errorf("the second contact is no longer findable: %v", err)
	}

	// Every consumer of the requests topic sent it to the dlq, saying why.
	for _, r := range readDLQ(t, p, 6) {
		if !strings.Contains(r, orig.RequestID) || !strings.Contains(r, "bound to other content") || strings.Contains(r, second.ID) {
			t.Errorf("dlq reason %q", r)
		}
	}

	entries := auditOf(t, p, orig.RequestID)
	if len(entries) != 2 {
		t.Fatalf("%d audit entries under the request ID, want the original and the refusal", len(entries))
	}
	refused, kept := entries[0], entries[1]
	if refused.Status != schemas.StatusRefused || refused.ErrorCode != schemas.ErrCodeRequestIDConflict ||
		!slices.Equal(refused.ContactIDs, []string{second.ID}) || refused.Functionality != "Bulk Delete" ||
		refused.Seq != kept.Seq+1 || refused.PrevHash != kept.Hash || len(refused.Channels) != 0 {
		t.Errorf("refusal entry %+v", refused)
	}
	if kept.Status != schemas.StatusSucceeded || !slices.Equal(kept.ContactIDs, []string{first.ID}) || kept.Seq != orig.AuditSeq {
		t.Errorf("original entry %+v", kept)
	}
	st, err := p.app.Stores.Ledger.State(t.Context(), orig.RequestID)
	if err != nil || st.Outcome == nil || st.Outcome.AuditSeq != orig.AuditSeq || st.Outcome.Status != schemas.StatusSucceeded ||
		!slices.Equal(st.Request.ContactIDs, []string{first.ID}) {
		t.Errorf("the original request's state changed: %v %+v", err, st)
	}
	for ch, r := range st.Results {
		for _, a := range r.Artefacts {
			if ch == schemas.ChannelVoice && a.Before > 0 && a.Deleted == 0 {
				t.Errorf("a result of the refused content was joined: %s %+v", ch, r)
			}
		}
	}
	if sts, err := p.app.Stores.Ledger.ByContact(t.Context(), second.ID, 5); err != nil || len(sts) != 0 {
		t.Errorf("the second contact's record shows %d deletions (%v)", len(sts), err)
	}
	verifyChain(t, p)
}

// failingWarehouse refuses every read and delete of one table, as a
// warehouse that denies access to it would.
type failingWarehouse struct {
	stores.Warehouse
	table string
}

func (f *failingWarehouse) Count(ctx context.Context, table, column string, values ...string) (int64, error) {
	if table == f.table {
		return 0, stores.Permanent(errors.New("access denied"))
	}
	return f.Warehouse.Count(ctx, table, column, values...)
}

func (f *failingWarehouse) Delete(ctx context.Context, table, column string, values ...string) (int64, error) {
	if table == f.table {
		return 0, stores.Permanent(errors.New("access denied"))
	}
	return f.Warehouse.Delete(ctx, table, column, values...)
}

// slowBucket delays every delete in one bucket; with deaf set, it does not
// stop when its context ends, as a store call already on the wire does not.
type slowBucket struct {
	stores.Objects
	bucket string
	delay  time.Duration
	deaf   bool
}

func (s *slowBucket) Delete(ctx context.Context, bucket string, keys ...string) error {
	if bucket == s.bucket {
		if s.deaf {
			time.Sleep(s.delay)
			return s.Objects.Delete(context.WithoutCancel(ctx), bucket, keys...)
		}
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Objects.Delete(ctx, bucket, keys...)
}

// deletedBy sums what each channel deleted, over entries.
func deletedBy(entries ...stores.AuditEntry) map[schemas.Channel]int64 {
	out := map[schemas.Channel]int64{}
	for _, e := range entries {
		for _, c := range e.Channels {
			for _, a := range c.Artefacts {
				out[c.Channel] += a.Deleted
			}
		}
	}
	return out
}

// One channel fails at once while another is still deleting: the request is
// decided only when that one finished, with its real counts, so every
// deletion performed is in the audit entry, and contact-search never runs.
func TestFailedChannelWaitsForChannelsStillDeleting(t *testing.T) {
	p := startPipeline(t, 12, nil)
	voice := firstOfKind(t, p.demo, "voice")
	before := p.inventory(t)[voice.ID]
	loc := p.app.Stores.Locator
	warehouse, objects := loc.Warehouse, loc.Objects
	loc.Warehouse = &failingWarehouse{Warehouse: warehouse, table: "social_messages"}
	loc.Objects = &slowBucket{Objects: objects, bucket: "erasure-connect", delay: 800 * time.Millisecond}
	if sum(before[schemas.ChannelVoice]) == 0 {
		t.Fatal("the voice contact has no voice artefacts")
	}

	start := time.Now()
	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "sibling-test", "--wait", "--json", "--timeout", "90s", voice.ID)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	out := decodeOutcomes(t, stdout)[0]
	if out.Status != schemas.StatusFailed || out.ErrorCode != schemas.ErrCodeChannelFailed {
		t.Fatalf("outcome %s %s", out.Status, out.ErrorCode)
	}
	if took := time.Since(start); took < 800*time.Millisecond {
		t.Errorf("decided after %s, before voice could have finished a single delete", took)
	}
	for _, ch := range out.Channels {
		want := schemas.StatusSucceeded
		switch ch.Channel {
		case schemas.ChannelSocial:
			want = schemas.StatusFailed
		case schemas.ChannelContactSearch:
			want = schemas.StatusSkipped
		}
		if ch.Status != want {
			t.Errorf("%s: %s %s, want %s", ch.Channel, ch.Status, ch.ErrorCode, want)
		}
	}

	entries := auditOf(t, p, out.RequestID)
	if len(entries) != 1 {
		t.Fatalf("%d audit entries, want the decision only (nothing was left running)", len(entries))
	}
	// What left the stores is what the audit entry says was deleted.
	loc.Warehouse, loc.Objects = warehouse, objects
	after := p.inventory(t)[voice.ID]
	audited := deletedBy(entries...)
	for ch, arts := range before {
		gone := sum(arts) - sum(after[ch])
		if gone != audited[ch] {
			t.Errorf("%s: %d items deleted, the audit says %d", ch, gone, audited[ch])
		}
	}
	if sum(after[schemas.ChannelVoice]) != 0 {
		t.Errorf("voice artefacts left: %v", after[schemas.ChannelVoice])
	}
	if _, err := p.app.Stores.Index.Get(t.Context(), "contacts", voice.ID); err != nil {
		t.Errorf("contact not findable after a failed deletion: %v", err)
	}
	verifyChain(t, p)
}

// A channel still deleting when the deadline passes: the request fails at
// the deadline, the channel stops there instead of working on for nobody,
// and what it deleted before it stopped is audited as a late entry of its
// own, chained after the decision and naming it.
func TestLateResultIsAuditedAsItsOwnEntry(t *testing.T) {
	p := startPipeline(t, 12, nil)
	voice := firstOfKind(t, p.demo, "voice")
	before := p.inventory(t)[voice.ID]
	objects := int64(0)
	for _, a := range []string{"call_recordings", "transcripts", "video_sessions"} {
		objects += before[schemas.ChannelVoice][a]
	}
	if objects == 0 {
		t.Fatal("the voice contact has no voice objects")
	}
	// Voice's object deletes, already sent, outlive a 2 s deadline; its
	// tables do not.
	p.app.Stores.Locator.Objects = &slowBucket{Objects: p.app.Stores.Locator.Objects, bucket: "erasure-connect", delay: 5 * time.Second, deaf: true}

	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "late-test", "--deadline", "2s",
		"--wait", "--json", "--timeout", "60s", voice.ID)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	out := decodeOutcomes(t, stdout)[0]
	if out.Status != schemas.StatusFailed || out.ErrorCode != schemas.ErrCodeDeadline {
		t.Fatalf("outcome %s %s", out.Status, out.ErrorCode)
	}
	for _, ch := range out.Channels {
		if ch.Channel == schemas.ChannelVoice && (ch.Status != schemas.StatusFailed || ch.ErrorCode != schemas.ErrCodeDeadline) {
			t.Fatalf("voice in the decision: %s %s", ch.Status, ch.ErrorCode)
		}
	}

	var entries []stores.AuditEntry
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		entries = auditOf(t, p, out.RequestID)
		if len(entries) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(entries) != 2 {
		t.Fatalf("%d audit entries, want the decision and voice's late entry", len(entries))
	}
	late, decision := entries[0], entries[1]
	if decision.Seq != out.AuditSeq || late.Amends != decision.Seq || late.Seq != decision.Seq+1 || late.PrevHash != decision.Hash ||
		late.Status != schemas.StatusFailed || late.Functionality != decision.Functionality || len(late.Channels) != 1 ||
		late.Channels[0].Channel != schemas.ChannelVoice || late.Channels[0].ErrorCode != schemas.ErrCodeDeadline {
		t.Fatalf("late entry %+v after decision %+v", late, decision)
	}
	after := p.inventory(t)[voice.ID]
	if gone := sum(before[schemas.ChannelVoice]) - sum(after[schemas.ChannelVoice]); gone == 0 || deletedBy(late)[schemas.ChannelVoice] != gone {
		t.Errorf("voice deleted %d items, the late entry says %d", gone, deletedBy(late)[schemas.ChannelVoice])
	}
	if objects > 0 && deletedBy(late)[schemas.ChannelVoice] < objects {
		t.Errorf("the late entry says voice deleted %d items, fewer than the %d objects deleted past the deadline",
			deletedBy(late)[schemas.ChannelVoice], objects)
	}
	// The contact stays findable: the index is deleted only in phase 2.
	if _, err := p.app.Stores.Index.Get(t.Context(), "contacts", voice.ID); err != nil {
		t.Errorf("contact not findable: %v", err)
	}
	// `erasure audit --json` shows the late entry.
	code, auditOut, _ := cli(t, "", "audit", "--data", p.cfg.DataDir, "--json", "--user", "late-test")
	if code != 0 || !strings.Contains(auditOut, `"amends":`+jsonInt(decision.Seq)) {
		t.Errorf("erasure audit --json (exit %d) does not show the late entry:\n%s", code, auditOut)
	}
	verifyChain(t, p)
}

func sum(counts map[string]int64) int64 {
	var n int64
	for _, c := range counts {
		n += c
	}
	return n
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// A contact found in no store is not found, not deleted.
func TestUnknownContactIsNotFound(t *testing.T) {
	p := startPipeline(t, 4, nil)
	unknown := uuid.NewString()
	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "unknown-test", "--wait", "--timeout", "60s", unknown)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "succeeded") || !strings.Contains(stdout, " not found "+unknown) {
		t.Fatalf("CLI output for an unknown contact:\n%s", stdout)
	}
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Actor: "unknown-test"})
	if err != nil || len(entries) != 1 || entries[0].Status != schemas.StatusNotFound || !slices.Equal(entries[0].ContactIDs, []string{unknown}) {
		t.Fatalf("audit: %v %+v", err, entries)
	}
	if sts, err := p.app.Stores.Ledger.ByContact(t.Context(), unknown, 1); err != nil || len(sts) != 1 ||
		sts[0].Outcome == nil || sts[0].Outcome.Status != schemas.StatusNotFound {
		t.Fatalf("state: %v %+v", err, sts)
	}
}

// flakyPublisher fails the first publish to one topic, as a broker blip.
type flakyPublisher struct {
	message.Publisher
	topic  string
	failed atomic.Bool
}

func (f *flakyPublisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == f.topic && f.failed.CompareAndSwap(false, true) {
		return errors.New("broker unavailable")
	}
	return f.Publisher.Publish(topic, msgs...)
}

// An outcome written by the deadline timer whose publish fails is
// published by the sweep: the CLI gets it, once, with one audit entry.
func TestUnpublishedOutcomeIsPublishedLater(t *testing.T) {
	var roles []string
	for _, r := range app.AllRoles() {
		// The aggregator runs here with a flaky publisher; the social
		// consumer is down, so the deadline decides.
		if r != app.RoleAggregator && r != app.RoleConsumer+string(schemas.ChannelSocial) {
			roles = append(roles, r)
		}
	}
	p := startPipelineWith(t, 4, nil, roles)
	flaky := &flakyPublisher{Publisher: p.app.Publisher, topic: p.app.Topics.Outcomes()}
	runAggregator(t, p, flaky)

	id := p.demo[0].ID
	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "republish-test", "--deadline", "2s",
		"--wait", "--json", "--timeout", "60s", id)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	out := decodeOutcomes(t, stdout)[0]
	if out.Status != schemas.StatusFailed || out.ErrorCode != schemas.ErrCodeDeadline {
		t.Fatalf("outcome %s %s", out.Status, out.ErrorCode)
	}
	if !flaky.failed.Load() {
		t.Fatal("the first publish did not fail: the test proved nothing")
	}
	if n := len(auditOf(t, p, out.RequestID)); n != 1 {
		t.Fatalf("%d audit entries, want 1", n)
	}
	st, err := p.app.Stores.Ledger.State(t.Context(), out.RequestID)
	if err != nil || !st.Published {
		t.Fatalf("not marked published: %v", err)
	}
	time.Sleep(2 * time.Second) // a few more sweeps
	if n := countOutcomes(t, p, out.RequestID); n != 1 {
		t.Fatalf("%d outcomes published for the request, want 1", n)
	}
}

// runAggregator runs the aggregator role in the test with its own publisher.
func runAggregator(t *testing.T, p *pipeline, pub message.Publisher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := testLogger(t)
	rcfg := consumers.RouterConfig{DLQTopic: p.app.Topics.DLQ(), Keys: p.app.EventKeys}
	router, err := consumers.NewRouter(rcfg, p.app.Publisher, app.Quieter(logger, 0))
	if err != nil {
		t.Fatal(err)
	}
	sub := func(group string) message.Subscriber {
		s, err := kafka.NewSubscriber(p.app.Kafka, kafka.SubscriberConfig{ConsumerGroup: group, FromStart: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	agg := &aggregator.Aggregator{Ledger: p.app.Stores.Ledger, Publisher: pub, Topics: p.app.Topics, Rule: p.app.Stores.Rule,
		Required: p.app.Stores.DataMap.ChannelsFor(), Deadline: p.cfg.Deadline, Logger: logger}
	agg.Register(router, rcfg, sub(schemas.GroupAggregatorRequests), sub(schemas.GroupAggregatorResults))
	done := make(chan struct{}, 2)
	go func() { router.Run(ctx); done <- struct{}{} }()
	go func() { agg.RunDeadlines(ctx, 200*time.Millisecond); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
	})
	select {
	case <-router.Running():
	case <-time.After(30 * time.Second):
		t.Fatal("aggregator router did not start")
	}
}

// countOutcomes reads the outcomes topic from the start until it is quiet
// and counts the outcomes of one request.
func countOutcomes(t *testing.T, p *pipeline, requestID string) int {
	t.Helper()
	sub, err := kafka.NewSubscriber(p.app.Kafka, kafka.SubscriberConfig{FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, p.app.Topics.Outcomes())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		select {
		case m := <-msgs:
			var out schemas.DeletionCompleted
			if schemas.Decode(m.Payload, p.app.Stores.Rule, &out) == nil && out.RequestID == requestID {
				n++
			}
			m.Ack()
		case <-time.After(2 * time.Second):
			return n
		case <-ctx.Done():
			return n
		}
	}
}
