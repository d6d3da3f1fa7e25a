package clickhouse

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeRuns records the runs of a combiner and holds each until released
// by the first of its values.
type fakeRuns struct {
	mu      sync.Mutex
	runs    [][]string
	held    map[string]chan error
	started chan string
}

func newFakeRuns() *fakeRuns {
	return &fakeRuns{held: map[string]chan error{}, started: make(chan string, 16)}
}

func (f *fakeRuns) run(ctx context.Context, values []string) error {
	sorted := slices.Sorted(slices.Values(values))
	release := make(chan error, 1)
	f.mu.Lock()
	f.runs = append(f.runs, sorted)
	f.held[sorted[0]] = release
	f.mu.Unlock()
	f.started <- sorted[0]
	select {
	case err := <-release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release ends the run whose first value is first with err.
func (f *fakeRuns) release(t *testing.T, first string, err error) {
	t.Helper()
	f.mu.Lock()
	ch := f.held[first]
	f.mu.Unlock()
	if ch == nil {
		t.Fatalf("no run of %s", first)
	}
	ch <- err
}

func (f *fakeRuns) all() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.runs)
}

// waitJoined waits until the group taking values for key has n callers.
func waitJoined(t *testing.T, c *combiner, key string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		c.mu.Lock()
		g := c.waiting[key]
		ok := g != nil && g.callers == n
		c.mu.Unlock()
		if ok {
			return
		}
	}
	t.Fatalf("%d callers never joined the waiting group of %s", n, key)
}

type callResult struct {
	name string
	err  error
}

func call(c *combiner, ctx context.Context, f *fakeRuns, key string, values []string, maxValues int, out chan<- callResult) {
	go func() { out <- callResult{values[0], c.do(ctx, key, values, maxValues, 1<<20, f.run)} }()
}

func TestCombinerJoinsDeletesArrivingDuringAMutation(t *testing.T) {
	var c combiner
	f := newFakeRuns()
	out := make(chan callResult, 8)
	call(&c, t.Context(), f, "t", []string{"a1", "a2"}, 100, out)
	<-f.started // the first runs alone, at once
	call(&c, t.Context(), f, "t", []string{"b1"}, 100, out)
	call(&c, t.Context(), f, "t", []string{"c1", "c2"}, 100, out)
	call(&c, t.Context(), f, "t", []string{"d1", "a1"}, 100, out)
	waitJoined(t, &c, "t", 3)
	// Another table is not held up by this one.
	call(&c, t.Context(), f, "u", []string{"e1"}, 100, out)
	if s := <-f.started; s != "e1" {
		t.Fatalf("started %s, want the other table's", s)
	}
	f.release(t, "e1", nil)
	if r := <-out; r.name != "e1" || r.err != nil {
		t.Fatalf("other table: %+v", r)
	}
	f.release(t, "a1", nil)
	if r := <-out; r.name != "a1" || r.err != nil {
		t.Fatalf("first: %+v", r)
	}
	<-f.started
	boom := errors.New("mutation failed")
	f.release(t, "a1", boom) // the three that joined, together
	for range 3 {
		if r := <-out; !errors.Is(r.err, boom) {
			t.Errorf("%s: %v, want the group's error", r.name, r.err)
		}
	}
	want := [][]string{{"a1", "a2"}, {"e1"}, {"a1", "b1", "c1", "c2", "d1"}}
	if got := f.all(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("runs %v, want %v", got, want)
	}
}

func TestCombinerKeepsEachRunWithinItsLimit(t *testing.T) {
	var c combiner
	f := newFakeRuns()
	out := make(chan callResult, 8)
	call(&c, t.Context(), f, "t", []string{"a1"}, 3, out)
	<-f.started
	call(&c, t.Context(), f, "t", []string{"b1", "b2"}, 3, out)
	waitJoined(t, &c, "t", 1)
	call(&c, t.Context(), f, "t", []string{"c1", "c2"}, 3, out) // would make 4
	waitJoined(t, &c, "t", 1)
	f.release(t, "a1", nil)
	<-out
	for range 2 {
		f.release(t, <-f.started, nil)
		<-out
	}
	for _, r := range f.all() {
		if len(r) > 3 {
			t.Errorf("run of %d values over the limit of 3: %v", len(r), r)
		}
	}
	if n := len(f.all()); n != 3 {
		t.Errorf("%d runs, want 3", n)
	}
}

func TestCombinerDropsAGroupEveryCallerLeft(t *testing.T) {
	var c combiner
	f := newFakeRuns()
	out := make(chan callResult, 8)
	call(&c, t.Context(), f, "t", []string{"a1"}, 100, out)
	<-f.started
	ctx, cancel := context.WithCancel(t.Context())
	call(&c, ctx, f, "t", []string{"b1"}, 100, out)
	waitJoined(t, &c, "t", 1)
	cancel()
	if r := <-out; r.name != "b1" || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("left caller: %+v", r)
	}
	f.release(t, "a1", nil)
	<-out
	// The next group starts afresh and runs; b1's never did.
	call(&c, t.Context(), f, "t", []string{"c1"}, 100, out)
	f.release(t, <-f.started, nil)
	<-out
	want := [][]string{{"a1"}, {"c1"}}
	if got := f.all(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("runs %v, want %v", got, want)
	}
}

func TestCombinerRunsForTheCallersThatStay(t *testing.T) {
	var c combiner
	f := newFakeRuns()
	out := make(chan callResult, 8)
	call(&c, t.Context(), f, "t", []string{"a1"}, 100, out)
	<-f.started
	ctx, cancel := context.WithCancel(t.Context())
	call(&c, ctx, f, "t", []string{"b1"}, 100, out)
	call(&c, t.Context(), f, "t", []string{"c1"}, 100, out)
	waitJoined(t, &c, "t", 2)
	cancel()
	if r := <-out; r.name != "b1" || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("left caller: %+v", r)
	}
	f.release(t, "a1", nil)
	<-out
	f.release(t, <-f.started, nil)
	if r := <-out; r.name != "c1" || r.err != nil {
		t.Fatalf("staying caller: %+v", r)
	}
	// b1 was in the group when it closed: deleting it too is harmless
	// (its caller will retry or has failed), and never wider than asked.
	want := [][]string{{"a1"}, {"b1", "c1"}}
	if got := f.all(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("runs %v, want %v", got, want)
	}
}
