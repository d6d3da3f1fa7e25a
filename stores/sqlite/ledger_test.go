package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/sqlutil"
	"github.com/erasure-project/erasure/stores/storetest"
)

func TestSQLiteLedgerContract(t *testing.T) {
	storetest.TestLedger(t, func(t *testing.T) stores.Ledger { return NewLedger(newTestDB(t)) })
}

// ledgerWithEntries returns a ledger holding n completed requests.
func ledgerWithEntries(t *testing.T, n int) (*Ledger, *sql.DB) {
	t.Helper()
	db := newTestDB(t)
	l := NewLedger(db)
	for i := range n {
		r := storetest.Request(storetest.LedgerBase.Add(time.Duration(i)*time.Minute), storetest.NewUUID())
		storetest.MustPutRequest(t, l, r, storetest.LedgerBase.Add(time.Hour))
		if _, _, err := l.Complete(t.Context(), storetest.Outcome(r, schemas.StatusSucceeded, r.RequestedAt.Add(time.Second)), "Bulk Delete"); err != nil {
			t.Fatal(err)
		}
	}
	return l, db
}

func TestSQLiteLedgerAuditIsAppendOnly(t *testing.T) {
	l, db := ledgerWithEntries(t, 2)
	for _, stmt := range []string{
		`UPDATE erasure_audit SET actor = 'mallory' WHERE seq = 1`,
		`DELETE FROM erasure_audit WHERE seq = 2`,
		`DELETE FROM erasure_audit`,
	} {
		_, err := db.ExecContext(t.Context(), stmt)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only trigger to refuse it", stmt, err)
		}
	}
	if n, err := l.VerifyChain(t.Context()); err != nil || n != 2 {
		t.Fatalf("VerifyChain = %d, %v; want 2, nil", n, err)
	}
}

func TestSQLiteLedgerVerifyChainDetectsTampering(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, l *Ledger, db *sql.DB)
		wantSeq string
		wantN   int64
	}{
		{"changed actor", execTamper(`UPDATE erasure_audit SET actor = 'mallory' WHERE seq = 2`), "seq 2", 1},
		{"changed contact IDs", execTamper(`UPDATE erasure_audit SET contact_ids = '[]' WHERE seq = 2`), "seq 2", 1},
		{"changed status", execTamper(`UPDATE erasure_audit SET status = 'failed' WHERE seq = 3`), "seq 3", 2},
		{"changed channels", execTamper(`UPDATE erasure_audit SET channels = '[]' WHERE seq = 2`), "seq 2", 1},
		{"changed completion time", execTamper(`UPDATE erasure_audit SET completed_at = '2020-01-01T00:00:00.000000000Z' WHERE seq = 3`), "seq 3", 2},
		{"changed hash", execTamper(`UPDATE erasure_audit SET hash = '00' WHERE seq = 4`), "seq 4", 3},
		{"deleted entry", execTamper(`DELETE FROM erasure_audit WHERE seq = 2`), "seq 3", 1},
		{"rehashed changed entry", func(t *testing.T, l *Ledger, db *sql.DB) {
			// A forger who recomputes the changed entry's hash breaks the
			// next link instead.
			e := storetest.MustAudit(t, l, stores.AuditFilter{})[2] // seq 2 (newest first, 4 entries)
			e.Actor = "mallory"
			h, err := stores.AuditHash(e)
			if err != nil {
				t.Fatal(err)
			}
			execTamper(`UPDATE erasure_audit SET actor = 'mallory', hash = '`+h+`' WHERE seq = 2`)(t, l, db)
		}, "seq 3", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, db := ledgerWithEntries(t, 4)
			if n, err := l.VerifyChain(t.Context()); err != nil || n != 4 {
				t.Fatalf("VerifyChain before tampering = %d, %v", n, err)
			}
			// Whoever owns the file can drop the triggers; the chain is what
			// catches it.
			execTamper(`DROP TRIGGER erasure_audit_no_update`)(t, l, db)
			execTamper(`DROP TRIGGER erasure_audit_no_delete`)(t, l, db)
			tc.tamper(t, l, db)
			n, err := l.VerifyChain(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantSeq+":") || n != tc.wantN {
				t.Fatalf("VerifyChain = %d, %v; want %d and an error naming %s", n, err, tc.wantN, tc.wantSeq)
			}
			if !errors.Is(err, stores.ErrPermanent) {
				t.Errorf("tampering error is not permanent: %v", err)
			}
		})
	}
}

