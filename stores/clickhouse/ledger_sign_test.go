package clickhouse

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// tamperLedger rewrites audit rows with mutations, as whoever can write the
// table could.
type tamperLedger struct{ *Ledger }

func (l tamperLedger) DeleteAudit(t *testing.T, seqs ...int64) {
	t.Helper()
	for _, s := range seqs {
		if err := l.conn().Exec(t.Context(), `ALTER TABLE `+l.table(chLedgerAudit)+` DELETE WHERE seq = ?`, uint64(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.w.waitMutations(t.Context(), chLedgerAudit); err != nil {
		t.Fatal(err)
	}
}

func (l tamperLedger) InsertAudit(t *testing.T, e stores.AuditEntry) {
	t.Helper()
	if err := l.appendLocked(t, e); err != nil {
		t.Fatal(err)
	}
}

// appendLocked writes an entry straight into the audit table, as whoever
// can write the ledger could, under the writer lock the ledger requires.
func (l *Ledger) appendLocked(t *testing.T, e stores.AuditEntry) error {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := l.writers.lock(t.Context())
	if err != nil {
		return err
	}
	defer unlock()
	return l.appendAudit(t.Context(), e)
}

func TestClickHouseLedgerAuditTampering(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	storetest.TestAuditTampering(t, func(t *testing.T, key ed25519.PrivateKey) storetest.SignedLedger {
		db := newClickHouseTestDB(t, native, "erasure_l")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l, err := NewLedger(ctx, Config{Addr: []string{native}, Database: db, Protocol: "native"}, WithAuditKey(key))
		if err != nil {
			t.Fatalf("NewLedger: %v", err)
		}
		l.w.MutationTimeout = 2 * time.Minute
		t.Cleanup(func() { l.Close() })
		return tamperLedger{l}
	})
}
