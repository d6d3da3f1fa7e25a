package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// ExpectPurgeState checks that a store's purge state is well formed: the
// store is named, and the data is either gone (PurgedAt, no later than now
// and not before the deletion started) or pending (PurgeBy in the future,
// with the job that will remove it).
func ExpectPurgeState(t *testing.T, st stores.PurgeState, deletedFrom time.Time) {
	t.Helper()
	now := time.Now()
	if st.Store == "" {
		t.Errorf("purge state %+v names no store", st)
	}
	switch {
	case !st.PurgedAt.IsZero() && !st.PurgeBy.IsZero():
		t.Errorf("purge state %+v is both done and pending", st)
	case !st.PurgedAt.IsZero():
		// Stores stamp with their own clock; allow a little skew.
		if st.PurgedAt.Before(deletedFrom.Add(-time.Second)) || st.PurgedAt.After(now.Add(time.Second)) {
			t.Errorf("PurgedAt %s is outside the deletion's window %s to %s", st.PurgedAt, deletedFrom, now)
		}
		if st.Job != "" {
			t.Errorf("purge state %+v: a job for a purge that is done", st)
		}
	case !st.PurgeBy.IsZero():
		if !st.PurgeBy.After(deletedFrom) {
			t.Errorf("PurgeBy %s is not after the deletion at %s", st.PurgeBy, deletedFrom)
		}
		if strings.TrimSpace(st.Job) == "" {
			t.Errorf("purge state %+v: pending without the job that removes the data", st)
		}
	default:
		t.Errorf("purge state %+v says neither when nor by when", st)
	}
}

// testObjectsPurge runs when the store implements stores.Purger.
func testObjectsPurge(t *testing.T, newObjects func(t *testing.T) stores.Objects) {
	o, bucket := setupBucket(t, newObjects)
	p, ok := o.(stores.Purger)
	if !ok {
		t.Fatal("the store does not implement stores.Purger: it cannot say when deleted objects are gone")
	}
	start := time.Now()
	MustPutObject(t, o, bucket, "k", "v1")
	MustPutObject(t, o, bucket, "k", "v2")
	if err := o.Delete(t.Context(), bucket, "k"); err != nil {
		t.Fatal(err)
	}
	st, err := p.Purge(t.Context(), bucket)
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	ExpectPurgeState(t, st, start)
	if st.PurgedAt.IsZero() {
		t.Errorf("objects deleted by version are not reported gone: %+v", st)
	}
}
