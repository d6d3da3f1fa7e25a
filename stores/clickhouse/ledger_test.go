package clickhouse

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
	"github.com/erasure-project/erasure/stores/storetest"
)

// newClickHouseTestLedger creates a fresh database, dropped when the test
// ends, and returns a ledger in it.
func newClickHouseTestLedger(t *testing.T) *Ledger {
	t.Helper()
	native, _ := clickhouseAddrs(t)
	db := newClickHouseTestDB(t, native, "erasure_l")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := NewLedger(ctx, Config{Addr: []string{native}, Database: db, Protocol: "native"})
	if err != nil {
		t.Fatalf("NewLedger: %v", err)
	}
	l.w.MutationTimeout = 2 * time.Minute
	t.Cleanup(func() { l.Close() })
	return l
}

func TestClickHouseLedgerContract(t *testing.T) {
	clickhouseAddrs(t)
	storetest.TestLedger(t, func(t *testing.T) stores.Ledger { return newClickHouseTestLedger(t) })
}

// completeN records and completes n requests and returns their IDs.
func completeN(t *testing.T, l stores.Ledger, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		r := storetest.Request(storetest.LedgerBase.Add(time.Duration(i)*time.Minute), storetest.NewUUID())
		storetest.MustPutRequest(t, l, r, storetest.LedgerBase.Add(time.Hour))
		if _, _, err := l.Complete(t.Context(), storetest.Outcome(r, schemas.StatusSucceeded, r.RequestedAt.Add(time.Second)), "Delete Contact"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RequestID)
	}
	return ids
}

// alterAudit changes stored audit rows behind the ledger's back, as someone
// with write access to the table could, and waits for the mutation.
func alterAudit(t *testing.T, l *Ledger, set string, seq int) {
	t.Helper()
	ctx := t.Context()
	if err := l.conn().Exec(ctx, `ALTER TABLE `+l.table(chLedgerAudit)+` UPDATE `+set+` WHERE seq = ?`, uint64(seq)); err != nil {
		t.Fatalf("alter audit: %v", err)
	}
	if err := l.w.waitMutations(ctx, chLedgerAudit); err != nil {
		t.Fatalf("wait for mutation: %v", err)
	}
}

func wantBroken(t *testing.T, l stores.Ledger, wantN int64, wantMsg string) {
	t.Helper()
	n, err := l.VerifyChain(t.Context())
	if err == nil || !errors.Is(err, stores.ErrPermanent) || !strings.Contains(err.Error(), wantMsg) {
		t.Fatalf("VerifyChain = %d, %v; want a permanent error containing %q", n, err, wantMsg)
	}
	if n != wantN {
		t.Fatalf("VerifyChain verified %d entries before the break, want %d", n, wantN)
	}
}

