package kafka

import (
	"context"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A restarted embedded broker still has its topics, their records and the
// groups' committed offsets, so a consumer resumes after what it acked.
func TestEmbeddedBrokerRestartKeepsState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	port := kafkaFreePort(t)

	b, err := StartEmbedded(ctx, dir, port, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := Config{Brokers: []string{b.Addr()}}
	if err := EnsureTopics(ctx, cfg, 1, 1, "requests"); err != nil {
		t.Fatal(err)
	}
	pub := kafkaTestPublisher(t, cfg)
	sent := kafkaPublishN(t, pub, "requests", 10)
	_ = pub.Close()

	// A client that asks for auto-creation gets the default partition count.
	auto, err := kgo.NewClient(append(cfg.Opts(), kgo.AllowAutoTopicCreation())...)
	if err != nil {
		t.Fatal(err)
	}
	if err := auto.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	auto.Close()

	group := SubscriberConfig{ConsumerGroup: "channel", FromStart: true}
	sub, err := NewSubscriber(cfg, group)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(ctx, "requests")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range sent[:4] {
		kafkaExpect(t, kafkaReceive(t, msgs), want).Ack()
	}
	kafkaExpect(t, kafkaReceive(t, msgs), sent[4]) // not acked
	kafkaCloseWithin(t, sub)
	b.Close()

	b, err = StartEmbedded(ctx, dir, port, 3, nil)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(b.Close)

	td := kafkaListTopics(t, cfg, "requests", "auto")
	if n := len(td["requests"].Partitions); n != 1 {
		t.Errorf("requests has %d partitions after restart, want 1", n)
	}
	if n := len(td["auto"].Partitions); n != 3 {
		t.Errorf("auto-created topic has %d partitions after restart, want 3", n)
	}
	if got := kafkaCommitted(t, cfg, group.ConsumerGroup, "requests", 0); got != 4 {
		t.Errorf("committed offset after restart = %d, want 4", got)
	}

	// The group resumes at the first unacked record...
	msgs = kafkaTestSubscribe(t, cfg, group, "requests")
	for _, want := range sent[4:] {
		kafkaExpect(t, kafkaReceive(t, msgs), want).Ack()
	}
	// ...and every record is still in the log.
	msgs = kafkaTestSubscribe(t, cfg, SubscriberConfig{FromStart: true}, "requests")
	for _, want := range sent {
		kafkaExpect(t, kafkaReceive(t, msgs), want).Ack()
	}
}

func TestEmbeddedBrokerPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if b, err := StartEmbedded(context.Background(), t.TempDir(), port, 1, nil); err == nil {
		b.Close()
		t.Fatal("started on a port in use")
	}
}

func kafkaFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