func TestSQLiteLedgerVerifyChainAcrossPages(t *testing.T) {
	defer func(p int) { sqlutil.VerifyPage = p }(sqlutil.VerifyPage)
	sqlutil.VerifyPage = 3
	l, db := ledgerWithEntries(t, 10)
	if n, err := l.VerifyChain(t.Context()); err != nil || n != 10 {
		t.Fatalf("VerifyChain = %d, %v; want 10, nil", n, err)
	}
	execTamper(`DROP TRIGGER erasure_audit_no_delete`)(t, l, db)
	execTamper(`DELETE FROM erasure_audit WHERE seq = 7`)(t, l, db) // first entry of the third page
	if n, err := l.VerifyChain(t.Context()); err == nil || !strings.Contains(err.Error(), "seq 8:") || n != 6 {
		t.Fatalf("VerifyChain = %d, %v; want 6 and an error naming seq 8", n, err)
	}
}

func execTamper(stmt string) func(t *testing.T, l *Ledger, db *sql.DB) {
	return func(t *testing.T, _ *Ledger, db *sql.DB) {
		t.Helper()
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

func TestSQLiteLedgerSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLedger(db)
	r := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
	storetest.MustPutRequest(t, l, r, storetest.LedgerBase.Add(time.Minute))
	storetest.MustPutResult(t, l, storetest.Result(r.RequestID, schemas.ChannelVoice, schemas.StatusSucceeded, storetest.LedgerBase))
	stored, _, err := l.Complete(t.Context(), storetest.Outcome(r, schemas.StatusSucceeded, storetest.LedgerBase.Add(time.Second)), "Delete Contact")
	if err != nil {
		t.Fatal(err)
	}
	open := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
	storetest.MustPutRequest(t, l, open, storetest.LedgerBase.Add(time.Minute))
	db.Close()

	db, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l = NewLedger(db)
	if n, err := l.VerifyChain(t.Context()); err != nil || n != 1 {
		t.Fatalf("VerifyChain after reopen = %d, %v", n, err)
	}
	st := storetest.MustState(t, l, r.RequestID)
	if st.Outcome == nil || st.Outcome.AuditHash != stored.AuditHash || len(st.Results) != 1 {
		t.Fatalf("state after reopen = %+v", st)
	}
	if ids, err := l.Overdue(t.Context(), storetest.LedgerBase.Add(time.Hour), 10); err != nil || len(ids) != 1 || ids[0] != open.RequestID {
		t.Fatalf("Overdue after reopen = %q, %v", ids, err)
	}
	// The chain continues from the stored head.
	r2 := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
	if s2, _, err := l.Complete(t.Context(), storetest.Outcome(r2, schemas.StatusSucceeded, storetest.LedgerBase.Add(time.Minute)), "Delete Contact"); err != nil || s2.AuditSeq != 2 {
		t.Fatalf("Complete after reopen = seq %d, %v; want seq 2", s2.AuditSeq, err)
	}
	if n, err := l.VerifyChain(t.Context()); err != nil || n != 2 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
}

func TestSQLiteLedgerOlderResultDoesNotReplaceNewer(t *testing.T) {
	l := NewLedger(newTestDB(t))
	id := storetest.NewUUID()
	storetest.MustPutResult(t, l, storetest.Result(id, schemas.ChannelVoice, schemas.StatusSucceeded, storetest.LedgerBase.Add(time.Minute)))
	storetest.MustPutResult(t, l, storetest.Result(id, schemas.ChannelVoice, schemas.StatusFailed, storetest.LedgerBase)) // redelivered stale result
	storetest.MustPutRequest(t, l, testRequestWithID(id), storetest.LedgerBase.Add(time.Hour))
	if got := storetest.MustState(t, l, id).Results[schemas.ChannelVoice].Status; got != schemas.StatusSucceeded {
		t.Fatalf("voice status = %s, want the newer result's succeeded", got)
	}
}

func testRequestWithID(id string) schemas.DeletionRequested {
	r := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
	r.RequestID = id
	return r
}

func TestSQLiteLedgerCompleteWithoutRequest(t *testing.T) {
	l := NewLedger(newTestDB(t))
	contact := storetest.NewUUID()
	r := storetest.Request(storetest.LedgerBase, contact)
	stored, created, err := l.Complete(t.Context(), storetest.Outcome(r, schemas.StatusFailed, storetest.LedgerBase.Add(time.Second)), "Delete Contact")
	if err != nil || !created {
		t.Fatalf("Complete = %v, %v", created, err)
	}
	st := storetest.MustState(t, l, r.RequestID)
	if st.Outcome == nil || st.Outcome.AuditSeq != stored.AuditSeq || st.Request.RequestedBy != r.RequestedBy {
		t.Fatalf("state = %+v", st)
	}
	if sts, err := l.ByContact(t.Context(), contact, 10); err != nil || len(sts) != 1 {
		t.Fatalf("ByContact = %d, %v", len(sts), err)
	}
	if e := storetest.MustAudit(t, l, stores.AuditFilter{ContactID: contact}); len(e) != 1 {
		t.Fatalf("Audit by contact = %d entries, want 1", len(e))
	}
	if ids, err := l.Overdue(t.Context(), storetest.LedgerBase.Add(time.Hour), 10); err != nil || len(ids) != 0 {
		t.Fatalf("Overdue = %q, %v; want none", ids, err)
	}
}

func TestSQLiteLedgerErrors(t *testing.T) {
	l := NewLedger(newTestDB(t))
	ctx := t.Context()
	if err := l.MarkPublished(ctx, storetest.NewUUID()); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("MarkPublished unknown: err = %v, want ErrNotFound", err)
	}
	if err := l.MarkFinalizing(ctx, storetest.NewUUID()); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("MarkFinalizing unknown: err = %v, want ErrNotFound", err)
	}
	r := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
	storetest.MustPutRequest(t, l, r, storetest.LedgerBase)
	if err := l.MarkPublished(ctx, r.RequestID); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("MarkPublished without outcome: err = %v, want permanent", err)
	}
	if err := l.PutRequest(ctx, schemas.DeletionRequested{}, storetest.LedgerBase); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("PutRequest without ID: err = %v, want permanent", err)
	}
	if err := l.PutResult(ctx, schemas.ChannelCompleted{RequestID: "x"}); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("PutResult without channel: err = %v, want permanent", err)
	}
	if _, _, err := l.Complete(ctx, schemas.DeletionCompleted{}, "x"); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("Complete without ID: err = %v, want permanent", err)
	}
}

