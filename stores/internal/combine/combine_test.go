package combine

import (
	"context"
	"errors"
	"fmt"
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

// run reports to each caller the number of items of the whole run and the
// first of its own.
func (f *fakeRuns) run(ctx context.Context, batches [][]string) ([]string, error) {
	values := slices.Concat(batches...)
	res := make([]string, len(batches))
	for i, b := range batches {
		res[i] = fmt.Sprintf("%d items, mine from %s", len(values), b[0])
	}
	sorted := slices.Sorted(slices.Values(values))
	release := make(chan error, 1)
	f.mu.Lock()
	f.runs = append(f.runs, sorted)
	f.held[sorted[0]] = release
	f.mu.Unlock()
	f.started <- sorted[0]
	select {
	case err := <-release:
		return res, err
	case <-ctx.Done():
		return nil, ctx.Err()
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
func waitJoined(t *testing.T, c *strings, key string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		c.mu.Lock()
		g := c.waiting[key]
		ok := g != nil && len(g.calls) == n
		c.mu.Unlock()
		if ok {
			return
		}
	}
	t.Fatalf("%d callers never joined the waiting group of %s", n, key)
}

// strings is a combiner of string items with a string result per caller.
type strings = Combiner[string, string]

type callResult struct {
	name string
	res  string
	err  error
}

func callDo(c *strings, ctx context.Context, f *fakeRuns, key string, values []string, maxValues int, out chan<- callResult) {
	go func() {
		res, err := c.Do(ctx, key, values, Limits[string]{Items: maxValues}, f.run)
		out <- callResult{values[0], res, err}
	}()
}

func TestCombinerJoinsDeletesArrivingDuringAMutation(t *testing.T) {
	var c strings
	f := newFakeRuns()
	out := make(chan callResult, 8)
	callDo(&c, t.Context(), f, "t", []string{"a1", "a2"}, 100, out)
	<-f.started // the first runs alone, at once
	callDo(&c, t.Context(), f, "t", []string{"b1"}, 100, out)
	callDo(&c, t.Context(), f, "t", []string{"c1", "c2"}, 100, out)
	callDo(&c, t.Context(), f, "t", []string{"d1", "a1"}, 100, out)
	waitJoined(t, &c, "t", 3)
	// Another table is not held up by this one.
	callDo(&c, t.Context(), f, "u", []string{"e1"}, 100, out)
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
	// Each gets its own result of the run and the run's error.
	for range 3 {
		r := <-out
		if want := "5 items, mine from " + r.name; !errors.Is(r.err, boom) || r.res != want {
			t.Errorf("%s: %q, %v; want %q and the group's error", r.name, r.res, r.err, want)
		}
	}
	want := [][]string{{"a1", "a2"}, {"e1"}, {"a1", "b1", "c1", "c2", "d1"}}
	if got := f.all(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("runs %v, want %v", got, want)
	}
}

func TestCombinerKeepsEachRunWithinItsLimit(t *testing.T) {
	var c strings
	f := newFakeRuns()
	out := make(chan callResult, 8)
	callDo(&c, t.Context(), f, "t", []string{"a1"}, 3, out)
	<-f.started
	callDo(&c, t.Context(), f, "t", []string{"b1", "b2"}, 3, out)
	waitJoined(t, &c, "t", 1)
	callDo(&c, t.Context(), f, "t", []string{"c1", "c2"}, 3, out) // would make 4
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
	var c strings
	f := newFakeRuns()
	out := make(chan callResult, 8)
	callDo(&c, t.Context(), f, "t", []string{"a1"}, 100, out)
	<-f.started
	ctx, cancel := context.WithCancel(t.Context())
	callDo(&c, ctx, f, "t", []string{"b1"}, 100, out)
	waitJoined(t, &c, "t", 1)
	cancel()
	if r := <-out; r.name != "b1" || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("left caller: %+v", r)
	}
	f.release(t, "a1", nil)
	<-out
	// The next group starts afresh and runs; b1's never did.
	callDo(&c, t.Context(), f, "t", []string{"c1"}, 100, out)
	f.release(t, <-f.started, nil)
	<-out
	want := [][]string{{"a1"}, {"c1"}}
	if got := f.all(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("runs %v, want %v", got, want)
	}
}

func TestCombinerRunsForTheCallersThatStay(t *testing.T) {
	var c strings
	f := newFakeRuns()
	out := make(chan callResult, 8)
	callDo(&c, t.Context(), f, "t", []string{"a1"}, 100, out)
	<-f.started
	ctx, cancel := context.WithCancel(t.Context())
	callDo(&c, ctx, f, "t", []string{"b1"}, 100, out)
	callDo(&c, t.Context(), f, "t", []string{"c1"}, 100, out)
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
	// b1's caller left before the run started: its items are not in it.
	want := [][]string{{"a1"}, {"c1"}}
	if got := f.all(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("runs %v, want %v", got, want)
	}
}

// A caller that gives up while its run is going waits for the run and is
// told what it did; the run goes on for the caller that stays, and is
// cancelled once no caller is left.
func TestCombinerCallerLeavingARunningGroupGetsItsResult(t *testing.T) {
	var c strings
	f := newFakeRuns()
	out := make(chan callResult, 8)
	callDo(&c, t.Context(), f, "t", []string{"a1"}, 100, out)
	<-f.started
	ctx, cancel := context.WithCancel(t.Context())
	callDo(&c, ctx, f, "t", []string{"b1"}, 100, out)
	waitJoined(t, &c, "t", 1)
	callDo(&c, t.Context(), f, "t", []string{"c1"}, 100, out)
	waitJoined(t, &c, "t", 2)
	f.release(t, "a1", nil)
	<-out
	<-f.started // b1 and c1 run
	cancel()
	select {
	case r := <-out:
		t.Fatalf("%s returned before its run ended: %+v", r.name, r)
	case <-time.After(50 * time.Millisecond):
	}
	f.release(t, "b1", nil)
	for range 2 {
		if r := <-out; r.err != nil || r.res != "2 items, mine from "+r.name {
			t.Errorf("%s: %q, %v; want its result of the run", r.name, r.res, r.err)
		}
	}

	// Alone, leaving cancels the run, and the caller is told how it ended.
	ctx, cancel = context.WithCancel(t.Context())
	callDo(&c, ctx, f, "t", []string{"d1"}, 100, out)
	<-f.started
	cancel()
	if r := <-out; !errors.Is(r.err, context.Canceled) {
		t.Errorf("lone caller leaving its run: %+v, want the run cancelled", r)
	}
}
