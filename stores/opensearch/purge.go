package opensearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// Deleting a document only marks it deleted: its source and terms stay in
// its segment, and in the translog until a flush, until a merge rewrites
// the segment without it. Two things hold that merge back:
//
//   - Retention leases. A shard keeps deleted documents above the sequence
//     number each lease retains, for replicas' recovery. The lease of an
//     active shard copy advances when OpenSearch syncs retention leases,
//     every 30 s (not an index setting: index.soft_deletes.retention_lease.
//     sync_interval is refused as unknown); the lease of a copy that is
//     gone only expires after index.soft_deletes.retention_lease.period
//     (12 h by default). Measured on 2.19, one node: an expunge merge has
//     no effect until 26–31 s after the delete, then drops the documents in
//     under a second. Setting the period to 1 s changed nothing (30.0 and
//     30.5 s); flushing or refreshing does not advance a lease; soft
//     deletes cannot be turned off for a new index.
//   - The merge policy. _forcemerge?only_expunge_deletes=true only merges
//     segments with more than index.merge.policy.expunge_deletes_allowed
//     (10 %) deleted documents: measured, one document deleted out of 2,000
//     was still there after 2 minutes of expunge merges. Purge sets it to 0
//     on the index (indexes this adapter creates have it from the start);
//     the cost is that an expunge rewrites every segment with a deletion.
//
// So Purge flushes (the translog no longer holds the documents), notes the
// segments that hold deleted documents, and hands them to a background
// loop owned by the Index; while that is pending, further Purges of the
// index only ask the loop for a new snapshot. The loop runs one expunge
// merge at a time, at most every osExpungeEvery per index however many
// deletes it coalesces, and records when the noted segments are gone
// (merged away, then released by a refresh). Segments rather than
// docs.deleted: on a busy index new deletes and updates keep docs.deleted
// above zero. The loop ends when nothing is pending, and with Close.

const (
	osExpungeJob = "opensearch expunge merge"
	// osLeaseSync is how often OpenSearch advances the retention leases of
	// active shard copies.
	osLeaseSync = 30 * time.Second
	// osExpungeFirst is the wait before the first expunge of an index after
	// a delete: sooner is almost always wasted on a lease not yet advanced.
	osExpungeFirst = 10 * time.Second
	// osExpungeEvery spaces the expunges of one index.
	osExpungeEvery = 5 * time.Second
	// osExpungeMaxBackoff caps the wait after failed expunges (429, 5xx).
	osExpungeMaxBackoff = 5 * time.Minute
	// osExpungeMargin covers the merge itself and merges queued before it.
	osExpungeMargin = 2 * time.Minute
	// osExpungePassTimeout bounds one expunge merge, refresh and check.
	osExpungePassTimeout = 30 * time.Minute
	// osDefaultLeasePeriod is OpenSearch's default retention lease period.
	osDefaultLeasePeriod = 12 * time.Hour
)

// expunger is the Index's background expunge loop and what it works on.
// Its zero value is ready; the loop runs only while work is pending.
type expunger struct {
	mu      sync.Mutex
	pending map[string]*expungeWork // by physical index name
	done    map[string]time.Time    // when a snapshot's segments were last all gone
	running bool
	closed  bool
	wake    chan struct{}
	stop    chan struct{}
	exited  chan struct{}
	// settled holds the indexes checked to have expunge_deletes_allowed 0.
	settled sync.Map
}

// expungeWork is the pending expunge of one index.
type expungeWork struct {
	index string // the name the caller used, for logs
	// gens are snapshots, oldest first, of the segments that held deleted
	// documents (node/shard/segment); a snapshot is done when none of its
	// segments is left. Snapshots rather than one set: on a busy index the
	// early deletions are reported gone while later ones are pending.
	gens []expungeGen
	// dirty is set by a delete since the last snapshot: the next pass
	// takes one before it merges.
	dirty bool
	// wait is how long the retention leases may hold the deletions back.
	wait    time.Duration
	since   time.Time // first delete noted
	by      time.Time // the latest PurgeBy promised
	due     time.Time
	backoff time.Duration
	warned  bool
}

type expungeGen struct {
	segments map[string]struct{}
}

var _ stores.Purger = (*Index)(nil)

