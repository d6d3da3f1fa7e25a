package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// buildBinary builds erasure once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "erasure")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

// upProcess is `erasure up` running as a child process.
type upProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startUp(t *testing.T, bin string, args ...string) *upProcess {
	t.Helper()
	return startProcess(t, bin, "erasure is up", append([]string{"up"}, args...)...)
}

// startProcess runs the binary and waits for a line starting with ready on
// its standard output ("" waits for nothing).
func startProcess(t *testing.T, bin, ready string, args ...string) *upProcess {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "up.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &upProcess{cmd: cmd, done: make(chan struct{})}
	readyc := make(chan struct{})
	if ready == "" {
		close(readyc)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if ready != "" && strings.HasPrefix(sc.Text(), ready) {
				close(readyc)
				ready = ""
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	select {
	case <-readyc:
	case <-p.done:
		log, _ := os.ReadFile(logf.Name())
		t.Fatalf("%v exited before it was ready:\n%s", args, log)
	case <-time.After(90 * time.Second):
		t.Fatalf("%v was not ready within 90s", args)
	}
	return p
}

func (p *upProcess) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// TestSIGKILLDuringBulkDelete kills `erasure up` with SIGKILL while a
// 200-contact bulk delete is in flight, restarts it on the same data
// directory, and checks that every request reaches exactly one outcome and
// one audit entry, and that every contact is gone.
func TestSIGKILLDuringBulkDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	port := freePort(t)
	args := []string{"--data", dir, "--broker-port", fmt.Sprint(port), "--http", "127.0.0.1:0", "--demo-contacts", "220", "--deadline", "10m"}
	first := startUp(t, bin, args...)

	cfg := app.Default()
	cfg.DataDir = dir
	st, closeStores, err := app.OpenStores(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStores()
	res, err := st.Index.Search(t.Context(), "contacts", stores.Query{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Docs) < 200 {
		t.Fatalf("%d demo contacts", len(res.Docs))
	}
	var ids []string
	for _, d := range res.Docs[:200] {
		ids = append(ids, d.ID)
	}

	code, stdout, stderr := cli(t, strings.Join(ids, "\n"), "delete", "--brokers", fmt.Sprintf("127.0.0.1:%d", port), "--data", dir, "--actor", "crash-test", "--batch", "1", "--wait=false", "-")
	if code != 0 {
		t.Fatalf("delete: exit %d\n%s", code, stderr)
	}
	var requests []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		requests = append(requests, strings.Fields(line)[0])
	}
	if len(requests) != 200 {
		t.Fatalf("%d requests submitted", len(requests))
	}

	audited := func() int {
		es, err := st.Ledger.Audit(t.Context(), stores.AuditFilter{Actor: "crash-test", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	deadline := time.Now().Add(60 * time.Second)
	for audited() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	first.stop(syscall.SIGKILL)
	atKill := audited()
	t.Logf("SIGKILL with %d of 200 requests audited", atKill)
	if atKill >= 200 {
		t.Fatal("every request finished before the kill: the test proved nothing")
	}

	startUp(t, bin, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for audited() < 200 && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}

	for _, id := range requests {
		es, err := st.Ledger.Audit(t.Context(), stores.AuditFilter{RequestID: id})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 {
			t.Errorf("request %s: %d audit entries", id, len(es))
			continue
		}
		s, err := st.Ledger.State(t.Context(), id)
		if err != nil || s.Outcome == nil {
			t.Errorf("request %s: no outcome (%v)", id, err)
			continue
		}
		if s.Outcome.Status != schemas.StatusSucceeded || s.Outcome.AuditSeq != es[0].Seq {
			t.Errorf("request %s: outcome %s %s, audit seq %d vs %d", id, s.Outcome.Status, s.Outcome.ErrorCode, s.Outcome.AuditSeq, es[0].Seq)
		}
	}
	if n := audited(); n != 200 {
		t.Errorf("%d audit entries for 200 requests", n)
	}
	if _, err := st.Ledger.VerifyChain(t.Context()); err != nil {
		t.Error(err)
	}
	for _, id := range ids {
		rem, err := st.Locator.Remaining(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if rem.Total() != 0 {
			t.Errorf("contact %s: %d items remain", id, rem.Total())
		}
	}
}
