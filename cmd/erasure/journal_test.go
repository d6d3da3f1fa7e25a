package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
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
	base := []string{"delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "bulk", "--journal", j, "--batch", "1"}

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

// A crash can leave the last line torn. Opening drops it, so the lines
// appended next are not glued to it; a complete last line that only lacks
// its newline is kept; anything else wrong is an error naming the line.
func TestJournalTornLastLine(t *testing.T) {
	rid := func(n int) string { return fmt.Sprintf("019ac4a0-1111-7000-8000-%012d", n) }
	line := func(n int, ids ...string) string {
		b, _ := json.Marshal(journalLine{RequestID: rid(n), ContactIDs: ids, At: time.Now().UTC()})
		return string(b)
	}
	path := filepath.Join(t.TempDir(), "run.journal")
	for _, tc := range []struct {
		name, content string
		kept          int // request IDs known after opening
	}{
		{"torn", line(1, idA) + "\n" + line(2, idB)[:30], 1},
		{"no final newline", line(1, idA) + "\n" + line(2, idB), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := openJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(j.requests) != tc.kept {
				t.Fatalf("%d requests after opening, want %d", len(j.requests), tc.kept)
			}
			req := schemas.DeletionRequested{RequestID: rid(3), ContactIDs: []string{idC}, RequestedBy: "ops", Source: schemas.SourceCLI, RequestedAt: time.Now()}
			if err := j.recordSubmitted([]schemas.DeletionRequested{req}, []string{""}); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			j, err = openJournal(path)
			if err != nil {
				t.Fatalf("reopening: %v", err)
			}
			defer j.Close()
			if id, ok := j.requestFor([]string{idC}, req.ContentDigest()); !ok || id != rid(3) {
				t.Fatalf("the appended request is not found: %q %v", id, ok)
			}
			if len(j.requests) != tc.kept+1 {
				t.Fatalf("%d requests after reopening, want %d", len(j.requests), tc.kept+1)
			}
		})
	}
	if err := os.WriteFile(path, []byte(line(1, idA)+"\n{not json\n"+line(2, idB)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openJournal(path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a bad middle line: %v", err)
	}
}

// A journal of a million contacts in a thousand requests, every one
// answered, costs the rerun little memory: IDs, digests and offsets, not
// the contacts. The outcome is read back from the file when it is printed.
func TestJournalStaysSmallForAMillionContacts(t *testing.T) {
	if testing.Short() {
		t.Skip("writes an 80 MB journal")
	}
	const requests, per = 1000, 1000
	path := filepath.Join(t.TempDir(), "big.journal")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	batch := func(r int) []string {
		ids := make([]string, per)
		for i := range ids {
			ids[i] = fmt.Sprintf("%08x-%04x-4e53-9d5e-1c2d3e4f5a6b", i, r)
		}
		return ids
	}
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for r := range requests {
		req := schemas.DeletionRequested{RequestID: fmt.Sprintf("019ac4a0-1111-7000-8000-%012d", r), ContactIDs: batch(r),
			RequestedBy: "ops", Source: schemas.SourceCLI, RequestedAt: at}
		st := schemas.StatusSucceeded
		if r%2 == 1 {
			st = schemas.StatusNotFound
		}
		out := schemas.DeletionCompleted{RequestID: req.RequestID, ContactIDs: req.ContactIDs, RequestedBy: "ops", RequestedAt: at,
			CompletedAt: at, Source: schemas.SourceCLI, Status: st, Channels: []schemas.ChannelOutcome{}, AuditSeq: int64(r + 1),
			AuditHash: strings.Repeat("ab", 32), RequestDigest: req.ContentDigest()}
		for _, l := range []journalLine{{RequestID: req.RequestID, ContactIDs: req.ContactIDs, Digest: req.ContentDigest(), At: at},
			{RequestID: req.RequestID, Outcome: &out}} {
			b, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(append(b, '\n'))
		}
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("journal of %d MB: %d KB held after opening", fi.Size()>>20, held>>10)
	if held > 8<<20 {
		t.Errorf("opening the journal holds %d MB", held>>20)
	}

	req := schemas.DeletionRequested{ContactIDs: batch(777), RequestedBy: "ops", Source: schemas.SourceCLI}
	id, ok := j.requestFor(req.ContactIDs, req.ContentDigest())
	if !ok {
		t.Fatal("batch 777 not found")
	}
	req.RequestID = id
	o, ok := j.outcome(req)
	if !ok || o.status != schemas.StatusNotFound {
		t.Fatalf("outcome of batch 777: %+v %v", o, ok)
	}
	out, err := j.readOutcome(o)
	if err != nil || out.AuditSeq != 778 || len(out.ContactIDs) != per {
		t.Fatalf("outcome read back: %v, audit seq %d, %d contacts", err, out.AuditSeq, len(out.ContactIDs))
	}
}
