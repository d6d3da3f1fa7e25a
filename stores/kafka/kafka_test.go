package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/erasure-project/erasure/stores"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const kafkaWait = 15 * time.Second

func TestKafkaConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"plaintext", Config{Brokers: []string{"b:9092"}}, true},
		{"no brokers", Config{}, false},
		{"plain", Config{Brokers: []string{"b:9092"}, SASL: SASL{Mechanism: "plain", User: "u", Password: "p"}}, true},
		{"upper case", Config{Brokers: []string{"b:9092"}, SASL: SASL{Mechanism: "SCRAM-SHA-512", User: "u", Password: "p"}}, true},
		{"scram-256", Config{Brokers: []string{"b:9092"}, SASL: SASL{Mechanism: SASLScramSHA256, User: "u"}}, true},
		{"unknown mechanism", Config{Brokers: []string{"b:9092"}, SASL: SASL{Mechanism: "gssapi", User: "u"}}, false},
		{"mechanism without user", Config{Brokers: []string{"b:9092"}, SASL: SASL{Mechanism: SASLPlain}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, stores.ErrPermanent) {
				t.Errorf("config error %v is not permanent", err)
			}
		})
	}
}

func TestKafkaSASLLogValueHidesPassword(t *testing.T) {
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("cfg", "sasl", SASL{Mechanism: SASLPlain, User: "svc", Password: "hunter2"})
	if strings.Contains(b.String(), "hunter2") || !strings.Contains(b.String(), "svc") {
		t.Fatalf("logged %q", b.String())
	}
}

func TestClassifyKafka(t *testing.T) {
	for _, tc := range []struct {
		err              error
		retry, permanent bool
	}{
		{kerr.NotLeaderForPartition, true, false},
		{fmt.Errorf("produce: %w", kerr.RequestTimedOut), true, false},
		{kerr.MessageTooLarge, false, true},
		{kerr.TopicAuthorizationFailed, false, true},
		{kerr.SaslAuthenticationFailed, false, true},
		{kgo.ErrRecordTimeout, true, false},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, true, false},
		{context.Canceled, false, false},
		{kgo.ErrClientClosed, false, false}, // shutdown, not a failure
	} {
		err := classifyKafka(tc.err)
		if !errors.Is(err, tc.err) {
			t.Errorf("%v: classification lost the cause", tc.err)
		}
		if got := errors.Is(err, stores.ErrRetryable); got != tc.retry {
			t.Errorf("%v: retryable = %v, want %v", tc.err, got, tc.retry)
		}
		if got := errors.Is(err, stores.ErrPermanent); got != tc.permanent {
			t.Errorf("%v: permanent = %v, want %v", tc.err, got, tc.permanent)
		}
	}
	if classifyKafka(nil) != nil {
		t.Error("nil error classified")
	}
}

func TestKafkaPublisherRecordKeyAndHeaders(t *testing.T) {
	cfg := kafkaTestCluster(t)
	topic := kafkaTestTopic(t, cfg, 1)
	pub := kafkaTestPublisher(t, cfg)

	keyed := message.NewMessage(watermill.NewUUID(), []byte(`{"a":1}`))
	keyed.Metadata.Set(MetadataKey, "request-1")
	keyed.Metadata.Set("erasure-event-type", "DeletionRequested")
	unkeyed := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
	if err := pub.Publish(topic, keyed, unkeyed); err != nil {
		t.Fatal(err)
	}

	recs := kafkaReadRaw(t, cfg, topic, 2)
	headers := func(r *kgo.Record) map[string]string {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		return h
	}
	if got := string(recs[0].Key); got != "request-1" {
		t.Errorf("key = %q, want the partition key", got)
	}
	h := headers(recs[0])
	if h[UUIDHeader] != keyed.UUID || h["erasure-event-type"] != "DeletionRequested" {
		t.Errorf("headers = %v", h)
	}
	if _, ok := h[MetadataKey]; ok {
		t.Errorf("partition key repeated as a header: %v", h)
	}
	if got := string(recs[1].Key); got != unkeyed.UUID {
		t.Errorf("unkeyed record key = %q, want the message UUID %q", got, unkeyed.UUID)
	}
}

