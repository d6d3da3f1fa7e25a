package sqlite

import (
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"testing"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// tamperLedger drops the append-only triggers, as whoever owns the file
// can, and rewrites rows directly.
type tamperLedger struct {
	*Ledger
	db *sql.DB
}

func (l tamperLedger) DeleteAudit(t *testing.T, seqs ...int64) {
	t.Helper()
	execTamper(`DROP TRIGGER IF EXISTS erasure_audit_no_delete`)(t, l.Ledger, l.db)
	for _, s := range seqs {
		execTamper(fmt.Sprintf(`DELETE FROM erasure_audit WHERE seq = %d`, s))(t, l.Ledger, l.db)
	}
}

func (l tamperLedger) InsertAudit(t *testing.T, e stores.AuditEntry) {
	t.Helper()
	if err := inTx(t.Context(), l.db, func(tx *sql.Tx) error { return insertAudit(t.Context(), tx, e) }); err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteLedgerAuditTampering(t *testing.T) {
	storetest.TestAuditTampering(t, func(t *testing.T, key ed25519.PrivateKey) storetest.SignedLedger {
		db := newTestDB(t)
		return tamperLedger{NewLedger(db, WithAuditKey(key)), db}
	})
}

// Entries written before signing stay valid and are counted as unsigned;
// once entries are signed, the chain goes on from them.
func TestSQLiteLedgerUnsignedThenSigned(t *testing.T) {
	db := newTestDB(t)
	completeOne(t, NewLedger(db))
	completeOne(t, NewLedger(db))
	_, key, _ := ed25519.GenerateKey(nil)
	signed := NewLedger(db, WithAuditKey(key))
	completeOne(t, signed)
	rep, err := stores.VerifyAudit(t.Context(), signed, key.Public().(ed25519.PublicKey), nil)
	if err != nil || rep.Entries != 3 || rep.Unsigned != 2 || rep.Signed != 1 {
		t.Fatalf("VerifyAudit = %+v, %v; want 2 unsigned then 1 signed", rep, err)
	}
	if n, err := signed.VerifyChain(t.Context()); err != nil || n != 3 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
}

func completeOne(t *testing.T, l *Ledger) {
	t.Helper()
	r := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
	storetest.MustPutRequest(t, l, r, storetest.LedgerBase)
	if _, _, err := l.Complete(t.Context(), storetest.Outcome(r, "succeeded", r.RequestedAt), "Delete Contact"); err != nil {
		t.Fatal(err)
	}
}
