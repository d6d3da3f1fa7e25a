// Package consumers runs the deletion pipeline's consumers on a watermill
// router: one Channel per channel of the data map, all the same handler
// over different artefacts, and the aggregator (package aggregator). Every
// handler runs the same middleware stack and receives a decoded schemas
// type, never raw bytes.
package consumers

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// RouterConfig configures the shared middleware stack.
type RouterConfig struct {
	// AttemptTimeout bounds one attempt of a handler; a negative one leaves
	// it to the handler.
	AttemptTimeout time.Duration
	// Retries and back-off for retryable errors.
	MaxRetries      int
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// DLQTopic receives events that fail validation, with the reason.
	DLQTopic string
	// CloseTimeout bounds the drain on shutdown.
	CloseTimeout time.Duration
	// Keys verify internal events (finalize, channel results) before they
	// are decoded; without keys every internal event is refused.
	Keys *schemas.Keyring
	// Producers admits deletion requests by their signature; Internal
	// defaults to Keys.
	Producers Producers
}

// producers is Producers with its defaults.
func (c RouterConfig) producers() Producers {
	p := c.Producers
	if p.Internal == nil {
		p.Internal = c.Keys
	}
	return p
}

// RequestProducers is Producers with its defaults, for a handler of
// requests registered outside this package.
func (c RouterConfig) RequestProducers() Producers { return c.producers() }

// Defaults fills zero fields.
func (c RouterConfig) Defaults() RouterConfig {
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 20 * time.Second
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 4
	}
	if c.InitialInterval == 0 {
		c.InitialInterval = 200 * time.Millisecond
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = 3 * time.Second
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 15 * time.Second
	}
	return c
}

// NewRouter builds a router with the router-level stack: correlation ID,
// metrics, and the poison queue for invalid events.
func NewRouter(cfg RouterConfig, dlq message.Publisher, logger *slog.Logger) (*message.Router, error) {
	cfg = cfg.Defaults()
	wlog := watermill.NewSlogLogger(logger)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, wlog)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	poison, err := middleware.PoisonQueueWithFilter(dlq, cfg.DLQTopic, func(err error) bool {
		return errors.Is(err, schemas.ErrInvalidEvent)
	})
	if err != nil {
		return nil, fmt.Errorf("poison queue: %w", err)
	}
	r.AddMiddleware(middleware.CorrelationID, Metrics, poison)
	return r, nil
}

// HandlerStack is the per-handler part of the stack, innermost last:
// retry with back-off for retryable errors, a timeout per attempt, and the
// recoverer so a panic becomes an error that is retried like any other.
func HandlerStack(cfg RouterConfig, logger *slog.Logger) []message.HandlerMiddleware {
	cfg = cfg.Defaults()
	retry := middleware.Retry{
		MaxRetries:          cfg.MaxRetries,
		InitialInterval:     cfg.InitialInterval,
		MaxInterval:         cfg.MaxInterval,
		Multiplier:          2,
		RandomizationFactor: 0.2,
		ResetContextOnRetry: true,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !errors.Is(p.Err, schemas.ErrInvalidEvent) && stores.IsRetryable(p.Err)
		},
		Logger: watermill.NewSlogLogger(logger),
	}
	if cfg.AttemptTimeout < 0 { // the handler bounds its own attempts
		return []message.HandlerMiddleware{retry.Middleware, middleware.Recoverer}
	}
	return []message.HandlerMiddleware{retry.Middleware, middleware.Timeout(cfg.AttemptTimeout), middleware.Recoverer}
}

// Decode validates and decodes a message into an event. A failure is an
// ErrInvalidEvent, which the poison queue sends to the dlq.
func Decode(msg *message.Message, rule schemas.ContactIDRule, out schemas.Event) error {
	if err := schemas.Decode(msg.Payload, rule, out); err != nil {
		return fmt.Errorf("message %s: %w", msg.UUID, err)
	}
	return nil
}
