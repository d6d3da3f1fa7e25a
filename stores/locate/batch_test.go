package locate_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/stores/storetest"
)

const third = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6d"

// countingWarehouse counts the warehouse calls that touch rows.
type countingWarehouse struct {
	stores.Warehouse
	deletes, counts atomic.Int32
}

func (w *countingWarehouse) Delete(ctx context.Context, table, column string, values ...string) (int64, error) {
	w.deletes.Add(1)
	return w.Warehouse.Delete(ctx, table, column, values...)
}

func (w *countingWarehouse) Count(ctx context.Context, table, column string, values ...string) (int64, error) {
	w.counts.Add(1)
	return w.Warehouse.Count(ctx, table, column, values...)
}

// A batch is erased with one delete and one verifying count per table
// whatever its size, finds each contact's objects at any date, and leaves
// every other contact's items alone.
func TestEraseChannelBatchesStoreCalls(t *testing.T) {
	day := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
	l := newLocator(t, day)
	ctx := t.Context()
	for i, id := range []string{target, neighbor, third} {
		putRecording(t, l, id, day.AddDate(0, 0, i*20))
		putRecording(t, l, id, day.AddDate(0, 1, i))
		storetest.MustInsert(t, l.Warehouse, "qa_evaluations",
			stores.Row{"evaluation_id": "e1" + id, "contact_id": id}, stores.Row{"evaluation_id": "e2" + id, "contact_id": id})
		storetest.MustInsert(t, l.Warehouse, "contact_sentiment", stores.Row{"contact_id": id})
	}
	w := &countingWarehouse{Warehouse: l.Warehouse}
	l.Warehouse = w

	counts, err := l.EraseChannel(ctx, schemas.ChannelVoice, []string{target, third, target}, nil)
	if err != nil {
		t.Fatalf("EraseChannel: %v", err)
	}
	want := map[string]int64{"call_recordings": 4, "qa_evaluations": 4, "sentiment": 2}
	for _, c := range counts {
		if c.Before != want[c.Artefact] || c.Deleted != want[c.Artefact] || c.After != 0 {
			t.Errorf("%s = %+v, want %d before and deleted, 0 after", c.Artefact, c, want[c.Artefact])
		}
	}
	// Two tables: one delete each, and one verifying count each.
	if d, c := w.deletes.Load(), w.counts.Load(); d != 2 || c != 2 {
		t.Errorf("warehouse calls: %d deletes, %d counts; want 2 and 2 for the whole batch", d, c)
	}
	for _, a := range l.Map.Artefacts(schemas.ChannelVoice) {
		for id, wantLeft := range map[string]int64{target: 0, third: 0, neighbor: want[a.Artefact] / 2} {
			if n, err := l.Count(ctx, a, id, nil); err != nil || n != wantLeft {
				t.Errorf("%s of %s: %d left (%v), want %d", a.Artefact, id, n, err, wantLeft)
			}
		}
	}
}

// A retry skips what an earlier attempt finished and carries its counts;
// what it finishes is added for the next.
func TestEraseChannelResumesFinishedArtefacts(t *testing.T) {
	day := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
	l := newLocator(t, day)
	ctx := t.Context()
	putRecording(t, l, target, day)
	storetest.MustInsert(t, l.Warehouse, "qa_evaluations", stores.Row{"evaluation_id": "e1", "contact_id": target})
	w := &countingWarehouse{Warehouse: l.Warehouse}
	l.Warehouse = w

	done := locate.Finished{
		"qa_evaluations": {Artefact: "qa_evaluations", Before: 3, Deleted: 3},
		"sentiment":      {Artefact: "sentiment", Before: 1, Deleted: 1},
	}
	counts, err := l.EraseChannel(ctx, schemas.ChannelVoice, []string{target}, done)
	if err != nil {
		t.Fatal(err)
	}
	if d := w.deletes.Load(); d != 0 {
		t.Errorf("%d warehouse deletes; both tables were finished before", d)
	}
	got := map[string]int64{}
	for _, c := range counts {
		got[c.Artefact] = c.Deleted
	}
	if got["qa_evaluations"] != 3 || got["sentiment"] != 1 || got["call_recordings"] != 1 {
		t.Errorf("counts %v: want the earlier attempt's 3 and 1 carried, and the recording deleted now", got)
	}
	if c, ok := done["call_recordings"]; !ok || c.Deleted != 1 {
		t.Errorf("done after the attempt: %+v; want call_recordings recorded", done)
	}
}

