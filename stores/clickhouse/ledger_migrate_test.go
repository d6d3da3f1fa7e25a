package clickhouse

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// An audit table made before late and refused entries existed gains their
// columns when the ledger opens, and its chain still verifies.
func TestClickHouseLedgerMigratesOldAuditTable(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	db := newClickHouseTestDB(t, native, "erasure_m")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	w, err := NewWarehouse(ctx, Config{Addr: []string{native}, Database: db, Protocol: "native"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	old := &Ledger{w: w}
	if err := w.conn.Exec(ctx, `CREATE TABLE `+w.table(chLedgerAudit)+` (
		seq UInt64, request_id String, setting String, functionality String, actor String, contact_ids String,
		status String, error_code String, channels String, requested_at String, completed_at String,
		replay_of String, prev_hash String, hash String
	) ENGINE = MergeTree() ORDER BY seq`); err != nil {
		t.Fatal(err)
	}
	r := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
	out := storetest.Outcome(r, schemas.StatusSucceeded, r.RequestedAt.Add(time.Second))
	out.RequestDigest = ""
	e, err := stores.NewAuditEntry(out, "Delete Contact", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	contacts, _ := json.Marshal(e.ContactIDs)
	channels, _ := json.Marshal(e.Channels)
	cols := chAuditCols[:14]
	if err := old.chInsert(ctx, chLedgerAudit, cols, chAuditTypes[:14], []string{
		strconv.FormatInt(e.Seq, 10), e.RequestID, e.Setting, e.Functionality, e.Actor, string(contacts), string(e.Status),
		e.ErrorCode, string(channels), stores.FormatTime(e.RequestedAt), stores.FormatTime(e.CompletedAt), e.ReplayOf, e.PrevHash, e.Hash,
	}); err != nil {
		t.Fatal(err)
	}

	l, err := NewLedger(ctx, Config{Addr: []string{native}, Database: db, Protocol: "native"})
	if err != nil {
		t.Fatalf("NewLedger on an old audit table: %v", err)
	}
	defer l.Close()
	if n, err := l.VerifyChain(ctx); err != nil || n != 1 {
		t.Fatalf("VerifyChain after migration = %d, %v; want 1, nil", n, err)
	}
	reused := r
	reused.ContactIDs = []string{storetest.NewUUID()}
	refusal := schemas.DeletionCompleted{RequestID: r.RequestID, ContactIDs: reused.ContactIDs, RequestedBy: r.RequestedBy,
		RequestedAt: r.RequestedAt, Source: r.Source, RequestDigest: reused.ContentDigest()}
	if stored, created, err := l.Refuse(ctx, refusal, "Delete Contact"); err != nil || !created || stored.AuditSeq != 2 {
		t.Fatalf("Refuse after migration = %+v created %v, %v", stored, created, err)
	}
	if n, err := l.VerifyChain(ctx); err != nil || n != 2 {
		t.Fatalf("VerifyChain = %d, %v; want 2, nil", n, err)
	}
	// Opening again adds nothing twice.
	l2, err := NewLedger(ctx, Config{Addr: []string{native}, Database: db, Protocol: "native"})
	if err != nil {
		t.Fatalf("NewLedger on a migrated table: %v", err)
	}
	l2.Close()
}
