package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

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
	p := startPipeline(b, 0, func(c *Config) { c.Deadline = 5 * time.Minute })
	sub, err := kafka.NewSubscriber(p.app.kafka, kafka.SubscriberConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	outs, err := sub.Subscribe(b.Context(), p.app.topics.Outcomes())
	if err != nil {
		b.Fatal(err)
	}
	q := &producers.Requester{Publisher: p.app.pub, Topics: p.app.topics, Channels: p.app.stores.DataMap.ChannelsFor(), Rule: p.app.stores.Rule}
	var seed uint64
	for b.Loop() {
		b.StopTimer()
		seed++
		demo, err := Seed(b.Context(), p.app.stores, SeedOptions{Contacts: perOp, Seed: 1000 + seed})
		if err != nil {
			b.Fatal(err)
		}
		reqs := make([]schemas.DeletionRequested, 0, perOp)
		msgs := make([]*message.Message, 0, perOp)
		for _, c := range demo {
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
		if err := p.app.pub.Publish(p.app.topics.Requests(), msgs...); err != nil {
			b.Fatal(err)
		}
		if err := waitOutcomes(context.Background(), reqs, outs, 5*time.Minute, false, p.app.stores.Rule, nil, io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(perOp*b.N)/b.Elapsed().Seconds(), "contacts/s")
}