// A contact ID the rule refuses stops the whole batch before any store is
// touched.
func TestEraseChannelRefusesABatchWithABadID(t *testing.T) {
	day := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
	l := newLocator(t, day)
	putRecording(t, l, target, day)
	if _, err := l.EraseChannel(t.Context(), schemas.ChannelVoice, []string{target, "*"}, nil); err == nil || stores.IsRetryable(err) {
		t.Fatalf("EraseChannel with a bad ID: %v; want a permanent error", err)
	}
	a, _ := l.Map.Find(schemas.ChannelVoice, "call_recordings")
	if n, err := l.Count(t.Context(), a, target, nil); err != nil || n != 1 {
		t.Errorf("recording of the valid contact: %d, %v; want it untouched", n, err)
	}
}

// gatedObjects counts listings and holds the first until released.
type gatedObjects struct {
	stores.Objects
	lists   atomic.Int32
	first   chan struct{}
	release chan struct{}
}

func (o *gatedObjects) List(ctx context.Context, bucket, prefix string, fn func(key string) error) error {
	if o.lists.Add(1) == 1 {
		close(o.first)
		<-o.release
	}
	return o.Objects.List(ctx, bucket, prefix, fn)
}

// Erasures of one artefact type that arrive while another runs wait for
// it and then run as one: one listing to find and one to verify for all of
// them. Each is told its own counts, a contact two of them name counted as
// deleted by the first only, and no other contact's objects are touched.
func TestConcurrentObjectErasuresRunTogether(t *testing.T) {
	day := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
	l := newLocator(t, day)
	const fourth = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6e"
	for _, id := range []string{target, neighbor, third, fourth} {
		putRecording(t, l, id, day)
		putRecording(t, l, id, day.AddDate(0, 1, 0))
	}
	gate := &gatedObjects{Objects: l.Objects, first: make(chan struct{}), release: make(chan struct{})}
	l.Objects = gate
	a, _ := l.Map.Find(schemas.ChannelVoice, "call_recordings")

	type result struct {
		c   schemas.ArtefactCount
		err error
	}
	erase := func(ids ...string) <-chan result {
		out := make(chan result, 1)
		go func() {
			c, err := l.Erase(t.Context(), a, ids...)
			out <- result{c, err}
		}()
		return out
	}
	waitFor := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); l.WaitingObjectErasures(a.Artefact) != n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d erasures never came to wait together", n)
			}
		}
	}
	r1 := erase(target)
	<-gate.first // running, held in its first listing
	r2 := erase(third)
	waitFor(1)
	r3 := erase(third, fourth)
	waitFor(2)
	close(gate.release)

	for i, ch := range []<-chan result{r1, r2, r3} {
		r := <-ch
		if r.err != nil || r.c.Before != 2 || r.c.Deleted != 2 || r.c.After != 0 {
			t.Errorf("erasure %d: %+v, %v; want 2 deleted, none left", i+1, r.c, r.err)
		}
	}
	if n := gate.lists.Load(); n != 4 {
		t.Errorf("%d listings; want 4: find and verify for the first, then for the other two together", n)
	}
	for id, want := range map[string]int64{target: 0, third: 0, fourth: 0, neighbor: 2} {
		if n, err := l.Count(t.Context(), a, id, nil); err != nil || n != want {
			t.Errorf("recordings of %s: %d (%v), want %d", id, n, err, want)
		}
	}
}