func TestKafkaSubscriberMetadata(t *testing.T) {
	cfg := kafkaTestCluster(t)
	topic := kafkaTestTopic(t, cfg, 1)
	pub := kafkaTestPublisher(t, cfg)

	sent := message.NewMessage(watermill.NewUUID(), []byte("x"))
	sent.Metadata.Set(MetadataKey, "request-2")
	sent.Metadata.Set("erasure-correlation-id", "c-1")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	// An upstream producer that knows nothing of watermill.
	kafkaRawProduce(t, cfg, &kgo.Record{Topic: topic, Key: []byte("request-3"), Value: []byte("y")})

	msgs := kafkaTestSubscribe(t, cfg, SubscriberConfig{FromStart: true}, topic)
	got := kafkaReceive(t, msgs)
	got.Ack()
	if got.UUID != sent.UUID || string(got.Payload) != "x" {
		t.Errorf("got %s %q, want %s", got.UUID, got.Payload, sent.UUID)
	}
	want := map[string]string{
		MetadataKey: "request-2", "erasure-correlation-id": "c-1",
		MetadataTopic: topic, MetadataPartition: "0", MetadataOffset: "0",
	}
	for k, v := range want {
		if got.Metadata.Get(k) != v {
			t.Errorf("metadata %s = %q, want %q (all: %v)", k, got.Metadata.Get(k), v, got.Metadata)
		}
	}
	if _, ok := got.Metadata[UUIDHeader]; ok {
		t.Error("UUID header leaked into metadata")
	}

	upstream := kafkaReceive(t, msgs)
	upstream.Ack()
	if want := topic + "-0-1"; upstream.UUID != want {
		t.Errorf("UUID of a record without one = %q, want its position %q", upstream.UUID, want)
	}
	if upstream.Metadata.Get(MetadataKey) != "request-3" {
		t.Errorf("partition key = %q", upstream.Metadata.Get(MetadataKey))
	}
}

// Offsets move only for acked messages: a nacked message comes back, and one
// still unacked when the consumer stops is delivered to the next consumer of
// the group; acked ones are not.
func TestKafkaSubscriberCommitsOnlyAcked(t *testing.T) {
	cfg := kafkaTestCluster(t)
	topic := kafkaTestTopic(t, cfg, 1)
	pub := kafkaTestPublisher(t, cfg)
	sent := kafkaPublishN(t, pub, topic, 3)
	group := SubscriberConfig{ConsumerGroup: "g-" + topic, FromStart: true, NackResendSleep: time.Millisecond}

	sub, err := NewSubscriber(cfg, group)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	kafkaExpect(t, kafkaReceive(t, msgs), sent[0]).Ack()
	m := kafkaExpect(t, kafkaReceive(t, msgs), sent[1])
	m.Nack()
	m = kafkaExpect(t, kafkaReceive(t, msgs), sent[1]) // the same record, again
	m.Nack()
	kafkaExpect(t, kafkaReceive(t, msgs), sent[1]) // and again; this time it is left unacked
	kafkaCloseWithin(t, sub)

	if got := kafkaCommitted(t, cfg, group.ConsumerGroup, topic, 0); got != 1 {
		t.Fatalf("kafkaCommitted offset = %d, want 1 (only the acked record)", got)
	}

	// The next member of the group starts at the unacked record.
	msgs = kafkaTestSubscribe(t, cfg, group, topic)
	kafkaExpect(t, kafkaReceive(t, msgs), sent[1]).Ack()
	kafkaExpect(t, kafkaReceive(t, msgs), sent[2]).Ack()
}

// Partitions are handled concurrently; within one, a message waits for the
// previous one's Ack.
func TestKafkaSubscriberPartitionsConcurrently(t *testing.T) {
	cfg := kafkaTestCluster(t)
	topic := kafkaTestTopic(t, cfg, 2)
	pub := kafkaTestPublisher(t, cfg)
	var sent []*message.Message
	for i := range 20 {
		m := message.NewMessage(watermill.NewUUID(), []byte("x"))
		m.Metadata.Set(MetadataKey, "key-"+strconv.Itoa(i))
		sent = append(sent, m)
	}
	if err := pub.Publish(topic, sent...); err != nil {
		t.Fatal(err)
	}

	msgs := kafkaTestSubscribe(t, cfg, SubscriberConfig{ConsumerGroup: "g-" + topic, FromStart: true}, topic)
	held := kafkaReceive(t, msgs)
	blocked := held.Metadata.Get(MetadataPartition)
	seen := map[string]bool{held.UUID: true}

	// Everything of the other partition arrives while held is unacked.
	for {
		select {
		case m := <-msgs:
			if p := m.Metadata.Get(MetadataPartition); p == blocked {
				t.Fatalf("partition %s delivered %s before %s was acked", p, m.UUID, held.UUID)
			}
			seen[m.UUID] = true
			m.Ack()
			continue
		case <-time.After(500 * time.Millisecond):
		}
		break
	}
	if len(seen) == 1 {
		t.Fatal("the other partition delivered nothing while one message was unacked")
	}

	held.Ack()
	for len(seen) < len(sent) {
		m := kafkaReceive(t, msgs)
		seen[m.UUID] = true
		m.Ack()
	}
}

