package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/erasure-project/erasure/stores/kafka"
)

// A process that starts while its broker is away (restarting, or not up
// yet) waits for it and creates its topics, instead of exiting; one whose
// start is called off stops waiting.
func TestEnsureTopicsWaitsForTheBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there until the broker starts below
	cfg := kafka.Config{Brokers: []string{l.Addr().String()}, ClientID: "topics-test"}

	done := make(chan error, 1)
	go func() { done <- ensureTopics(t.Context(), cfg, 1, 1, slog.New(slog.DiscardHandler), "t1", "t2") }()
	select {
	case err := <-done:
		t.Fatalf("returned with no broker to reach: %v", err)
	case <-time.After(700 * time.Millisecond):
	}
	cluster, err := kfake.NewCluster(kfake.Ports(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ensureTopics once the broker is up: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still waiting 30 s after the broker came up")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, topic := range []string{"t1", "t2"} {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
			t.Errorf("produce to %s: %v", topic, err)
		}
	}

	cluster.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = ensureTopics(ctx, cfg, 1, 1, slog.New(slog.DiscardHandler), "t3")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("with the start called off: %v after %s, want the context's error at once", err, time.Since(start))
	}
}
