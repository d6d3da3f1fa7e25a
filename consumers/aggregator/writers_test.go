package aggregator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/clickhouse"
	"github.com/erasure-project/erasure/stores/sqlite"
)

// Two aggregators on one ledger, each with its own handle (as two processes
// have), both handed every event of every request at once (as during a
// rebalance, when a record is redelivered to the partition's next owner while
// the last one still works on it), both sweeping: every request gets one
// decision entry and one outcome, published once; a publish that was not
// marked (a crash in between) is published again after the grace, and only
// then, with the same audit seq, so readers can drop it.
func TestTwoAggregatorsOneLedger(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		testTwoAggregators(t, func() Ledger {
			db, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return sqlite.NewLedger(db)
		})
	})
	t.Run("clickhouse", func(t *testing.T) {
		cfg := clickHouseLedgerConfig(t)
		testTwoAggregators(t, func() Ledger {
			l, err := clickhouse.NewLedger(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		})
	})
}

// clickHouseLedgerConfig makes a database of the test's own on the real
// server, dropped at the end; under CI the server must be there.
func clickHouseLedgerConfig(t *testing.T) clickhouse.Config {
	t.Helper()
	addr := os.Getenv("ERASURE_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ERASURE_TEST_CLICKHOUSE_ADDR not set: start the servers with deploy/local/servers.sh")
		}
		t.Skip("ERASURE_TEST_CLICKHOUSE_ADDR not set")
	}
	var b [6]byte
	rand.Read(b[:])
	db := "erasure_agg" + hex.EncodeToString(b[:])
	conn, err := chgo.Open(&chgo.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(t.Context(), "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	return clickhouse.Config{Addr: []string{addr}, Database: db, Protocol: "native"}
}

var errStopped = errors.New("stopped before marking")

// unmarked is a ledger whose MarkPublished fails until armed is cleared: an
// aggregator that stopped between publishing an outcome and recording it.
type unmarked struct {
	Ledger
	mu    sync.Mutex
	armed bool
}

func (u *unmarked) MarkPublished(ctx context.Context, id string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.armed {
		return errStopped
	}
	return u.Ledger.MarkPublished(ctx, id)
}

func testTwoAggregators(t *testing.T, open func() Ledger) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	rec := &recorder{}
	newAgg := func(l Ledger) *Aggregator {
		return &Aggregator{Ledger: l, Publisher: rec, Topics: schemas.Topics{Prefix: "t."}, Rule: schemas.DefaultContactIDRule,
			Deadline: DefaultDeadline, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }}
	}
	first := &unmarked{Ledger: open()}
	aggs := []*Aggregator{newAgg(first), newAgg(open())}

	const n = 6
	type req struct {
		ev      *schemas.DeletionRequested
		results []*schemas.ChannelCompleted
	}
	var reqs []req
	for range n {
		r := &schemas.DeletionRequested{RequestID: uuid.Must(uuid.NewV7()).String(), ContactIDs: []string{uuid.NewString()},
			RequestedBy: "dpo", RequestedAt: now, Source: schemas.SourceUI,
			Channels: []schemas.Channel{schemas.ChannelVoice, schemas.ChannelSocial, schemas.ChannelContactSearch}}
		var rs []*schemas.ChannelCompleted
		for _, ch := range r.Channels {
			rs = append(rs, &schemas.ChannelCompleted{RequestID: r.RequestID, Channel: ch, Status: schemas.StatusSucceeded,
				CompletedAt: now, Artefacts: []schemas.ArtefactCount{{Artefact: "x", Before: 1, Deleted: 1}},
				RequestDigest: r.ContentDigest()})
		}
		reqs = append(reqs, req{r, rs})
	}
	newMsg := func(ev schemas.Event, key string) *message.Message {
		m, err := producers.NewMessage(ev, key)
		if err != nil {
			t.Fatal(err)
		}
		m.SetContext(t.Context())
		return m
	}
	// Messages are made before the goroutines start: encoding sets fields
	// of the event.
	handleMsg := func(a *Aggregator, ev schemas.Event, m *message.Message) {
		var err error
		if _, ok := ev.(*schemas.DeletionRequested); ok {
			err = onRequest(a, m)
		} else {
			err = a.onResult(m)
		}
		if err != nil && !errors.Is(err, errStopped) {
			t.Error(err)
		}
	}
	handle := func(a *Aggregator, ev schemas.Event, key string) { handleMsg(a, ev, newMsg(ev, key)) }
	// deliver hands the event of each request to both aggregators at once,
	// while both sweep.
	deliver := func(ev func(r req) schemas.Event) {
		t.Helper()
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, r := range reqs {
			e := ev(r)
			for _, a := range aggs {
				m := newMsg(e, r.ev.RequestID)
				wg.Go(func() { <-start; handleMsg(a, e, m) })
			}
		}
		for _, a := range aggs {
			wg.Go(func() { <-start; a.sweep(t.Context()) })
		}
		close(start)
		wg.Wait()
	}
	deliver(func(r req) schemas.Event { return r.ev })
	deliver(func(r req) schemas.Event { return r.results[0] })
	deliver(func(r req) schemas.Event { return r.results[1] })
	// From here the first aggregator publishes what it decides but cannot
	// record it. It decides half the requests alone; then every last result
	// is redelivered to both.
	first.mu.Lock()
	first.armed = true
	first.mu.Unlock()
	for _, r := range reqs[:n/2] {
		handle(aggs[0], r.results[2], r.ev.RequestID)
	}
	deliver(func(r req) schemas.Event { return r.results[2] })

	outcomes := func() map[string][]schemas.DeletionCompleted {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		out := map[string][]schemas.DeletionCompleted{}
		for _, m := range rec.msgs["t.outcomes"] {
			var o schemas.DeletionCompleted
			if err := schemas.Decode(m.Payload, schemas.DefaultContactIDRule, &o); err != nil {
				t.Fatal(err)
			}
			out[o.RequestID] = append(out[o.RequestID], o)
		}
		return out
	}
	unmarkedIDs := map[string]bool{}
	check := func(wantPublished func(id string) int) {
		t.Helper()
		outs := outcomes()
		for _, r := range reqs {
			id := r.ev.RequestID
			entries, err := aggs[1].Ledger.Audit(t.Context(), stores.AuditFilter{RequestID: id})
			if err != nil {
				t.Fatal(err)
			}
			st, err := aggs[1].Ledger.State(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || st.Outcome == nil || st.Outcome.AuditSeq != entries[0].Seq {
				t.Fatalf("request %s: %d audit entries, outcome %v", id, len(entries), st.Outcome)
			}
			if !st.Published {
				unmarkedIDs[id] = true
			}
			if got := len(outs[id]); got != wantPublished(id) {
				t.Errorf("request %s: published %d times, want %d", id, got, wantPublished(id))
			}
			for _, o := range outs[id] {
				if o.Status != schemas.StatusSucceeded || o.AuditSeq != entries[0].Seq || o.RequestDigest != r.ev.ContentDigest() {
					t.Errorf("request %s: outcome %s seq %d, want succeeded with seq %d", id, o.Status, o.AuditSeq, entries[0].Seq)
				}
			}
		}
		if got, err := aggs[1].Ledger.Audit(t.Context(), stores.AuditFilter{Limit: stores.AuditMaxLimit}); err != nil || len(got) != n {
			t.Fatalf("audit log: %d entries, %v; want %d", len(got), err, n)
		}
		if v, ok := aggs[1].Ledger.(interface {
			VerifyChain(context.Context) (int64, error)
		}); ok {
			if got, err := v.VerifyChain(t.Context()); err != nil || got != n {
				t.Fatalf("VerifyChain = %d, %v; want %d", got, err, n)
			}
		}
	}
	// Within the grace every outcome is published once, marked or not.
	check(func(string) int { return 1 })
	if len(unmarkedIDs) < n/2 {
		t.Fatalf("%d outcomes left unmarked, want at least %d: the test proves nothing", len(unmarkedIDs), n/2)
	}
	// Past the grace the sweep publishes the unmarked ones again: a
	// duplicate with the same seq and digest, the price of a crash between
	// the two, which readers drop.
	first.mu.Lock()
	first.armed = false
	first.mu.Unlock()
	clock.Lock()
	now = now.Add(publishGrace)
	clock.Unlock()
	for _, a := range aggs {
		a.sweep(t.Context())
	}
	before := maps.Clone(unmarkedIDs)
	check(func(id string) int {
		if before[id] {
			return 2
		}
		return 1
	})
	for id := range before {
		if st, err := aggs[1].Ledger.State(t.Context(), id); err != nil || !st.Published {
			t.Errorf("request %s: not marked published after the sweep (%v)", id, err)
		}
	}
}
