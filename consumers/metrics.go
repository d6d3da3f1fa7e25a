package consumers

import (
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/erasure-project/erasure/schemas"
)

var (
	handled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "erasure_messages_handled_total",
		Help: "Messages handled, by handler and result (ok, invalid, error).",
	}, []string{"handler", "result"})
	handleSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "erasure_handler_seconds",
		Help:    "Time to handle one message, retries included.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"handler"})
	channelArtefacts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "erasure_artefacts_deleted_total",
		Help: "Artefacts deleted, by channel and artefact type.",
	}, []string{"channel", "artefact"})
	outcomes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "erasure_outcomes_total",
		Help: "Final outcomes written, by status and error code.",
	}, []string{"status", "error_code"})
)

// Metrics records per-handler counts and latency. Labels are handler names
// and result classes only: never anything from a message.
func Metrics(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		name := message.HandlerNameFromCtx(msg.Context())
		start := time.Now()
		out, err := h(msg)
		handleSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		result := "ok"
		switch {
		case errors.Is(err, schemas.ErrInvalidEvent):
			result = "invalid"
		case err != nil:
			result = "error"
		}
		handled.WithLabelValues(name, result).Inc()
		return out, err
	}
}

// CountOutcome counts a final outcome.
func CountOutcome(out schemas.DeletionCompleted) {
	outcomes.WithLabelValues(string(out.Status), out.ErrorCode).Inc()
}
