package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// Message metadata and Kafka headers the broker adapter reads and writes.
const (
	// MetadataKey names the metadata whose value becomes the record key;
	// without it the key is the message UUID.
	MetadataKey = schemas.MetadataPartitionKey

	// UUIDHeader carries the watermill message UUID. It is the header
	// watermill-kafka uses, so either side can read the other's records.
	UUIDHeader = "_watermill_message_uuid"

	// Set on delivered messages only, so a handler can say where a record
	// came from (and a poison queue can keep it) without parsing its body.
	MetadataTopic     = "kafka_topic"
	MetadataPartition = "kafka_partition"
	MetadataOffset    = "kafka_offset"
)

// SASL mechanisms Config accepts.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Config is how to reach a Kafka-protocol cluster.
type Config struct {
	Brokers  []string `yaml:"brokers"`
	ClientID string   `yaml:"client_id"` // defaults to "erasure"
	// TLS turns TLS on with the system's roots; TLSConfig, set in code,
	// replaces them. Both unset means plaintext.
	TLS       bool         `yaml:"tls"`
	TLSConfig *tls.Config  `yaml:"-"`
	SASL      SASL         `yaml:",inline"` // zero means no authentication
	Logger    *slog.Logger `yaml:"-"`
	// InstanceID makes this process a static member of each consumer group
	// it joins (group.instance.id): restarted under the same ID, say after
	// a crash, it takes its partitions back at once instead of leaving them
	// unread until the broker's session timeout drops its old membership.
	// Each process needs its own (a StatefulSet pod name, a host name). A
	// static member does not leave its groups when it stops, so one stopped
	// for good holds its partitions for the session timeout (45 s).
	InstanceID string `yaml:"instance_id"`
}

// SASL is optional SASL authentication.
type SASL struct {
	Mechanism string `yaml:"sasl_mechanism"` // SASLPlain, SASLScramSHA256 or SASLScramSHA512
	User      string `yaml:"sasl_user"`
	// Password never comes from a file: ERASURE_KAFKA_SASL_PASSWORD.
	Password string `yaml:"-"`
}

// LogValue keeps the password out of logs when a config is logged.
func (s SASL) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mechanism", s.Mechanism), slog.String("user", s.User))
}

// Validate reports a configuration that cannot connect.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return stores.Permanent(errors.New("kafka: no brokers configured"))
	}
	if c.SASL.Mechanism == "" {
		return nil
	}
	if c.SASL.mechanism() == nil {
		return stores.Permanent(fmt.Errorf("kafka: unknown SASL mechanism %q (want %s, %s or %s)",
			c.SASL.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512))
	}
	if c.SASL.User == "" {
		return stores.Permanent(errors.New("kafka: SASL mechanism set without a user"))
	}
	return nil
}

// Opts are the kgo options shared by every client built from c: seed brokers,
// TLS, SASL and logging. Call Validate first; an unknown SASL mechanism is
// left out here.
func (c Config) Opts() []kgo.Opt {
	id := c.ClientID
	if id == "" {
		id = "erasure"
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(id)}
	switch {
	case c.TLSConfig != nil:
		opts = append(opts, kgo.DialTLSConfig(c.TLSConfig.Clone()))
	case c.TLS:
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	if m := c.SASL.mechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	if c.Logger != nil {
		opts = append(opts, kgo.WithLogger(kslog.New(c.Logger)))
	}
	return opts
}

func (s SASL) mechanism() sasl.Mechanism {
	switch strings.ToLower(s.Mechanism) {
	case SASLPlain:
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism()
	case SASLScramSHA256:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism()
	}
	return nil
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// EnsureTopics creates the topics that do not exist yet. Topics that already
// exist are left as they are, whatever their partition count. A replication
// of -1 uses the broker's default.
func EnsureTopics(ctx context.Context, cfg Config, partitions int32, replication int16, topics ...string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cl, err := kgo.NewClient(cfg.Opts()...)
	if err != nil {
		return stores.Permanent(fmt.Errorf("kafka: new client: %w", err))
	}
	defer cl.Close()

	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, replication, nil, topics...)
	if err != nil {
		return classifyKafka(fmt.Errorf("kafka: create topics: %w", err))
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, classifyKafka(fmt.Errorf("kafka: create topic %s: %w", r.Topic, r.Err)))
		}
	}
	return errors.Join(errs...)
}

// classifyKafka marks err retryable or permanent for the caller's retry
// middleware. Kafka's own error codes say whether they are retriable; client
// time-outs and connection failures are worth another try. Shutdown
// (context.Canceled, a closed client) is returned as is: it is not a failure.
func classifyKafka(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return err
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		if ke.Retriable {
			return stores.Retryable(err)
		}
		return stores.Permanent(err)
	}
	// Record time-outs, exhausted retries, a full buffer, dial and I/O errors.
	return stores.Retryable(err)
}
