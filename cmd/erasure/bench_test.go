package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/kafka"
)

// BenchmarkBulkDelete measures the whole pipeline on the embedded defaults:
// 100 contacts, one request each, from publishing the requests to the last
// outcome (every channel, phase 2, audit). Run with:
//
//	go test ./cmd/erasure -run XXX -bench BulkDelete -benchtime 5x
func BenchmarkBulkDelete(b *testing.B) {
	const perOp = 100
	p := startPipeline(b, 0, func(c *app.Config) { c.Deadline = 5 * time.Minute })
	sub, err := kafka.NewSubscriber(p.app.Kafka, kafka.SubscriberConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	outs, err := sub.Subscribe(b.Context(), p.app.Topics.Outcomes())
	if err != nil {
		b.Fatal(err)
	}
	q := &producers.Requester{Publisher: p.app.Publisher, Topics: p.app.Topics, Channels: p.app.Stores.DataMap.ChannelsFor(), Rule: p.app.Stores.Rule}
	var seed uint64
	for b.Loop() {
		b.StopTimer()
		seed++
		seeded, err := demo.Seed(b.Context(), p.app.Stores.Demo(), demo.Options{Contacts: perOp, Seed: 1000 + seed})
		if err != nil {
			b.Fatal(err)
		}
		reqs := make([]schemas.DeletionRequested, 0, perOp)
		msgs := make([]*message.Message, 0, perOp)
		for _, c := range seeded {
			ev, err := q.Build(producers.Request{ContactIDs: []string{c.ID}, RequestedBy: "bench", Source: schemas.SourceCLI})
			if err != nil {
				b.Fatal(err)
			}
			m, err := producers.NewMessage(&ev, ev.RequestID)
			if err != nil {
				b.Fatal(err)
			}
			reqs, msgs = append(reqs, ev), append(msgs, m)
		}
		b.StartTimer()
		if err := p.app.Publisher.Publish(p.app.Topics.Requests(), msgs...); err != nil {
			b.Fatal(err)
		}
		if err := waitOutcomes(context.Background(), reqs, outs, 5*time.Minute, false, p.app.Stores.Rule, nil, io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(perOp*b.N)/b.Elapsed().Seconds(), "contacts/s")
}
