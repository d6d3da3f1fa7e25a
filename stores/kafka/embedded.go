package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EmbeddedBroker is an in-process Kafka-protocol broker (franz-go's kfake)
// that keeps topics, records and committed group offsets in a directory, so
// `erasure up` survives a restart without losing accepted requests.
type EmbeddedBroker struct {
	cluster *kfake.Cluster
	addr    string
	once    sync.Once
}

// StartEmbedded starts a broker on 127.0.0.1:port (0 picks a free
// port), loading whatever dataDir holds from a previous run. Every produce is
// fsynced before it is acknowledged. Topics created without a partition count
// get partitions. ctx bounds startup only; stop the broker with Close.
func StartEmbedded(ctx context.Context, dataDir string, port int, partitions int32, logger *slog.Logger) (*EmbeddedBroker, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "embedded-broker")
	// Records name contacts, and kfake creates its files 0644 and its
	// directories 0755 (less the umask): a directory of the owner's only
	// keeps them from other users whatever the umask.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded broker: data dir: %w", err)
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded broker: data dir: %w", err)
	}
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port), // kfake listens on 127.0.0.1 only
		kfake.DataDir(dataDir),
		kfake.SyncWrites(),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.WithLogger(kfakeLogger{logger}),
	)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: start on port %d with data in %s: %w", port, dataDir, err)
	}
	b := &EmbeddedBroker{cluster: cluster, addr: cluster.ListenAddrs()[0]}

	// Prove it answers before anyone relies on it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err == nil {
		err = cl.Ping(ctx)
		cl.Close()
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("embedded broker: ping %s: %w", b.Addr(), err)
	}
	logger.Info("embedded broker started", "addr", b.Addr(), "data_dir", dataDir)
	return b, nil
}

// Addr is the broker's host:port, for Config.Brokers.
func (b *EmbeddedBroker) Addr() string { return b.addr }

// Close stops the broker and flushes its state to disk. It is safe to call
// more than once.
func (b *EmbeddedBroker) Close() { b.once.Do(b.cluster.Close) }

// kfakeLogger bridges kfake's printf-style logger into slog. kfake logs
// requests and group events, not record contents.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	default:
		// kfake's info level narrates every join and odd request.
		lvl = slog.LevelDebug
	}
	ctx := context.Background()
	if !k.l.Enabled(ctx, lvl) {
		return
	}
	k.l.Log(ctx, lvl, fmt.Sprintf(format, args...))
}