// Close does not wait for a handler that never answers; the message's
// context says it is abandoned.
func TestKafkaSubscriberCloseWithUnackedMessage(t *testing.T) {
	cfg := kafkaTestCluster(t)
	topic := kafkaTestTopic(t, cfg, 3)
	pub := kafkaTestPublisher(t, cfg)
	kafkaPublishN(t, pub, topic, 10)

	for _, sc := range []SubscriberConfig{
		{ConsumerGroup: "g-" + topic, FromStart: true},
		{FromStart: true},
	} {
		sub, err := NewSubscriber(cfg, sc)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := sub.Subscribe(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		m := kafkaReceive(t, msgs)
		kafkaCloseWithin(t, sub)
		select {
		case <-m.Context().Done():
		default:
			t.Error("unacked message's context not cancelled by Close")
		}
		for range msgs { // drained and closed
		}
		if _, err := sub.Subscribe(context.Background(), topic); err == nil {
			t.Error("Subscribe after Close succeeded")
		}
	}
}

// Close returns even when the broker is gone and nothing can be committed.
func TestKafkaSubscriberCloseWithBrokerGone(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Brokers: cluster.ListenAddrs()}
	topic := kafkaTestTopic(t, cfg, 2)
	pub := kafkaTestPublisher(t, cfg)
	kafkaPublishN(t, pub, topic, 5)

	sub, err := NewSubscriber(cfg, SubscriberConfig{ConsumerGroup: "g", FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	kafkaReceive(t, msgs).Ack()
	kafkaReceive(t, msgs)
	cluster.Close()
	kafkaCloseWithin(t, sub)
}

// A member joining mid-stream takes partitions from one that has polled
// records it has not delivered yet; none may be skipped, and once both stop
// everything is kafkaCommitted.
func TestKafkaSubscriberRebalanceLosesNothing(t *testing.T) {
	cfg := kafkaTestCluster(t)
	const partitions, total = 4, 400
	topic := kafkaTestTopic(t, cfg, partitions)
	pub := kafkaTestPublisher(t, cfg)
	sent := kafkaPublishN(t, pub, topic, total)
	group := SubscriberConfig{ConsumerGroup: "g-" + topic, FromStart: true}

	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	consume := func(msgs <-chan *message.Message, delay time.Duration) {
		for m := range msgs {
			time.Sleep(delay)
			mu.Lock()
			seen[m.UUID] = true
			mu.Unlock()
			m.Ack()
		}
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}

	first, err := NewSubscriber(cfg, group)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := first.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	go consume(msgs, 5*time.Millisecond)
	kafkaWaitFor(t, func() bool { return count() >= 20 })

	second, err := NewSubscriber(cfg, group)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err = second.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	go consume(msgs, 0)
	kafkaWaitFor(t, func() bool { return count() == total })
	kafkaCloseWithin(t, first)
	kafkaCloseWithin(t, second)

	for _, m := range sent {
		if !seen[m.UUID] {
			t.Errorf("message %s never delivered", m.UUID)
		}
	}
	ends := kafkaEndOffsets(t, cfg, topic)
	for p := range int32(partitions) {
		if got, want := kafkaCommitted(t, cfg, group.ConsumerGroup, topic, p), ends[p]; got != want {
			t.Errorf("partition %d: kafkaCommitted %d, want end offset %d", p, got, want)
		}
	}
}

func TestKafkaSASLMechanisms(t *testing.T) {
	for _, mech := range []struct{ kfake, ours string }{
		{"PLAIN", SASLPlain},
		{"SCRAM-SHA-256", SASLScramSHA256},
		{"SCRAM-SHA-512", SASLScramSHA512},
	} {
		t.Run(mech.ours, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mech.kfake, "svc", "right"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			cfg := Config{Brokers: cluster.ListenAddrs(), SASL: SASL{Mechanism: mech.ours, User: "svc", Password: "right"}}
			ctx, cancel := context.WithTimeout(context.Background(), kafkaWait)
			defer cancel()
			if err := EnsureTopics(ctx, cfg, 1, 1, "t"); err != nil {
				t.Fatalf("EnsureTopics with the right password: %v", err)
			}

			// kfake drops the connection on a bad password where Kafka
			// answers SASL_AUTHENTICATION_FAILED, so all this can check is
			// that the password is used.
			cfg.SASL.Password = "wrong"
			ctx, cancel = context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := EnsureTopics(ctx, cfg, 1, 1, "u"); err == nil {
				t.Fatal("EnsureTopics with a wrong password succeeded")
			}
		})
	}
}

func TestKafkaTLS(t *testing.T) {
	serverCfg, roots := kafkaSelfSignedTLS(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverCfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cfg := Config{Brokers: cluster.ListenAddrs(), TLSConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	topic := kafkaTestTopic(t, cfg, 1)
	pub := kafkaTestPublisher(t, cfg)
	sent := kafkaPublishN(t, pub, topic, 1)
	msgs := kafkaTestSubscribe(t, cfg, SubscriberConfig{FromStart: true}, topic)
	kafkaExpect(t, kafkaReceive(t, msgs), sent[0]).Ack()
}

func TestKafkaEnsureTopicsIsIdempotent(t *testing.T) {
	cfg := kafkaTestCluster(t)
	ctx := context.Background()
	for range 2 {
		if err := EnsureTopics(ctx, cfg, 3, 1, "a", "b"); err != nil {
			t.Fatal(err)
		}
	}
	td := kafkaListTopics(t, cfg, "a", "b")
	for _, topic := range []string{"a", "b"} {
		if n := len(td[topic].Partitions); n != 3 {
			t.Errorf("%s has %d partitions, want 3", topic, n)
		}
	}
}

// --- helpers ---

func kafkaTestCluster(t *testing.T) Config {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return Config{Brokers: cluster.ListenAddrs(), ClientID: "test"}
}

func kafkaTestTopic(t *testing.T, cfg Config, partitions int32) string {
	t.Helper()
	topic := "t-" + watermill.NewShortUUID()
	ctx, cancel := context.WithTimeout(context.Background(), kafkaWait)
	defer cancel()
	if err := EnsureTopics(ctx, cfg, partitions, 1, topic); err != nil {
		t.Fatal(err)
	}
	return topic
}

func kafkaTestPublisher(t *testing.T, cfg Config) *Publisher {
	t.Helper()
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

func kafkaTestSubscribe(t *testing.T, cfg Config, sc SubscriberConfig, topic string) <-chan *message.Message {
	t.Helper()
	sub, err := NewSubscriber(cfg, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	msgs, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func kafkaPublishN(t *testing.T, pub *Publisher, topic string, n int) []*message.Message {
	t.Helper()
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
	return msgs
}

func kafkaReceive(t *testing.T, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("channel closed")
		}
		return m
	case <-time.After(kafkaWait):
		t.Fatal("no message")
	}
	return nil
}

func kafkaExpect(t *testing.T, got, want *message.Message) *message.Message {
	t.Helper()
	if got.UUID != want.UUID {
		t.Fatalf("got message %s (offset %s), want %s", got.UUID, got.Metadata.Get(MetadataOffset), want.UUID)
	}
	return got
}

func kafkaCloseWithin(t *testing.T, sub *Subscriber) {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = sub.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(kafkaWait):
		t.Fatal("Close hangs")
	}
}

func kafkaWaitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(kafkaWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func kafkaAdmin(t *testing.T, cfg Config) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(cfg.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func kafkaCommitted(t *testing.T, cfg Config, group, topic string, partition int32) int64 {
	t.Helper()
	offs, err := kafkaAdmin(t, cfg).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok {
		return -1
	}
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	return o.At
}

func kafkaEndOffsets(t *testing.T, cfg Config, topic string) map[int32]int64 {
	t.Helper()
	listed, err := kafkaAdmin(t, cfg).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	return ends
}

func kafkaListTopics(t *testing.T, cfg Config, topics ...string) kadm.TopicDetails {
	t.Helper()
	td, err := kafkaAdmin(t, cfg).ListTopics(context.Background(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	return td
}

func kafkaRawProduce(t *testing.T, cfg Config, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(cfg.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func kafkaReadRaw(t *testing.T, cfg Config, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(cfg.Opts(), kgo.ConsumeTopics(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), kafkaWait)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records", len(recs), n)
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// kafkaSelfSignedTLS returns a server config for 127.0.0.1 and the pool that
// trusts it.
func kafkaSelfSignedTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, roots
}
