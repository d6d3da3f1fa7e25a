package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/kafka"
)

// pipelineClient is what the commands that feed a running pipeline (delete,
// replay) share: configuration, the contact ID rule, the requester and the
// broker.
type pipelineClient struct {
	cfg   app.Config
	rule  schemas.ContactIDRule
	q     *producers.Requester
	kafka kafka.Config
}

// newPipelineClient loads the configuration; brokers, prefix and pattern
// override it when set. The default broker is the embedded one of
// `erasure up`.
func newPipelineClient(configPath, brokers, prefix, pattern, clientID string) (*pipelineClient, error) {
	cfg, err := app.Load(configPath)
	if err != nil {
		return nil, err
	}
	if brokers != "" {
		cfg.Kafka.Brokers = app.SplitList(brokers)
	}
	if len(cfg.Kafka.Brokers) == 0 {
		cfg.Kafka.Brokers = []string{"127.0.0.1:9092"}
	}
	if prefix != "" {
		cfg.TopicPrefix = prefix
	}
	if pattern != "" {
		cfg.ContactIDPattern = pattern
	}
	rule, err := schemas.NewContactIDRule(cfg.ContactIDPattern)
	if err != nil {
		return nil, err
	}
	dm, err := cfg.DataMap()
	if err != nil {
		return nil, err
	}
	c := &pipelineClient{cfg: cfg, rule: rule,
		q:     &producers.Requester{Topics: schemas.Topics{Prefix: cfg.TopicPrefix}, Channels: dm.ChannelsFor(), Rule: rule},
		kafka: app.KafkaClient(cfg, clientID, newLogger(io.Discard, slog.LevelError))}
	return c, c.kafka.Validate()
}

// defaultActor is the OS user when no actor was given.
func defaultActor(actor string) string {
	if actor == "" {
		if u, err := user.Current(); err == nil {
			return u.Username
		}
	}
	return actor
}

// connect opens the publisher and, with waitSince set, a subscription to
// outcomes from just before that time, with no consumer group, so no
// outcome published meanwhile is missed. close releases both clients.
func (c *pipelineClient) connect(ctx context.Context, waitSince *time.Time, stderr io.Writer) (pub message.Publisher, outs <-chan *message.Message, close func(), err error) {
	var closers []func()
	close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	// Requests are signed with the deployment's event key, so that the
	// pipeline admits them as erasure's own and audits them as such.
	keys, err := c.cfg.EventKeys(false)
	if err != nil {
		return nil, nil, close, fmt.Errorf("requests are signed with the deployment's event key: configure events.keys, or --data the data directory of `erasure up`: %w; nothing was submitted", err)
	}
	kp, err := kafka.NewPublisher(c.kafka)
	if err != nil {
		return nil, nil, close, err
	}
	closers = append(closers, func() { kp.Close() })
	if waitSince != nil {
		sub, err := kafka.NewSubscriber(c.kafka, kafka.SubscriberConfig{Since: waitSince.Add(-5 * time.Second)})
		if err != nil {
			return nil, nil, close, err
		}
		closers = append(closers, func() { sub.Close() })
		if outs, err = sub.Subscribe(ctx, c.q.Topics.Outcomes()); err != nil {
			return nil, nil, close, err
		}
		outs = c.verified(ctx, outs, stderr)
	}
	return producers.SigningPublisher{Publisher: kp, Keys: keys}, outs, close, nil
}

// publish sends requests in chunks, after connect.
func (c *pipelineClient) publish(ctx context.Context, reqs []schemas.DeletionRequested, waitSince *time.Time, stderr io.Writer) (outs <-chan *message.Message, close func(), err error) {
	pub, outs, close, err := c.connect(ctx, waitSince, stderr)
	if err != nil {
		return nil, close, err
	}
	const chunk = 500
	for start := 0; start < len(reqs); start += chunk {
		end := min(start+chunk, len(reqs))
		msgs := make([]*message.Message, 0, end-start)
		for i := range reqs[start:end] {
			m, err := producers.NewMessage(&reqs[start+i], reqs[start+i].RequestID)
			if err != nil {
				return nil, close, err
			}
			msgs = append(msgs, m)
		}
		if err := pub.Publish(c.q.Topics.Requests(), msgs...); err != nil {
			return nil, close, fmt.Errorf("publish (after %d of %d requests): %w", start, len(reqs), err)
		}
		fmt.Fprintf(stderr, "submitted %d/%d requests\n", end, len(reqs))
	}
	return outs, close, nil
}
