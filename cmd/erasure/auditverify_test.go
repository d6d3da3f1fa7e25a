package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/sqlite"
	"github.com/erasure-project/erasure/stores/storetest"
)

// signedDataDir is a data directory whose audit log has n entries signed
// with its receipt key, and an anchor at the head.
func signedDataDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	seedDataDir(t, dir, 3)
	cfg := app.Default()
	cfg.DataDir = dir
	key, err := cfg.ReceiptKey()
	if err != nil {
		t.Fatal(err)
	}
	st, closeStores, err := app.OpenStores(t.Context(), cfg, app.WithAuditKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer closeStores()
	var head schemas.DeletionCompleted
	for i := range n {
		r := storetest.Request(storetest.LedgerBase.Add(time.Duration(i)*time.Minute), storetest.NewUUID())
		storetest.MustPutRequest(t, st.Ledger, r, storetest.LedgerBase.Add(time.Hour))
		if head, _, err = st.Ledger.Complete(t.Context(), storetest.Outcome(r, schemas.StatusSucceeded, r.RequestedAt.Add(time.Second)), "Delete Contact"); err != nil {
			t.Fatal(err)
		}
	}
	anchors, err := cfg.AuditAnchors(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := anchors.Append(t.Context(), stores.NewAnchor(head.AuditSeq, head.AuditHash, time.Now(), key)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tamperLedgerDB runs statements on the data directory's ledger as its
// owner could, append-only triggers dropped first.
func tamperLedgerDB(t *testing.T, dir string, f func(l stores.Ledger, exec func(q string, args ...any))) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		// Dropped every time: opening the ledger creates them again.
		for _, stmt := range []string{`DROP TRIGGER IF EXISTS erasure_audit_no_update`, `DROP TRIGGER IF EXISTS erasure_audit_no_delete`} {
			if _, err := db.ExecContext(t.Context(), stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if _, err := db.ExecContext(t.Context(), q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	f(sqlite.NewLedger(db), exec)
}

func TestAuditVerifyNamesTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   []string
	}{
		{"edited count, hash recomputed without the key", func(t *testing.T, dir string) {
			tamperLedgerDB(t, dir, func(l stores.Ledger, exec func(string, ...any)) {
				e := storetest.MustAudit(t, l, stores.AuditFilter{Limit: 10})[5-3] // seq 3
				e.Channels[0].Artefacts[0].Deleted = 0
				h, err := stores.AuditHash(e)
				if err != nil {
					t.Fatal(err)
				}
				channels, _ := json.Marshal(e.Channels)
				exec(`UPDATE erasure_audit SET channels = ?, hash = ? WHERE seq = 3`, string(channels), h)
			})
		}, []string{"audit chain broken at seq 3: signature does not verify", "entries verified: 2 (signed 2, unsigned 0)"}},
		{"deleted entry", func(t *testing.T, dir string) {
			tamperLedgerDB(t, dir, func(_ stores.Ledger, exec func(string, ...any)) {
				exec(`DELETE FROM erasure_audit WHERE seq = 2`)
			})
		}, []string{"audit chain broken at seq 3: expected seq 2"}},
		{"swapped entries", func(t *testing.T, dir string) {
			tamperLedgerDB(t, dir, func(_ stores.Ledger, exec func(string, ...any)) {
				exec(`UPDATE erasure_audit SET seq = 100 WHERE seq = 2`)
				exec(`UPDATE erasure_audit SET seq = 2 WHERE seq = 3`)
				exec(`UPDATE erasure_audit SET seq = 3 WHERE seq = 100`)
			})
		}, []string{"audit chain broken at seq 2:"}},
		{"last two entries cut off", func(t *testing.T, dir string) {
			tamperLedgerDB(t, dir, func(_ stores.Ledger, exec func(string, ...any)) {
				exec(`DELETE FROM erasure_audit WHERE seq > 3`)
			})
		}, []string{"audit chain truncated at seq 4: an anchor names seq 5, the log ends at seq 3", "entries verified: 3"}},
		{"anchor line edited", func(t *testing.T, dir string) {
			path := filepath.Join(dir, app.AnchorsFile)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			edited := strings.Replace(string(raw), `"seq":5`, `"seq":4`, 1)
			if edited == string(raw) {
				t.Fatalf("no seq 5 in the anchors: %s", raw)
			}
			if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"audit anchor at seq 4: signature does not verify"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := signedDataDir(t, 5)
			code, stdout, stderr := cli(t, "", "audit", "--verify", "--data", dir)
			if code != 0 || !strings.Contains(stdout, "entries verified: 5 (signed 5, unsigned 0); anchors checked: 1 of 1") {
				t.Fatalf("before tampering: exit %d\n%s%s", code, stdout, stderr)
			}
			tc.tamper(t, dir)
			code, stdout, stderr = cli(t, "", "audit", "--verify", "--data", dir)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output does not say %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// A log written before entries were signed still verifies, with a warning
// and its entries counted as unsigned.
func TestAuditVerifyUnsignedLog(t *testing.T) {
	dir := t.TempDir()
	seedDataDir(t, dir, 3)
	cfg := app.Default()
	cfg.DataDir = dir
	st, closeStores, err := app.OpenStores(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r := storetest.Request(storetest.LedgerBase.Add(time.Duration(i)*time.Minute), storetest.NewUUID())
		storetest.MustPutRequest(t, st.Ledger, r, storetest.LedgerBase.Add(time.Hour))
		if _, _, err := st.Ledger.Complete(t.Context(), storetest.Outcome(r, schemas.StatusSucceeded, r.RequestedAt), "Delete Contact"); err != nil {
			t.Fatal(err)
		}
	}
	closeStores()
	code, stdout, stderr := cli(t, "", "audit", "--verify", "--data", dir)
	want := []string{"warning: 2 unsigned entries", "entries verified: 2 (signed 0, unsigned 2); anchors checked: 0 of 0", "audit chain intact: 2 entries"}
	for _, w := range want {
		if code != 0 || !strings.Contains(stdout, w) {
			t.Fatalf("exit %d, want 0 and %q\n%s%s", code, w, stdout, stderr)
		}
	}
}
