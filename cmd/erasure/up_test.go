package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// lockedBuffer is an io.Writer a running command writes to while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runUp runs `erasure up` with args until it prints its logins, stops it
// and returns what it printed; it fails the test if up exits before, does
// not come up within a minute, or does not stop cleanly.
func runUp(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"up"}, args...), strings.NewReader(""), &stdout, &stderr) }()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(stdout.String(), "logins:") {
		select {
		case code := <-done:
			t.Fatalf("up exited with %d before it was up: %s", code, stderr.String())
		case <-deadline:
			t.Fatalf("up did not come up: %s", stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("up exited with %d: %s", code, stderr.String())
	}
	return stdout.String()
}

// `erasure up` with kafka.brokers configured uses those brokers and starts
// no embedded broker.
func TestUpUsesConfiguredBrokers(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "erasure.yaml")
	if err := os.WriteFile(cfgPath, []byte("kafka:\n  brokers: ["+addr+"]\npartitions: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout := runUp(t, "--config", cfgPath, "--data", filepath.Join(dir, "data"), "--http", "127.0.0.1:0", "--demo-contacts", "0")
	if !strings.Contains(stdout, "broker:  "+addr+" ") {
		t.Errorf("up does not report the configured broker %s:\n%s", addr, stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "kafka")); !os.IsNotExist(err) {
		t.Errorf("up started the embedded broker although kafka.brokers is set (data/kafka: %v)", err)
	}
}

// Settings that cannot all be honoured are refused before anything starts.
func TestUpRefusesContradictorySettings(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		config string
		args   []string
		want   string
	}{
		"broker port with brokers":   {"kafka:\n  brokers: [127.0.0.1:1]\n", []string{"--broker-port", "19999"}, "--broker-port"},
		"tls on the embedded broker": {"kafka:\n  tls: true\n", nil, "embedded broker is plaintext"},
		"unknown sasl mechanism":     {"kafka:\n  brokers: [127.0.0.1:1]\n  sasl_mechanism: MD5\n  sasl_user: u\n", nil, "unknown SASL mechanism"},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			if err := os.WriteFile(p, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(dir, "data-"+strings.ReplaceAll(name, " ", "-"))
			var stderr bytes.Buffer
			args := append([]string{"up", "--config", p, "--data", data, "--http", "127.0.0.1:0", "--demo-contacts", "0"}, tc.args...)
			if code := run(t.Context(), args, strings.NewReader(""), io.Discard, &stderr); code == 0 {
				t.Fatal("up accepted the configuration")
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("error %q does not mention %q", stderr.String(), tc.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("up created its data directory before refusing: %v", err)
			}
		})
	}
}
