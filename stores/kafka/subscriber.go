package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/erasure-project/erasure/stores"
	"github.com/twmb/franz-go/pkg/kgo"
)

// SubscriberConfig says how a Subscriber consumes.
type SubscriberConfig struct {
	// ConsumerGroup shares a topic's partitions among the subscribers of the
	// group and commits what they acknowledged. Empty means no group: every
	// Subscribe reads every partition and commits nothing, which is what a
	// web API instance needs to see every outcome.
	ConsumerGroup string

	// FromStart makes a consumer with nothing committed begin at the oldest
	// record instead of at new records only. Channel consumers want this so
	// that requests made before their group first ran are not skipped.
	FromStart bool

	// Since, when set, makes a consumer with nothing committed begin at the
	// first record written at or after it (a replay); it overrides FromStart.
	Since time.Time

	// NackResendSleep is how long a nacked message waits before it is
	// delivered again; zero means 100ms.
	NackResendSleep time.Duration
}

// Subscriber is a watermill message.Subscriber over kgo, at least once:
// a record's offset is committed only after its message was acked, records
// of one partition are delivered strictly in order, one at a time, and
// partitions are delivered concurrently.
type Subscriber struct {
	cfg Config
	sub SubscriberConfig
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	running map[*consumption]context.CancelFunc
	wg      sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber checks cfg; clients are created by Subscribe.
func NewSubscriber(cfg Config, sub SubscriberConfig) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sub.NackResendSleep <= 0 {
		sub.NackResendSleep = 100 * time.Millisecond
	}
	return &Subscriber{cfg: cfg, sub: sub, log: cfg.logger(), running: map[*consumption]context.CancelFunc{}}, nil
}

// Subscribe starts a kgo client of its own that consumes topic. The channel
// is closed when ctx is done or the subscriber is closed, after the client
// has committed what was acked and left its group.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("kafka subscriber: closed")
	}

	c := &consumption{
		topic: topic,
		group: s.sub.ConsumerGroup,
		nack:  s.sub.NackResendSleep,
		log:   s.log.With("topic", topic, "group", s.sub.ConsumerGroup),
		out:   make(chan *message.Message),
	}
	cl, err := kgo.NewClient(append(s.cfg.Opts(), s.consumeOpts(topic, c)...)...)
	if err != nil {
		return nil, stores.Permanent(fmt.Errorf("kafka subscribe %s: new client: %w", topic, err))
	}
	c.cl = cl

	ctx, cancel := context.WithCancel(ctx)
	s.running[c] = cancel
	s.wg.Go(func() {
		c.run(ctx)
		s.mu.Lock()
		delete(s.running, c)
		s.mu.Unlock()
		cancel()
	})
	return c.out, nil
}

func (s *Subscriber) consumeOpts(topic string, c *consumption) []kgo.Opt {
	start := kgo.NewOffset().AtEnd()
	switch {
	case !s.sub.Since.IsZero():
		start = kgo.NewOffset().AfterMilli(s.sub.Since.UnixMilli())
	case s.sub.FromStart:
		start = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeStartOffset(start),
		// If the position is no longer in the log (retention, truncation),
		// re-read from the oldest record: a duplicate is harmless, a skipped
		// deletion request is not.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
	if c.group == "" {
		return opts
	}
	if s.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(s.cfg.InstanceID))
	}
	return append(opts,
		kgo.ConsumerGroup(c.group),
		// No revoke runs while a poll's records are being handled, so a
		// partition never changes hands between a delivery and its commit.
		kgo.BlockRebalanceOnPoll(),
		// Only records marked after their Ack are committed.
		kgo.AutoCommitMarks(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
			// The next owner starts where we stopped, not at the last autocommit.
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				c.log.Warn("kafka: commit on revoke failed; records will be redelivered", "err", err)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			// Commits would be rejected; the new owner redelivers.
			c.log.Warn("kafka: partitions lost", "partitions", lost[topic])
		}),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { c.rebalanceWanted() }),
	)
}

// Close stops every subscription, waits until their clients have committed
// and left, and closes their channels. Messages delivered and not yet acked
// are redelivered to whoever consumes next.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, cancel := range s.running {
		cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// consumption is one Subscribe: one client, one topic, one output channel.
type consumption struct {
	topic string
	group string
	nack  time.Duration
	log   *slog.Logger
	cl    *kgo.Client
	out   chan *message.Message

	// hurry is closed when a rebalance waits for the current epoch:
	// partitions stop before their next record instead of finishing.
	hurryMu sync.Mutex
	hurry   chan struct{}
}

func (c *consumption) run(ctx context.Context) {
	defer close(c.out)
	defer c.shutdown(ctx)
	for ctx.Err() == nil {
		if !c.epoch(ctx) {
			return
		}
	}
}