// The hash format is a contract with external verifiers and other Ledger
// implementations: it must not drift.
func TestAuditHashIsStable(t *testing.T) {
	e := stores.AuditEntry{
		Seq: 7, RequestID: "0192f0c4-7d4a-7e5b-9c6d-0a1b2c3d4e5f", Setting: stores.AuditSetting, Functionality: "Delete Contact",
		Actor: "dpo@example.com", ContactIDs: []string{"3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f"},
		Status: schemas.StatusSucceeded,
		Channels: []schemas.ChannelOutcome{{Channel: schemas.ChannelVoice, Status: schemas.StatusSucceeded,
			Artefacts: []schemas.ArtefactCount{{Artefact: "call_recordings", Before: 2, Deleted: 2}}}},
		RequestedAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		CompletedAt: time.Date(2025, 3, 1, 12, 0, 3, 500000000, time.UTC),
		PrevHash:    strings.Repeat("ab", 32),
	}
	const want = "e616f8a40134ea6373e5bc2a29f02ea851ac8d032018997d2934eca2edf557dc"
	h, err := stores.AuditHash(e)
	if err != nil || h != want {
		t.Fatalf("AuditHash = %s, %v; want %s", h, err, want)
	}
	// The hash member itself and the time zone of the times do not matter.
	e.Hash = "ignored"
	e.CompletedAt = e.CompletedAt.In(time.FixedZone("x", 7200))
	if h2, _ := stores.AuditHash(e); h2 != want {
		t.Fatalf("AuditHash with hash set / other zone = %s, want %s", h2, want)
	}
}

// Two handles on one file stand for two aggregator processes: SQLite's file
// locks serialise their transactions.
func TestSQLiteLedgerWriters(t *testing.T) {
	storetest.TestLedgerWriters(t, func(t *testing.T) (stores.Ledger, stores.Ledger) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		var ls []stores.Ledger
		for range 2 {
			db, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			ls = append(ls, NewLedger(db))
		}
		return ls[0], ls[1]
	})
}
