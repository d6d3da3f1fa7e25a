package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// A subscriber with an InstanceID is a static member of its group: it does
// not leave when it stops, as a killed process does not, and restarted under
// the same ID it takes its partitions back at once, without waiting for the
// old membership's session timeout.
func TestKafkaSubscriberStaticMemberRestartsAtOnce(t *testing.T) {
	cfg := kafkaTestCluster(t)
	topic := kafkaTestTopic(t, cfg, 2)
	pub := kafkaTestPublisher(t, cfg)
	member := func(id, group string) (*Subscriber, <-chan *message.Message) {
		t.Helper()
		c := cfg
		c.InstanceID = id
		sub, err := NewSubscriber(c, SubscriberConfig{ConsumerGroup: group, FromStart: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Close() })
		msgs, err := sub.Subscribe(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		return sub, msgs
	}
	within := func(msgs <-chan *message.Message, d time.Duration) bool {
		select {
		case m := <-msgs:
			m.Ack()
			return true
		case <-time.After(d):
			return false
		}
	}
	group := "g-" + topic
	kafkaPublishN(t, pub, topic, 1)
	sub, msgs := member("consumer-1", group)
	if !within(msgs, kafkaWait) {
		t.Fatal("the member got nothing")
	}
	described, err := kafkaAdmin(t, cfg).DescribeGroups(t.Context(), group)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range described[group].Members {
		if m.InstanceID != nil {
			ids = append(ids, *m.InstanceID)
		}
	}
	if len(ids) != 1 || ids[0] != "consumer-1" {
		t.Fatalf("group members' instance IDs %q, want [consumer-1]", ids)
	}
	kafkaCloseWithin(t, sub) // a static member does not leave

	_, again := member("consumer-1", group)
	kafkaPublishN(t, pub, topic, 1)
	// Well inside the 45 s session timeout a dynamic member would wait out,
	// with room for a loaded machine.
	if !within(again, 20*time.Second) {
		t.Fatal("the member restarted under its ID did not get its partitions back within 20s, well before the 45s session timeout")
	}
}
