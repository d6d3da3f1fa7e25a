package clickhouse

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// newTestLocks returns n writer locks on one new table, each on a
// connection of its own, as n processes would hold them.
func newTestLocks(t *testing.T, n int) []*writeLock {
	t.Helper()
	native, _ := clickhouseAddrs(t)
	db := newClickHouseTestDB(t, native, "erasure_wl")
	var out []*writeLock
	for range n {
		w, err := NewWarehouse(t.Context(), Config{Addr: []string{native}, Database: db, Protocol: "native"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		if err := w.conn.Exec(t.Context(), locksTableSQL(w.table(chLedgerLocks))); err != nil {
			t.Fatal(err)
		}
		out = append(out, newWriteLock(w.conn, w.table(chLedgerLocks), "test"))
	}
	return out
}

// Lockers on separate connections, all contending, are never inside at the
// same time, and every one of them gets its turns.
func TestClickHouseWriteLockExcludes(t *testing.T) {
	locks := newTestLocks(t, 4)
	const turns = 10
	var inside, most, total atomic.Int32
	var wg sync.WaitGroup
	for _, l := range locks {
		wg.Go(func() {
			for range turns {
				unlock, err := l.lock(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				if err := l.ensureHeld(); err != nil {
					t.Error(err)
				}
				time.Sleep(2 * time.Millisecond)
				inside.Add(-1)
				total.Add(1)
				unlock()
			}
		})
	}
	wg.Wait()
	if most.Load() != 1 || total.Load() != int32(len(locks)*turns) {
		t.Fatalf("at most %d holders at once, %d turns taken; want 1 and %d", most.Load(), total.Load(), len(locks)*turns)
	}
}

// A holder that stops without releasing (a crash) blocks the others for
// the TTL, no longer; and it may not write once its lease has run out.
func TestClickHouseWriteLockCrashedHolder(t *testing.T) {
	locks := newTestLocks(t, 2)
	for _, l := range locks {
		l.ttl, l.margin = 3*time.Second, time.Second
	}
	if err := locks[0].ensureHeld(); !errors.Is(err, stores.ErrPermanent) {
		t.Fatalf("ensureHeld before lock = %v, want a permanent error", err)
	}
	if _, err := locks[0].lock(t.Context()); err != nil { // never released
		t.Fatal(err)
	}
	start := time.Now()
	unlock, err := locks[1].lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	// Live for the TTL less up to a second of the server's rounding.
	if waited := time.Since(start); waited < 2*time.Second || waited > 6*time.Second {
		t.Fatalf("second locker waited %s for a crashed holder, want the TTL (3s)", waited)
	}
	if err := locks[0].ensureHeld(); !errors.Is(err, stores.ErrRetryable) {
		t.Fatalf("ensureHeld after the lease ran out = %v, want a retryable error", err)
	}
}

// A lock that stays held past the wait fails retryably instead of hanging.
func TestClickHouseWriteLockBusy(t *testing.T) {
	locks := newTestLocks(t, 2)
	locks[1].wait = 500 * time.Millisecond
	unlock, err := locks[0].lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := locks[1].lock(t.Context()); !errors.Is(err, errLockBusy) || !errors.Is(err, stores.ErrRetryable) {
		t.Fatalf("lock while held = %v, want a retryable busy error", err)
	}
}