func TestClickHouseLedgerVerifyChainDetectsTampering(t *testing.T) {
	clickhouseAddrs(t)
	defer func(p int) { sqlutil.VerifyPage = p }(sqlutil.VerifyPage)
	sqlutil.VerifyPage = 2 // walk several pages

	t.Run("changed entry", func(t *testing.T) {
		l := newClickHouseTestLedger(t)
		completeN(t, l, 5)
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 5 {
			t.Fatalf("VerifyChain before tampering = %d, %v; want 5, nil", n, err)
		}
		alterAudit(t, l, `actor = 'someone.else@example.com'`, 3)
		wantBroken(t, l, 2, "broken at seq 3: entry does not match its hash")
	})

	t.Run("rewritten hash", func(t *testing.T) {
		l := newClickHouseTestLedger(t)
		completeN(t, l, 5)
		// A changed entry whose hash was recomputed still breaks the link
		// from the next entry.
		e := storetest.MustAudit(t, l, stores.AuditFilter{Limit: 10})[5-4] // seq 4
		e.Status = schemas.StatusFailed
		h, err := stores.AuditHash(e)
		if err != nil {
			t.Fatal(err)
		}
		alterAudit(t, l, `status = 'failed', hash = '`+h+`'`, 4)
		wantBroken(t, l, 4, "broken at seq 5: prev_hash does not match")
	})

	t.Run("deleted entry", func(t *testing.T) {
		l := newClickHouseTestLedger(t)
		completeN(t, l, 5)
		if err := l.conn().Exec(t.Context(), `ALTER TABLE `+l.table(chLedgerAudit)+` DELETE WHERE seq = 2`); err != nil {
			t.Fatal(err)
		}
		if err := l.w.waitMutations(t.Context(), chLedgerAudit); err != nil {
			t.Fatal(err)
		}
		wantBroken(t, l, 1, "broken at seq 3: expected seq 2")
	})

	t.Run("forged duplicate", func(t *testing.T) {
		l := newClickHouseTestLedger(t)
		completeN(t, l, 4)
		// A second entry with seq 2 and a valid hash of its own, on a page
		// boundary.
		e := storetest.MustAudit(t, l, stores.AuditFilter{Limit: 10})[4-2] // seq 2
		e.RequestID, e.Actor = storetest.NewUUID(), "forger@example.com"
		h, err := stores.AuditHash(e)
		if err != nil {
			t.Fatal(err)
		}
		e.Hash = h
		err = l.appendLocked(t, e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.VerifyChain(t.Context()); err == nil || !errors.Is(err, stores.ErrPermanent) {
			t.Fatalf("VerifyChain with a duplicated seq = %v, want a permanent error", err)
		}
	})
}

// A Complete interrupted after its audit entry was appended is finished by
// the next one, without a second entry.
func TestClickHouseLedgerCompleteResumesAfterAuditAppend(t *testing.T) {
	l := newClickHouseTestLedger(t)
	r := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
	storetest.MustPutRequest(t, l, r, storetest.LedgerBase.Add(time.Minute))
	out := storetest.Outcome(r, schemas.StatusSucceeded, storetest.LedgerBase.Add(time.Second))
	e := stores.NormalizeAudit(stores.AuditEntry{
		Seq: 1, RequestID: r.RequestID, Setting: stores.AuditSetting, Functionality: "Delete Contact", Actor: r.RequestedBy,
		ContactIDs: r.ContactIDs, Status: out.Status, Channels: out.Channels, RequestedAt: out.RequestedAt,
		CompletedAt: out.CompletedAt,
	})
	var err error
	if e.Hash, err = stores.AuditHash(e); err != nil {
		t.Fatal(err)
	}
	err = l.appendLocked(t, e)
	if err != nil {
		t.Fatal(err)
	}
	stored, created, err := l.Complete(t.Context(), out, "Delete Contact")
	if err != nil || !created || stored.AuditSeq != 1 || stored.AuditHash != e.Hash {
		t.Fatalf("Complete = %+v, created %v, %v; want the existing entry's seq and hash", stored, created, err)
	}
	if st := storetest.MustState(t, l, r.RequestID); st.Outcome == nil || st.Outcome.AuditHash != e.Hash {
		t.Fatalf("State.Outcome = %+v, want the resumed outcome", st.Outcome)
	}
	if n, err := l.VerifyChain(t.Context()); err != nil || n != 1 {
		t.Fatalf("VerifyChain = %d, %v; want 1, nil", n, err)
	}
	if _, created, err := l.Complete(t.Context(), out, "Delete Contact"); err != nil || created {
		t.Fatalf("second Complete: created %v, %v; want not created", created, err)
	}
}

// Two ledgers on one database stand for two aggregator processes: each has
// its own connections and mutex, so only the writer lock serialises them.
func TestClickHouseLedgerWriters(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	storetest.TestLedgerWriters(t, func(t *testing.T) (stores.Ledger, stores.Ledger) {
		db := newClickHouseTestDB(t, native, "erasure_lw")
		var ls []stores.Ledger
		for range 2 {
			l, err := NewLedger(t.Context(), Config{Addr: []string{native}, Database: db, Protocol: "native"})
			if err != nil {
				t.Fatalf("NewLedger: %v", err)
			}
			t.Cleanup(func() { l.Close() })
			ls = append(ls, l)
		}
		return ls[0], ls[1]
	})
}
