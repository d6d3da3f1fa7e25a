//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/kafka"
)

// BenchmarkDeleteMillionIDs measures the peak memory (RSS) of the CLI's
// own work on a file of 1,000,000 contact IDs (1% of them repeats), each
// in a process of its own so nothing else counts:
//
//   - read: the first pass (read, check, drop repeats) and a second pass
//     over the spool, in batches as the run reads it;
//   - run: the built binary, `erasure delete --file F --journal J`, against
//     an embedded broker where a stand-in answers every request at once
//     (half of them not found), so the run is the CLI's work alone; then
//     again with the same journal, which finds every request done.
//
// Run with:
//
//	go test ./cmd/erasure -run XXX -bench DeleteMillionIDs -benchtime 1x
func BenchmarkDeleteMillionIDs(b *testing.B) {
	const lines, repeats = 1_000_000, 10_000
	file := filepath.Join(b.TempDir(), "ids.txt")
	writeIDFile(b, file, lines, repeats)

	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBulkMemoryChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "ERASURE_BULK_MEMORY_FILE="+file)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), fmt.Sprintf("unique %d duplicates %d", lines-repeats, repeats)) {
				b.Fatalf("child: %v\n%s", err, out)
			}
			b.ReportMetric(peakRSS(cmd), "peak-RSS-MiB")
		}
	})

	b.Run("run", func(b *testing.B) {
		bin := filepath.Join(b.TempDir(), "erasure")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			b.Fatalf("build: %v\n%s", err, out)
		}
		keysDir := b.TempDir()
		if _, _, err := app.InitKeys(keysDir); err != nil {
			b.Fatal(err)
		}
		addr := answeringBroker(b, keysDir)
		for b.Loop() {
			dir := b.TempDir()
			// The second run resumes from the first one's journal: every
			// request is done, and each outcome is read back and printed.
			for _, name := range []string{"", "rerun-"} {
				var stderr bytes.Buffer
				cmd := exec.Command(bin, "delete", "--brokers", addr, "--data", keysDir, "--actor", "bench", "--file", file,
					"--journal", filepath.Join(dir, "run.journal"), "--progress-interval", "30s")
				cmd.Dir = dir
				cmd.Stderr = &stderr
				start := time.Now()
				if err := cmd.Run(); err != nil {
					b.Fatalf("delete: %v\n%s", err, stderr.String())
				}
				b.Logf("%s", stderr.String())
				b.ReportMetric(peakRSS(cmd), name+"peak-RSS-MiB")
				b.ReportMetric(float64(lines-repeats)/time.Since(start).Seconds(), name+"contacts/s")
			}
		}
	})
}

// TestBulkMemoryChild is the read pass of BenchmarkDeleteMillionIDs, run
// in a process of its own.
func TestBulkMemoryChild(t *testing.T) {
	file := os.Getenv("ERASURE_BULK_MEMORY_FILE")
	if file == "" {
		t.Skip("the child process of BenchmarkDeleteMillionIDs")
	}
	in, err := readBulkInput(t.Context(), bulkInputOptions{File: file, Check: checkWith(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	n := 0
	if err := in.spool.batches(defaultFileBatch, func(ids []string) error {
		n += len(ids)
		return nil
	}); err != nil || n != in.Unique {
		t.Fatalf("second pass: %d of %d (%v)", n, in.Unique, err)
	}
	fmt.Printf("unique %d duplicates %d\n", in.Unique, in.Duplicates)
}

// writeIDFile writes lines random contact IDs, the last repeats of them
// repeating earlier ones.
func writeIDFile(tb testing.TB, path string, lines, repeats int) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "# contact IDs")
	var first []string
	for i := range lines - repeats {
		var u [16]byte
		rand.Read(u[:])
		id := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
		if i < repeats {
			first = append(first, id)
		}
		w.WriteString(id + "\n")
	}
	for _, id := range first {
		w.WriteString(id + "\n")
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// peakRSS is a finished child's peak resident set, in MiB.
func peakRSS(cmd *exec.Cmd) float64 {
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // KiB on Linux
}

// answeringBroker starts an embedded broker and a stand-in for the
// pipeline that answers every request on it at once: not found when its
// first contact ID starts with 8-f, so about half, succeeded otherwise.
func answeringBroker(b *testing.B, keysDir string) string {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	broker, err := kafka.StartEmbedded(ctx, b.TempDir(), freePort(b), 6, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { broker.Close() })
	cfg := kafka.Config{Brokers: []string{broker.Addr()}}
	topics := schemas.Topics{Prefix: "erasure."}
	if err := kafka.EnsureTopics(ctx, cfg, 6, 1, topics.Requests(), topics.Outcomes()); err != nil {
		b.Fatal(err)
	}
	sub, err := kafka.NewSubscriber(cfg, kafka.SubscriberConfig{FromStart: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sub.Close() })
	kp, err := kafka.NewPublisher(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { kp.Close() })
	acfg := app.Default()
	acfg.DataDir = keysDir
	keys, err := acfg.EventKeys(false)
	if err != nil {
		b.Fatal(err)
	}
	pub := producers.SigningPublisher{Publisher: kp, Keys: keys}
	msgs, err := sub.Subscribe(ctx, topics.Requests())
	if err != nil {
		b.Fatal(err)
	}
	rule, err := schemas.NewContactIDRule("")
	if err != nil {
		b.Fatal(err)
	}
	seq := int64(0)
	go func() {
		for m := range msgs {
			var req schemas.DeletionRequested
			if err := schemas.Decode(m.Payload, rule, &req); err != nil {
				m.Ack()
				continue
			}
			seq++
			st := schemas.StatusSucceeded
			if req.ContactIDs[0][0] >= '8' {
				st = schemas.StatusNotFound
			}
			out := &schemas.DeletionCompleted{RequestID: req.RequestID, ContactIDs: req.ContactIDs, RequestedBy: req.RequestedBy,
				RequestedAt: req.RequestedAt, CompletedAt: time.Now().UTC(), Source: req.Source, Status: st,
				Channels: []schemas.ChannelOutcome{}, AuditSeq: seq, AuditHash: strings.Repeat("ab", 32), RequestDigest: req.ContentDigest()}
			if err := producers.Publish(pub, topics.Outcomes(), out, out.RequestID); err != nil && ctx.Err() == nil {
				b.Errorf("stand-in: %v", err)
			}
			m.Ack()
		}
	}()
	return broker.Addr()
}
