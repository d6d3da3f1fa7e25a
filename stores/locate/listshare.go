package locate

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// A batch's objects are found, and then verified gone, by listing every
// date of the artefact's prefix, so a listing reads the whole prefix
// however few of its keys are the batch's: on object storage the listings
// are most of the work of a bulk run (MinIO spends more CPU on them than on
// the deletes). Listings of one prefix asked for while another runs
// therefore wait for it and then go out together as one pass, each key
// offered to every caller, the way concurrent deletes of a ClickHouse table
// share a mutation. A caller never joins a pass already under way: it
// might have begun before the caller's own deletes.

// listShare groups concurrent listings per bucket and prefix.
type listShare struct {
	mu      sync.Mutex
	waiting map[string]*listGroup // per prefix, the pass still taking callers
	slots   map[string]chan struct{}
}

// listGroup is one future pass and the callers it serves.
type listGroup struct {
	members []*listMember
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // the listing's own
}

// listMember is one caller: its key callback, and its directory filter for
// a store that can skip directories (nil: it needs every directory).
type listMember struct {
	each  func(key string) error
	enter func(dir string) bool
	left  atomic.Bool // gave up; its callbacks are not called again
	err   error       // its callback's first error
}

// list runs one pass over prefix for this caller and every other that
// joins before the pass starts, one pass per prefix at a time, and returns
// the pass's error or the first error of each. A pass goes on while any of
// its callers waits for it.
func (s *listShare) list(ctx context.Context, key string, each func(string) error, enter func(string) bool,
	run func(ctx context.Context, enter func(string) bool, fn func(string) error) error) error {
	m := &listMember{each: each, enter: enter}
	s.mu.Lock()
	if s.waiting == nil {
		s.waiting, s.slots = map[string]*listGroup{}, map[string]chan struct{}{}
	}
	g := s.waiting[key]
	if g == nil {
		g = &listGroup{done: make(chan struct{})}
		g.ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
		s.waiting[key] = g
		slot := s.slots[key]
		if slot == nil {
			slot = make(chan struct{}, 1)
			s.slots[key] = slot
		}
		go s.lead(key, g, slot, run)
	}
	g.members = append(g.members, m)
	s.mu.Unlock()

	select {
	case <-g.done:
		if g.err != nil {
			return g.err
		}
		return m.err
	case <-ctx.Done():
		m.left.Store(true)
		s.mu.Lock()
		if !slices.ContainsFunc(g.members, func(o *listMember) bool { return !o.left.Load() }) {
			g.cancel()
			if s.waiting[key] == g {
				delete(s.waiting, key) // no one may join a cancelled pass
			}
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// lead waits for the prefix's running pass, closes g to new callers and
// runs it.
func (s *listShare) lead(key string, g *listGroup, slot chan struct{}, run func(context.Context, func(string) bool, func(string) error) error) {
	defer close(g.done)
	defer g.cancel()
	select {
	case slot <- struct{}{}:
	case <-g.ctx.Done():
		s.seal(key, g)
		g.err = g.ctx.Err()
		return
	}
	defer func() { <-slot }()
	members := s.seal(key, g)
	if err := g.ctx.Err(); err != nil {
		g.err = err
		return
	}
	// A directory is read if any caller may want a key under it.
	var enter func(string) bool
	if !slices.ContainsFunc(members, func(m *listMember) bool { return m.enter == nil }) {
		enter = func(dir string) bool {
			return slices.ContainsFunc(members, func(m *listMember) bool { return !m.left.Load() && m.enter(dir) })
		}
	}
	g.err = run(g.ctx, enter, func(k string) error {
		for _, m := range members {
			if m.err == nil && !m.left.Load() {
				m.err = m.each(k)
			}
		}
		return nil
	})
}

// seal stops g from taking callers and returns them.
func (s *listShare) seal(key string, g *listGroup) []*listMember {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting[key] == g {
		delete(s.waiting, key)
	}
	return g.members
}