// Purge makes the documents deleted from index physically gone. While an
// expunge of the index is pending it only notes the new deletion, which
// the next expunge pass covers: no request, however many deletions it
// coalesces. Otherwise it flushes the index (the translog then no longer
// holds the documents) and reports them gone now when no segment holds a
// deleted document; else it schedules the expunge and reports by when it
// will be done.
func (o *Index) Purge(ctx context.Context, index string) (stores.PurgeState, error) {
	st := stores.PurgeState{Store: "opensearch"}
	name, err := o.name(index)
	if err != nil {
		return st, err
	}
	if by, ok, err := o.expunge.touch(name); err != nil || ok {
		st.PurgeBy, st.Job = by, osExpungeJob
		return st, err
	}
	leasePeriod, err := o.purgeSettings(ctx, index, name)
	if err != nil {
		return st, err
	}
	status, body, err := o.do(ctx, http.MethodPost, "/"+name+"/_flush", nil, nil, "")
	if err != nil {
		return st, fmt.Errorf("opensearch: purge: flush: %w", err)
	}
	if status == http.StatusNotFound {
		return st, osMissingIndex("opensearch: purge: flush", index)
	}
	if status/100 != 2 {
		return st, osStatusErr("opensearch: purge: flush", status, body)
	}
	segs, err := o.segments(ctx, index, name)
	if err != nil {
		return st, err
	}
	holding := withDeletions(segs)
	if len(holding) == 0 {
		st.PurgedAt = time.Now()
		return st, nil
	}
	wait, err := o.leaseWait(ctx, index, name, leasePeriod)
	if err != nil {
		return st, err
	}
	by, err := o.expunge.add(o, index, name, expungeGen{segments: holding}, wait)
	if err != nil {
		return st, err
	}
	st.PurgeBy, st.Job = by, osExpungeJob
	return st, nil
}

// withDeletions keeps the segments with a deleted document.
func withDeletions(segs map[string]int64) map[string]struct{} {
	out := map[string]struct{}{}
	for id, deleted := range segs {
		if deleted > 0 {
			out[id] = struct{}{}
		}
	}
	return out
}

// Expunged returns when the loop last saw every segment noted for index
// gone, if it has.
func (o *Index) Expunged(index string) (time.Time, bool) {
	name, err := o.name(index)
	if err != nil {
		return time.Time{}, false
	}
	o.expunge.mu.Lock()
	defer o.expunge.mu.Unlock()
	t, ok := o.expunge.done[name]
	return t, ok
}

// Close stops the expunge loop and waits for it. Expunges still pending
// are left to OpenSearch's own merges.
func (o *Index) Close() error {
	e := &o.expunge
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	running, stop, exited := e.running, e.stop, e.exited
	e.mu.Unlock()
	if running {
		close(stop)
		<-exited
	}
	return nil
}

