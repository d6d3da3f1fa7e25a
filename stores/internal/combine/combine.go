// Package combine runs the store work of concurrent callers together: work
// for a key that arrives while a run for that key is going on waits for it
// and then goes out as one run, the way a database commits concurrent
// transactions as one group. A store whose cost per call hardly grows with
// the batch (a ClickHouse mutation, a listing of a whole bucket prefix)
// then pays it once per group instead of once per caller.
package combine

import (
	"context"
	"slices"
	"sync"
)

// Limits bound one run: at most Items items and, with Weight, at most
// MaxWeight of their summed weights. One caller's items always fit.
type Limits[T any] struct {
	Items     int
	Weight    func(T) int
	MaxWeight int
}

// Combiner groups concurrent calls per key. The zero value is ready.
type Combiner[T, R any] struct {
	mu      sync.Mutex
	waiting map[string]*group[T, R] // per key, the group still taking items
	slots   map[string]chan struct{}
}

// group is one future run: its callers' items and its outcome.
type group[T, R any] struct {
	calls  []*call[T, R]
	items  int
	weight int
	// started is set, under the lock, once the run's callers are fixed.
	started bool
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
}

type call[T, R any] struct {
	items  []T
	weight int
	left   bool
	res    R
}

// Run is the work of one group: every caller's items, in the order they
// joined, and a result for each of them (or an error for all).
type Run[T, R any] func(ctx context.Context, batches [][]T) ([]R, error)

// Do runs run once for items together with the items of every other call
// for key that joins before that run starts, within lim, one run per key
// at a time, and returns this caller's result and the run's error. A
// caller that gives up before the run starts takes its items out of it
// and returns at once. One that gives up while its run is going waits for
// it and returns what it did: work done for a caller is never done
// without telling it. Once every caller has given up the run is cancelled
// (before it starts, it never starts). The run's context is not any one
// caller's.
func (c *Combiner[T, R]) Do(ctx context.Context, key string, items []T, lim Limits[T], run Run[T, R]) (R, error) {
	me := &call[T, R]{items: items}
	if lim.Weight != nil {
		for _, it := range items {
			me.weight += lim.Weight(it)
		}
	}
	c.mu.Lock()
	if c.waiting == nil {
		c.waiting, c.slots = map[string]*group[T, R]{}, map[string]chan struct{}{}
	}
	g := c.waiting[key]
	if g == nil || g.items+len(items) > lim.Items || (lim.Weight != nil && g.weight+me.weight > lim.MaxWeight) {
		g = &group[T, R]{done: make(chan struct{})}
		g.ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
		c.waiting[key] = g
		slot := c.slots[key]
		if slot == nil {
			slot = make(chan struct{}, 1)
			c.slots[key] = slot
		}
		go c.lead(key, g, slot, run)
	}
	g.calls = append(g.calls, me)
	g.items += len(items)
	g.weight += me.weight
	c.mu.Unlock()

	select {
	case <-g.done:
		return me.res, g.err
	case <-ctx.Done():
		c.mu.Lock()
		me.left = true
		started := g.started
		if !started {
			// The run will not hold this caller's items.
			g.items -= len(items)
			g.weight -= me.weight
		}
		if !slices.ContainsFunc(g.calls, func(o *call[T, R]) bool { return !o.left }) {
			g.cancel()
			if c.waiting[key] == g {
				delete(c.waiting, key) // no one may join a cancelled group
			}
		}
		c.mu.Unlock()
		if !started {
			var zero R
			return zero, ctx.Err()
		}
		<-g.done
		return me.res, g.err
	}
}

// lead waits for the key's running group, closes g to new callers, and
// runs it with the items of the callers still waiting.
func (c *Combiner[T, R]) lead(key string, g *group[T, R], slot chan struct{}, run Run[T, R]) {
	defer close(g.done)
	defer g.cancel()
	select {
	case slot <- struct{}{}:
	case <-g.ctx.Done():
		c.seal(key, g)
		g.err = g.ctx.Err()
		return
	}
	defer func() { <-slot }()
	calls := c.seal(key, g)
	if err := g.ctx.Err(); err != nil {
		g.err = err
		return
	}
	batches := make([][]T, len(calls))
	for i, cl := range calls {
		batches[i] = cl.items
	}
	res, err := run(g.ctx, batches)
	g.err = err
	for i, cl := range calls {
		if i < len(res) {
			cl.res = res[i]
		}
	}
}

// seal stops g from taking callers and returns those still waiting.
func (c *Combiner[T, R]) seal(key string, g *group[T, R]) []*call[T, R] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting[key] == g {
		delete(c.waiting, key)
	}
	g.started = true
	var calls []*call[T, R]
	for _, cl := range g.calls {
		if !cl.left {
			calls = append(calls, cl)
		}
	}
	return calls
}

// Waiting returns how many callers the group still taking items for key
// has (those that gave up included).
func (c *Combiner[T, R]) Waiting(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.waiting[key]; g != nil {
		return len(g.calls)
	}
	return 0
}
