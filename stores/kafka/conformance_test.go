package kafka

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaConformancePartitions is the partition count of every suite topic: more
// than one, so the suite sees partitions delivered concurrently.
const kafkaConformancePartitions = 4

// TestKafkaConformanceKfake runs watermill's Pub/Sub suite against the
// adapter on an in-process three-broker kfake cluster.
func TestKafkaConformanceKfake(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	runKafkaConformance(t, Config{Brokers: cluster.ListenAddrs(), ClientID: "conformance"}, 3)
}

// TestKafkaConformanceRealBroker runs the same suite against Apache Kafka at
// ERASURE_TEST_KAFKA_BROKERS (comma separated host:port).
func TestKafkaConformanceRealBroker(t *testing.T) {
	brokers := os.Getenv("ERASURE_TEST_KAFKA_BROKERS")
	if brokers == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ERASURE_TEST_KAFKA_BROKERS not set")
		}
		t.Skip("ERASURE_TEST_KAFKA_BROKERS not set")
	}
	runKafkaConformance(t, Config{Brokers: strings.Split(brokers, ","), ClientID: "conformance"}, -1)
}

func runKafkaConformance(t *testing.T, cfg Config, replication int16) {
	topics := &kafkaSuiteTopics{cfg: cfg, replication: replication}
	t.Cleanup(func() { topics.deleteAll(t) })

	newPubSub := func(t *testing.T, sub SubscriberConfig) (message.Publisher, message.Subscriber) {
		t.Helper()
		pub, err := NewPublisher(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSubscriber(cfg, sub)
		if err != nil {
			t.Fatal(err)
		}
		return pub, kafkaTopicCreatingSubscriber{s, topics}
	}
	inGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		return newPubSub(t, SubscriberConfig{ConsumerGroup: group, FromStart: true, NackResendSleep: 10 * time.Millisecond})
	}

	// What the adapter guarantees, and so what the suite may check:
	// consumer groups work; delivery is at least once, not exactly once;
	// records stay in the log; order holds per partition key, not across a
	// multi-partition topic (checked separately below).
	base := tests.Features{
		ConsumerGroups:      true,
		ExactlyOnceDelivery: false,
		GuaranteedOrder:     false,
		Persistent:          true,
		ContextPreserved:    false,
	}

	// Every subscriber of one test shares a group named after it, as the
	// replicas of one channel consumer do; so a later subscriber continues
	// where an earlier one kafkaCommitted, and must not see old messages again.
	t.Run("group", func(t *testing.T) {
		features := base
		features.NewSubscriberReceivesOldMessages = false
		tests.TestPubSub(t, features, func(t *testing.T) (message.Publisher, message.Subscriber) {
			return inGroup(t, "suite-"+t.Name())
		}, inGroup)
	})

	// No group, as a web API instance consumes: each subscriber reads every
	// partition from the start.
	t.Run("no-group", func(t *testing.T) {
		features := base
		features.NewSubscriberReceivesOldMessages = true
		tests.TestPubSub(t, features, func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newPubSub(t, SubscriberConfig{FromStart: true, NackResendSleep: 10 * time.Millisecond})
		}, inGroup)
	})

	// Order is guaranteed per partition key. The suite's order tests group
	// messages by payload, so key them by payload and claim GuaranteedOrder.
	t.Run("order-per-key", func(t *testing.T) {
		features := base
		features.GuaranteedOrder = true
		keyed := func(t *testing.T) (message.Publisher, message.Subscriber) {
			pub, sub := inGroup(t, "suite-"+t.Name())
			return kafkaPayloadKeyedPublisher{pub}, sub
		}
		for name, test := range map[string]func(*testing.T, tests.TestContext, tests.PubSubConstructor){
			"TestPublishSubscribeInOrder": tests.TestPublishSubscribeInOrder,
			"TestNoAck":                   tests.TestNoAck,
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				test(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, keyed)
			})
		}
	})
}

// kafkaTopicCreatingSubscriber creates the suite's topics with several partitions
// before use, as a deployment does at start-up with EnsureTopics; the
// adapter's clients never auto-create topics.
type kafkaTopicCreatingSubscriber struct {
	*Subscriber
	topics *kafkaSuiteTopics
}

func (s kafkaTopicCreatingSubscriber) SubscribeInitialize(topic string) error {
	return s.topics.ensure(topic)
}

type kafkaSuiteTopics struct {
	cfg         Config
	replication int16
	mu          sync.Mutex
	created     []string
}

func (s *kafkaSuiteTopics) ensure(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, s.cfg, kafkaConformancePartitions, s.replication, topic); err != nil {
		return err
	}
	s.mu.Lock()
	s.created = append(s.created, topic)
	s.mu.Unlock()
	return nil
}

// deleteAll keeps a real cluster from filling up with test topics.
func (s *kafkaSuiteTopics) deleteAll(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.created) == 0 {
		return
	}
	cl, err := kgo.NewClient(s.cfg.Opts()...)
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).DeleteTopics(ctx, s.created...); err != nil {
		t.Logf("deleting %d suite topics: %v", len(s.created), err)
	}
}

// kafkaPayloadKeyedPublisher keys every message by its payload, which is how the
// suite's order tests group the messages whose order they check.
type kafkaPayloadKeyedPublisher struct{ message.Publisher }

func (p kafkaPayloadKeyedPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		m.Metadata.Set(MetadataKey, string(m.Payload))
	}
	return p.Publisher.Publish(topic, msgs...)
}