// purgeSettings makes sure an expunge merge takes every segment with a
// deleted document, and returns the index's retention lease period.
func (o *Index) purgeSettings(ctx context.Context, index, name string) (time.Duration, error) {
	const expungeKey, periodKey = "index.merge.policy.expunge_deletes_allowed", "index.soft_deletes.retention_lease.period"
	params := url.Values{"include_defaults": {"true"}, "flat_settings": {"true"}}
	status, body, err := o.do(ctx, http.MethodGet, "/"+name+"/_settings/"+expungeKey+","+periodKey, params, nil, "")
	if err != nil {
		return 0, fmt.Errorf("opensearch: purge: settings: %w", err)
	}
	if status == http.StatusNotFound {
		return 0, osMissingIndex("opensearch: purge: settings", index)
	}
	if status/100 != 2 {
		return 0, osStatusErr("opensearch: purge: settings", status, body)
	}
	var r map[string]struct {
		Settings map[string]string `json:"settings"`
		Defaults map[string]string `json:"defaults"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, stores.Retryable(errors.New("opensearch: purge: settings: unexpected response"))
	}
	setting := func(key string) string {
		for _, ix := range r {
			if v, ok := ix.Settings[key]; ok {
				return v
			}
			if v, ok := ix.Defaults[key]; ok {
				return v
			}
		}
		return ""
	}
	period, ok := parseOSDuration(setting(periodKey))
	if !ok {
		period = osDefaultLeasePeriod
	}
	if _, ok := o.expunge.settled.Load(name); ok {
		return period, nil
	}
	if v, err := strconv.ParseFloat(setting(expungeKey), 64); err != nil || v != 0 {
		put := []byte(`{"` + expungeKey + `":0}`)
		status, body, err := o.do(ctx, http.MethodPut, "/"+name+"/_settings", nil, put, "")
		if err != nil {
			return 0, fmt.Errorf("opensearch: purge: set %s: %w", expungeKey, err)
		}
		if status/100 != 2 {
			return 0, osStatusErr("opensearch: purge: set "+expungeKey, status, body)
		}
	}
	o.expunge.settled.Store(name, true)
	return period, nil
}

// leaseWait is how long the retention leases may keep documents deleted
// now. With every shard copy active, their leases advance within
// osLeaseSync; a copy that is missing holds its lease until the lease
// period runs out.
func (o *Index) leaseWait(ctx context.Context, index, name string, leasePeriod time.Duration) (time.Duration, error) {
	status, body, err := o.do(ctx, http.MethodGet, "/_cluster/health/"+name, nil, nil, "")
	if err != nil {
		return 0, fmt.Errorf("opensearch: purge: health: %w", err)
	}
	if status/100 != 2 && status != http.StatusRequestTimeout {
		return 0, osStatusErr("opensearch: purge: health", status, body)
	}
	var h struct {
		Unassigned   *int `json:"unassigned_shards"`
		Initializing int  `json:"initializing_shards"`
		Relocating   int  `json:"relocating_shards"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Unassigned == nil {
		return 0, stores.Retryable(errors.New("opensearch: purge: health: unexpected response"))
	}
	if *h.Unassigned+h.Initializing+h.Relocating > 0 {
		return leasePeriod + osLeaseSync, nil
	}
	return osLeaseSync, nil
}

// expungeBy is the PurgeBy promised for a deletion noted at now: the first
// pass, the leases, and the merge.
func expungeBy(now time.Time, wait time.Duration) time.Time {
	return now.Add(osExpungeFirst + wait + osExpungeMargin)
}

// segments returns every segment of every copy of the index's shards,
// keyed node/shard/segment, with its count of deleted documents.
func (o *Index) segments(ctx context.Context, index, name string) (map[string]int64, error) {
	status, body, err := o.do(ctx, http.MethodGet, "/"+name+"/_segments", nil, nil, "")
	if err != nil {
		return nil, fmt.Errorf("opensearch: segments: %w", err)
	}
	if status == http.StatusNotFound {
		return nil, osMissingIndex("opensearch: segments", index)
	}
	if status/100 != 2 {
		return nil, osStatusErr("opensearch: segments", status, body)
	}
	var r struct {
		Indices map[string]struct {
			Shards map[string][]struct {
				Routing struct {
					Node string `json:"node"`
				} `json:"routing"`
				Segments map[string]struct {
					DeletedDocs int64 `json:"deleted_docs"`
				} `json:"segments"`
			} `json:"shards"`
		} `json:"indices"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, stores.Retryable(errors.New("opensearch: segments: unexpected response"))
	}
	out := map[string]int64{}
	for _, ix := range r.Indices {
		for shard, copies := range ix.Shards {
			for _, c := range copies {
				for seg, s := range c.Segments {
					out[c.Routing.Node+"/"+shard+"/"+seg] = s.DeletedDocs
				}
			}
		}
	}
	return out, nil
}

// touch notes a deletion in an index whose expunge is pending, and
// returns the time promised; ok is false when none is pending.
func (e *expunger) touch(name string) (by time.Time, ok bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return by, false, stores.Retryable(errors.New("opensearch: purge: the index adapter is closed"))
	}
	w := e.pending[name]
	if w == nil {
		return by, false, nil
	}
	w.dirty = true
	by = expungeBy(time.Now(), w.wait)
	if by.After(w.by) {
		w.by = by
	}
	return by, true, nil
}

// add notes a snapshot of an index's segments to expunge, starts the loop
// if it is not running, and returns the time promised.
func (e *expunger) add(o *Index, index, name string, gen expungeGen, wait time.Duration) (time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return time.Time{}, stores.Retryable(errors.New("opensearch: purge: the index adapter is closed"))
	}
	if e.pending == nil {
		e.pending = map[string]*expungeWork{}
	}
	now := time.Now()
	w := e.pending[name]
	if w == nil {
		w = &expungeWork{index: index, since: now, due: now.Add(osExpungeFirst)}
		e.pending[name] = w
	}
	w.gens = append(w.gens, gen)
	w.wait = max(w.wait, wait)
	by := expungeBy(now, wait)
	if by.After(w.by) {
		w.by = by
	}
	if !e.running {
		e.running = true
		e.wake = make(chan struct{}, 1)
		e.stop = make(chan struct{})
		e.exited = make(chan struct{})
		go o.expungeLoop(e.wake, e.stop, e.exited)
		return by, nil
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return by, nil
}

// next returns the pending index due first and how long until it is due;
// ok is false when nothing is pending, and the loop then ends.
func (e *expunger) next() (name string, wait time.Duration, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.pending) == 0 {
		e.running = false
		return "", 0, false
	}
	var due time.Time
	for n, w := range e.pending {
		if name == "" || w.due.Before(due) {
			name, due = n, w.due
		}
	}
	return name, time.Until(due), true
}

// expungeLoop runs expunge passes, one at a time, until nothing is pending
// or stop is closed.
func (o *Index) expungeLoop(wake, stop, exited chan struct{}) {
	defer close(exited)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		name, wait, ok := o.expunge.next()
		if !ok {
			return
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-wake:
				t.Stop()
				continue
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		o.expungePass(ctx, name)
	}
}

// expungePass snapshots the segments holding deletions noted since the
// last pass, runs one expunge merge of the index, refreshes so searchers
// let go of the merged-away segments, and checks which segments are left.
func (o *Index) expungePass(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, osExpungePassTimeout)
	defer cancel()
	e := &o.expunge
	e.mu.Lock()
	w := e.pending[name]
	if w == nil {
		e.mu.Unlock()
		return
	}
	index, snapshot := w.index, w.dirty
	w.dirty = false
	e.mu.Unlock()

	var gen expungeGen
	var err error
	if snapshot {
		var segs map[string]int64
		if segs, err = o.segments(ctx, index, name); err == nil {
			gen.segments = withDeletions(segs)
		}
	}
	var present map[string]int64
	if err == nil {
		present, err = o.runExpunge(ctx, index, name)
	}
	if ctx.Err() != nil {
		return // closing: the work dies with the Index
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if err != nil && !errors.Is(err, errIndexGone) {
		w.dirty = w.dirty || snapshot && gen.segments == nil
		w.backoff = min(max(2*w.backoff, osExpungeEvery), osExpungeMaxBackoff)
		w.due = now.Add(w.backoff)
		o.log.Warn("opensearch: expunge failed, retrying", "index", index, "retry_in", w.backoff, "error", err)
		return
	}
	w.backoff = 0
	if len(gen.segments) > 0 {
		w.gens = append(w.gens, gen)
	}
	for _, g := range w.gens {
		for s := range g.segments {
			if _, ok := present[s]; !ok {
				delete(g.segments, s)
			}
		}
	}
	for len(w.gens) > 0 && len(w.gens[0].segments) == 0 {
		w.gens = w.gens[1:]
		if e.done == nil {
			e.done = map[string]time.Time{}
		}
		e.done[name] = now
	}
	if len(w.gens) > 0 || w.dirty {
		w.due = now.Add(osExpungeEvery)
		if now.After(w.by) && !w.warned {
			w.warned = true
			o.log.Warn("opensearch: deleted documents not expunged by the time promised",
				"index", index, "snapshots_left", len(w.gens), "promised", w.by)
		}
		return
	}
	delete(e.pending, name)
	if e.done == nil {
		e.done = map[string]time.Time{}
	}
	e.done[name] = now
	o.log.Info("opensearch: deleted documents expunged", "index", index, "after", now.Sub(w.since).Round(time.Millisecond))
}

// errIndexGone means the index was deleted, and its documents with it.
var errIndexGone = errors.New("index deleted")

// runExpunge asks for the merge, refreshes and returns the segments left.
func (o *Index) runExpunge(ctx context.Context, index, name string) (map[string]int64, error) {
	status, body, err := o.do(ctx, http.MethodPost, "/"+name+"/_forcemerge", url.Values{"only_expunge_deletes": {"true"}}, nil, "")
	if err != nil {
		return nil, fmt.Errorf("opensearch: expunge: %w", err)
	}
	if status == http.StatusNotFound {
		return nil, errIndexGone
	}
	if status/100 != 2 {
		return nil, osStatusErr("opensearch: expunge", status, body)
	}
	status, body, err = o.do(ctx, http.MethodPost, "/"+name+"/_refresh", nil, nil, "")
	if err != nil {
		return nil, fmt.Errorf("opensearch: expunge: refresh: %w", err)
	}
	if status/100 != 2 {
		return nil, osStatusErr("opensearch: expunge: refresh", status, body)
	}
	segs, err := o.segments(ctx, index, name)
	if err != nil && errors.Is(err, stores.ErrPermanent) {
		return nil, errIndexGone
	}
	return segs, err
}

var osDurationRE = regexp.MustCompile(`^(\d+)(nanos|micros|ms|s|m|h|d)$`)

// parseOSDuration parses an OpenSearch time value such as "12h" or "30s".
func parseOSDuration(s string) (time.Duration, bool) {
	m := osDurationRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	unit := map[string]time.Duration{
		"nanos": time.Nanosecond, "micros": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
	}[m[2]]
	return time.Duration(n) * unit, true
}
