package sqlite

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// An audit table made before a request could have several entries (request
// ID unique, no amends or request_digest) is rebuilt on first use with its
// entries and chain intact, and stays append-only.
func TestSQLiteLedgerMigratesOldAuditTable(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	for _, stmt := range []string{
		`CREATE TABLE erasure_audit (
			seq           INTEGER PRIMARY KEY,
			request_id    TEXT NOT NULL UNIQUE,
			setting       TEXT NOT NULL,
			functionality TEXT NOT NULL,
			actor         TEXT NOT NULL,
			contact_ids   TEXT NOT NULL,
			status        TEXT NOT NULL,
			error_code    TEXT NOT NULL,
			channels      TEXT NOT NULL,
			requested_at  TEXT NOT NULL,
			completed_at  TEXT NOT NULL,
			replay_of     TEXT NOT NULL,
			prev_hash     TEXT NOT NULL,
			hash          TEXT NOT NULL
		)`,
		`CREATE TRIGGER erasure_audit_no_update BEFORE UPDATE ON erasure_audit
			BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
		`CREATE TRIGGER erasure_audit_no_delete BEFORE DELETE ON erasure_audit
			BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	// Two entries as the old code wrote them: no digest, so their hashes
	// are those of the old entry form.
	var reqs []schemas.DeletionRequested
	prev := ""
	for i := range 2 {
		r := storetest.Request(storetest.LedgerBase.Add(time.Duration(i)*time.Minute), storetest.NewUUID())
		out := storetest.Outcome(r, schemas.StatusSucceeded, r.RequestedAt.Add(time.Second))
		out.RequestDigest = ""
		e, err := stores.NewAuditEntry(out, "Delete Contact", int64(i+1), prev)
		if err != nil {
			t.Fatal(err)
		}
		contacts, _ := json.Marshal(e.ContactIDs)
		channels, _ := json.Marshal(e.Channels)
		if _, err := db.ExecContext(ctx, `INSERT INTO erasure_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, e.RequestID, e.Setting, e.Functionality, e.Actor, string(contacts), string(e.Status), e.ErrorCode,
			string(channels), stores.FormatTime(e.RequestedAt), stores.FormatTime(e.CompletedAt), e.ReplayOf, e.PrevHash, e.Hash); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
		reqs = append(reqs, r)
	}

	l := NewLedger(db)
	if n, err := l.VerifyChain(ctx); err != nil || n != 2 {
		t.Fatalf("VerifyChain after migration = %d, %v; want 2, nil", n, err)
	}
	// A second entry under an existing request ID is now possible.
	reused := reqs[0]
	reused.ContactIDs = []string{storetest.NewUUID()}
	refusal := schemas.DeletionCompleted{RequestID: reused.RequestID, ContactIDs: reused.ContactIDs, RequestedBy: reused.RequestedBy,
		RequestedAt: reused.RequestedAt, Source: reused.Source, RequestDigest: reused.ContentDigest()}
	if _, created, err := l.Refuse(ctx, refusal, "Delete Contact"); err != nil || !created {
		t.Fatalf("Refuse after migration = created %v, %v", created, err)
	}
	if n, err := l.VerifyChain(ctx); err != nil || n != 3 {
		t.Fatalf("VerifyChain = %d, %v; want 3, nil", n, err)
	}
	if got := storetest.MustAudit(t, l, stores.AuditFilter{RequestID: reqs[0].RequestID}); len(got) != 2 {
		t.Fatalf("entries of the reused request ID = %d, want 2", len(got))
	}
	for _, stmt := range []string{`UPDATE erasure_audit SET actor = 'mallory' WHERE seq = 1`, `DELETE FROM erasure_audit WHERE seq = 3`} {
		if _, err := db.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s after migration: err = %v, want the append-only trigger to refuse it", stmt, err)
		}
	}
	// A second ledger on the migrated file migrates nothing.
	if n, err := NewLedger(db).VerifyChain(ctx); err != nil || n != 3 {
		t.Fatalf("VerifyChain of a reopened ledger = %d, %v", n, err)
	}
}
