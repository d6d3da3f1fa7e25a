package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// brokenObjects fails every delete in one bucket while broken is set, as an
// object store that refuses writes would.
type brokenObjects struct {
	stores.Objects
	bucket string
	broken atomic.Bool
}

func (b *brokenObjects) Delete(ctx context.Context, bucket string, keys ...string) error {
	if b.broken.Load() && bucket == b.bucket {
		return stores.Permanent(errors.New("access denied"))
	}
	return b.Objects.Delete(ctx, bucket, keys...)
}

func (b *brokenObjects) Replace(ctx context.Context, bucket, key string, r io.Reader) error {
	if b.broken.Load() && bucket == b.bucket {
		return stores.Permanent(errors.New("access denied"))
	}
	return b.Objects.Replace(ctx, bucket, key, r)
}

// A channel that fails makes the request fail, leaves the contact findable
// (contact-search never runs), and a retry after the store recovers
// completes the deletion.
func TestFailedChannelKeepsContactFindable(t *testing.T) {
	p := startPipeline(t, 12, nil)
	broken := &brokenObjects{Objects: p.app.Stores.Objects, bucket: "erasure-connect"}
	broken.broken.Store(true)
	p.app.Stores.Locator.Objects = broken

	var voice demo.Contact
	for _, c := range p.demo {
		if c.Kind == "voice" {
			voice = c
			break
		}
	}
	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "fail-test", "--wait", "--json", "--timeout", "60s", voice.ID)
	if code != 1 {
		t.Fatalf("delete with a broken store: exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	var out schemas.DeletionCompleted
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Status != schemas.StatusFailed || out.ErrorCode != schemas.ErrCodeChannelFailed {
		t.Fatalf("outcome %s %s", out.Status, out.ErrorCode)
	}
	for _, ch := range out.Channels {
		switch ch.Channel {
		case schemas.ChannelVoice:
			if ch.Status != schemas.StatusFailed || ch.ErrorCode != schemas.ErrCodeStoreRejected {
				t.Errorf("voice: %s %s", ch.Status, ch.ErrorCode)
			}
		case schemas.ChannelContactSearch:
			if ch.Status != schemas.StatusSkipped {
				t.Errorf("contact-search ran although voice failed: %s", ch.Status)
			}
		}
	}
	if _, err := p.app.Stores.Index.Get(t.Context(), "contacts", voice.ID); err != nil {
		t.Fatalf("contact is no longer findable after a failed deletion: %v", err)
	}
	states, err := p.app.Stores.Ledger.ByContact(t.Context(), voice.ID, 5)
	if err != nil || len(states) != 1 || states[0].Outcome == nil || states[0].Outcome.Status != schemas.StatusFailed {
		t.Fatalf("the failed deletion is not recorded against the contact: %v %+v", err, states)
	}
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{RequestID: out.RequestID})
	if err != nil || len(entries) != 1 || entries[0].Status != schemas.StatusFailed {
		t.Fatalf("failed deletion audit: %v %+v", err, entries)
	}

	broken.broken.Store(false)
	code, stdout, stderr = cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "fail-test", "--wait", "--timeout", "60s", voice.ID)
	if code != 0 || !strings.Contains(stdout, "succeeded") {
		t.Fatalf("retry: exit %d\n%s\n%s", code, stdout, stderr)
	}
	rem, err := p.app.Stores.Locator.Remaining(t.Context(), voice.ID)
	if err != nil || rem.Total() != 0 {
		t.Fatalf("after retry: %v %v", err, rem)
	}
}

// A request that a channel never answers fails at its deadline, and the
// contact stays findable.
func TestDeadlineFailsUnansweredRequest(t *testing.T) {
	var roles []string
	for _, r := range app.AllRoles() {
		if r != app.RoleConsumer+string(schemas.ChannelSocial) {
			roles = append(roles, r) // the social consumer is down
		}
	}
	p := startPipelineWith(t, 4, func(c *app.Config) { c.Deadline = 3 * time.Second }, roles)
	id := p.demo[0].ID
	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "deadline-test", "--deadline", "3s", "--wait", "--json", "--timeout", "60s", id)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	var out schemas.DeletionCompleted
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Status != schemas.StatusFailed || out.ErrorCode != schemas.ErrCodeDeadline {
		t.Fatalf("outcome %s %s", out.Status, out.ErrorCode)
	}
	for _, ch := range out.Channels {
		if ch.Channel == schemas.ChannelSocial && ch.ErrorCode != schemas.ErrCodeDeadline {
			t.Errorf("social: %s %s", ch.Status, ch.ErrorCode)
		}
	}
	if _, err := p.app.Stores.Index.Get(t.Context(), "contacts", id); err != nil {
		t.Fatalf("contact not findable after a timed-out deletion: %v", err)
	}
}

// slowObjects delays or refuses deletes on demand, so the UI can be seen
// mid-deletion and failing.
type slowObjects struct {
	stores.Objects
	delay atomic.Int64 // nanoseconds
	fail  atomic.Bool
}

func (s *slowObjects) Delete(ctx context.Context, bucket string, keys ...string) error {
	if s.fail.Load() {
		return stores.Permanent(errors.New("access denied"))
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Objects.Delete(ctx, bucket, keys...)
}
