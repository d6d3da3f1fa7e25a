package locate

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestListShareJoinsTheNextPass holds a first listing while three more
// callers ask for the same prefix: they share the next pass, each sees
// every key, one whose callback fails gets its own error without stopping
// the others, and one that gives up before the pass is not called.
func TestListShareJoinsTheNextPass(t *testing.T) {
	var s listShare
	keys := []string{"a", "b", "c"}
	var passes atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	run := func(ctx context.Context, _ func(string) bool, fn func(string) error) error {
		if passes.Add(1) == 1 {
			close(started)
			<-release
		}
		for _, k := range keys {
			if err := fn(k); err != nil {
				return err
			}
		}
		return nil
	}
	ctx := t.Context()
	first := make(chan error, 1)
	go func() { first <- s.list(ctx, "p", func(string) error { return nil }, nil, run) }()
	<-started

	boom := errors.New("boom")
	got := make([][]string, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.list(ctx, "p", func(k string) error {
				got[i] = append(got[i], k)
				if i == 1 && k == "b" {
					return boom
				}
				return nil
			}, nil, run)
		}()
	}
	leaveCtx, leave := context.WithCancel(ctx)
	left := make(chan error, 1)
	var calledAfterLeaving atomic.Bool
	go func() {
		left <- s.list(leaveCtx, "p", func(string) error { calledAfterLeaving.Store(true); return nil }, nil, run)
	}()
	waitUntil(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.waiting["p"] != nil && len(s.waiting["p"].members) == 4
	})
	leave()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("caller that gave up: %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := passes.Load(); n != 2 {
		t.Errorf("%d passes, want 2 (the first, then one for the three that waited)", n)
	}
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], boom) {
		t.Errorf("errors = %v, want nil, boom, nil", errs)
	}
	if !slices.Equal(got[0], keys) || !slices.Equal(got[2], keys) || !slices.Equal(got[1], []string{"a", "b"}) {
		t.Errorf("keys seen = %q", got)
	}
	if calledAfterLeaving.Load() {
		t.Error("a caller that gave up before the pass was called")
	}
}

// TestListShareDropsAPassEveryoneLeft: a pass whose callers all gave up
// while it waited never runs, and a later caller gets a pass of its own.
func TestListShareDropsAPassEveryoneLeft(t *testing.T) {
	var s listShare
	var passes atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	run := func(ctx context.Context, _ func(string) bool, fn func(string) error) error {
		if passes.Add(1) == 1 {
			close(started)
			<-release
		}
		return fn("k")
	}
	first := make(chan error, 1)
	go func() { first <- s.list(t.Context(), "p", func(string) error { return nil }, nil, run) }()
	<-started
	ctx, cancel := context.WithCancel(t.Context())
	waiting := make(chan error, 1)
	go func() { waiting <- s.list(ctx, "p", func(string) error { return nil }, nil, run) }()
	waitUntil(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.waiting["p"] != nil
	})
	cancel()
	<-waiting
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := s.list(t.Context(), "p", func(k string) error { seen = append(seen, k); return nil }, nil, run); err != nil {
		t.Fatal(err)
	}
	if n := passes.Load(); n != 2 || !slices.Equal(seen, []string{"k"}) {
		t.Errorf("%d passes and keys %q, want 2 passes (the abandoned one never ran) and [k]", n, seen)
	}
}

// TestListShareEntersADirectoryAnyCallerWants: the shared pass reads a
// directory if one of its callers may want it, and every directory if one
// caller has no filter.
func TestListShareEntersADirectoryAnyCallerWants(t *testing.T) {
	var s listShare
	var mu sync.Mutex
	var asked []bool
	started, release := make(chan struct{}), make(chan struct{})
	var passes atomic.Int32
	run := func(ctx context.Context, enter func(string) bool, fn func(string) error) error {
		if passes.Add(1) == 1 {
			close(started)
			<-release
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, enter == nil, enter != nil && enter("a/"), enter != nil && enter("b/"), enter != nil && enter("c/"))
		return nil
	}
	go s.list(t.Context(), "p", func(string) error { return nil }, nil, run)
	<-started
	var wg sync.WaitGroup
	for _, want := range []string{"a/", "b/"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.list(t.Context(), "p", func(string) error { return nil }, func(d string) bool { return d == want }, run)
		}()
	}
	waitUntil(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.waiting["p"] != nil && len(s.waiting["p"].members) == 2
	})
	close(release)
	wg.Wait()
	if want := []bool{false, true, true, false}; !slices.Equal(asked, want) {
		t.Errorf("nil filter, enter a/, b/, c/ = %v, want %v", asked, want)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
