package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/erasure-project/erasure/stores"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceTimeout bounds how long one record may wait for the cluster, so a
// lost broker turns into a retryable error instead of a publish that never
// returns.
const produceTimeout = 30 * time.Second

// Publisher is a watermill message.Publisher over one kgo client.
type Publisher struct {
	cl *kgo.Client

	// ctx is cancelled by Close so that publishes in flight return.
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher connects a publisher. Records are produced idempotently
// with acks from all in-sync replicas (kgo's defaults), so a retried produce
// never duplicates or reorders a partition.
func NewPublisher(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := append(cfg.Opts(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(produceTimeout),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, stores.Permanent(fmt.Errorf("kafka publisher: new client: %w", err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Publisher{cl: cl, ctx: ctx, cancel: cancel}, nil
}

// Publish produces msgs to topic and returns once all of them are
// acknowledged by the cluster. Messages with the same MetadataKey keep their
// order, as they share a partition.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = toRecord(topic, m)
	}
	var errs []error
	for i, res := range p.cl.ProduceSync(p.ctx, recs...) {
		if res.Err != nil {
			errs = append(errs, classifyKafka(fmt.Errorf("kafka publish to %s (message %s): %w", topic, msgs[i].UUID, res.Err)))
		}
	}
	return errors.Join(errs...)
}

// Close stops the publisher; publishes still waiting fail.
func (p *Publisher) Close() error {
	p.once.Do(func() {
		p.cancel()
		p.cl.Close()
	})
	return nil
}

func toRecord(topic string, m *message.Message) *kgo.Record {
	key := m.Metadata.Get(MetadataKey)
	if key == "" {
		key = m.UUID
	}
	headers := make([]kgo.RecordHeader, 0, len(m.Metadata)+1)
	headers = append(headers, kgo.RecordHeader{Key: UUIDHeader, Value: []byte(m.UUID)})
	for k, v := range m.Metadata {
		if k == MetadataKey {
			continue // it is the key already
		}
		headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: m.Payload, Headers: headers}
}