// epoch delivers records until a rebalance is wanted or ctx ends, and
// reports whether the client can poll on. Each partition's records queue
// for a goroutine of the partition's own, which delivers them one at a
// time, and the next poll starts at once: an idle partition's new record
// is delivered while a busy partition's request is still being worked on,
// rather than after it. A partition with a long queue is paused until its
// queue empties. Once a rebalance is wanted, every partition stops before
// its next record, the undelivered records are rewound and the rebalance
// is allowed, with no delivery in flight.
func (c *consumption) epoch(ctx context.Context) bool {
	hurry := c.resetHurry()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		queues = map[int32]*partitionQueue{}
		open   = true
	)
	for {
		pollCtx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-hurry:
				cancel()
			case <-pollCtx.Done():
			}
		}()
		fetches := c.cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			open = false
			break
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn("kafka: fetch error", "partition", p, "err", err)
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 || p.Topic != c.topic {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			q := queues[p.Partition]
			if q == nil {
				q = &partitionQueue{}
				queues[p.Partition] = q
			}
			q.recs = append(q.recs, p.Records...)
			if len(q.recs) >= maxQueued && !q.paused {
				// Held back by the client, not skipped: fetching resumes
				// after the last record queued.
				c.cl.PauseFetchPartitions(map[string][]int32{c.topic: {p.Partition}})
				q.paused = true
			}
			if !q.running && !q.stopped {
				q.running = true
				wg.Go(func() { c.drain(ctx, &mu, q, p.Partition, hurry) })
			}
		})
		select {
		case <-hurry:
		default:
			continue
		}
		break
	}
	wg.Wait()
	if !open {
		return false
	}
	rewind := map[int32]kgo.EpochOffset{}
	for p, q := range queues {
		if len(q.recs) > 0 {
			r := q.recs[0]
			rewind[p] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
		}
	}
	if len(rewind) > 0 {
		c.log.Debug("kafka: rebalance waiting; undelivered records will be fetched again", "partitions", len(rewind))
		c.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{c.topic: rewind})
	}
	c.cl.ResumeFetchPartitions(c.cl.PauseFetchPartitions(nil))
	c.cl.AllowRebalance()
	return true
}

// maxQueued is the records a partition may have waiting for delivery
// before it is paused: a bound on memory (a request is at most tens of
// KiB), well above what a few requests in flight queue.
const maxQueued = 64

// partitionQueue is one partition's records awaiting delivery in an epoch.
type partitionQueue struct {
	recs    []*kgo.Record // undelivered, in offset order
	running bool          // a drain goroutine delivers them
	stopped bool          // delivery stopped for a rebalance or shutdown
	paused  bool
}

// drain delivers q's records in order until it is empty, resuming the
// partition if its queue had paused it, or until delivery stops (the
// undelivered records stay in q for the rewind).
func (c *consumption) drain(ctx context.Context, mu *sync.Mutex, q *partitionQueue, partition int32, hurry <-chan struct{}) {
	for {
		mu.Lock()
		if len(q.recs) == 0 {
			q.running = false
			if q.paused {
				q.paused = false
				c.cl.ResumeFetchPartitions(map[string][]int32{c.topic: {partition}})
			}
			mu.Unlock()
			return
		}
		r := q.recs[0]
		mu.Unlock()
		if !c.deliver(ctx, r, hurry) {
			mu.Lock()
			q.running, q.stopped = false, true
			mu.Unlock()
			return
		}
		if c.group != "" {
			c.cl.MarkCommitRecords(r)
		}
		mu.Lock()
		q.recs = q.recs[1:]
		mu.Unlock()
	}
}

// deliver sends r until it is acked (true) or delivery stops (false): on
// shutdown, or on a wanted rebalance while r is not in a handler's hands.
func (c *consumption) deliver(ctx context.Context, r *kgo.Record, hurry <-chan struct{}) bool {
	for {
		msg := toMessage(r)
		msgCtx, cancel := context.WithCancel(ctx)
		msg.SetContext(msgCtx)
		select {
		case c.out <- msg:
		case <-ctx.Done():
			cancel()
			return false
		case <-hurry:
			cancel()
			return false
		}

		// A handler has it now: wait for its verdict even if a rebalance
		// is waiting, since it may already have acted on the message.
		select {
		case <-msg.Acked():
			cancel()
			return true
		case <-msg.Nacked():
			cancel()
		case <-ctx.Done():
			cancel()
			return false
		}

		select {
		case <-time.After(c.nack):
		case <-ctx.Done():
			return false
		case <-hurry:
			return false
		}
	}
}

func (c *consumption) resetHurry() <-chan struct{} {
	c.hurryMu.Lock()
	defer c.hurryMu.Unlock()
	c.hurry = make(chan struct{})
	return c.hurry
}

// rebalanceWanted is called by kgo, in a goroutine of its own, when a
// rebalance is blocked by the current poll.
func (c *consumption) rebalanceWanted() {
	c.hurryMu.Lock()
	defer c.hurryMu.Unlock()
	select {
	case <-c.hurry:
	default:
		close(c.hurry)
	}
}

// shutdown commits what was acked and leaves the group. It runs after every
// partition goroutine has returned, so nothing is marked concurrently.
func (c *consumption) shutdown(ctx context.Context) {
	if c.group != "" {
		commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := c.cl.CommitMarkedOffsets(commitCtx); err != nil {
			c.log.Warn("kafka: final commit failed; acked records will be redelivered", "err", err)
		}
		cancel()
	}
	c.cl.AllowRebalance()
	c.cl.Close()
}

func toMessage(r *kgo.Record) *message.Message {
	var uuid string
	md := make(message.Metadata, len(r.Headers)+4)
	for _, h := range r.Headers {
		if h.Key == UUIDHeader {
			uuid = string(h.Value)
			continue
		}
		md[h.Key] = string(h.Value)
	}
	if uuid == "" {
		// Upstream producers do not set one; the position is stable
		// across redeliveries, which a deduplicator needs.
		uuid = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
	}
	md[MetadataKey] = string(r.Key)
	md[MetadataTopic] = r.Topic
	md[MetadataPartition] = strconv.FormatInt(int64(r.Partition), 10)
	md[MetadataOffset] = strconv.FormatInt(r.Offset, 10)

	msg := message.NewMessage(uuid, r.Value)
	msg.Metadata = md
	return msg
}
