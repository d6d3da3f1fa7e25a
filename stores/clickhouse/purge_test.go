package clickhouse

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// After a delete, the rows stay in the table's inactive parts until
// old_parts_lifetime passes. Purge says by when; once it reports them gone,
// the table has no inactive part and its data directory no longer holds
// the deleted values. The table lowers old_parts_lifetime to 5 s for
// itself (CREATE TABLE … SETTINGS: 18.16 cannot change it later), so the
// wait takes seconds rather than the default 8 minutes.
func TestClickHousePurgeRemovesOldParts(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	w := newClickHouseTestWarehouse(t, native, native, "native")
	ctx := t.Context()
	table := storetest.UniqueName("wh")
	if err := w.conn.Exec(ctx, `CREATE TABLE `+w.table(table)+` (contact_id String, payload Nullable(String))
		ENGINE = MergeTree() ORDER BY (contact_id) SETTINGS old_parts_lifetime = 5`); err != nil {
		t.Fatal(err)
	}
	target, other := storetest.NewUUID(), storetest.NewUUID()
	secret := "zq-secret-" + strings.ReplaceAll(storetest.NewUUID(), "-", "")
	kept := "zq-kept-" + strings.ReplaceAll(storetest.NewUUID(), "-", "")
	// Two inserts, two parts: one holds only the target's row.
	if err := w.Insert(ctx, table, stores.Row{"contact_id": target, "payload": secret}); err != nil {
		t.Fatal(err)
	}
	if err := w.Insert(ctx, table, stores.Row{"contact_id": other, "payload": kept}); err != nil {
		t.Fatal(err)
	}
	dir := clickhouseTableDir(t, w, table)
	for _, s := range []string{secret, target, kept} {
		if len(filesHolding(t, dir, s)) == 0 {
			t.Fatalf("%q not found under the table's directory before the delete: the check below would prove nothing", s)
		}
	}

	if n, err := w.Delete(ctx, table, "contact_id", target); err != nil || n != 1 {
		t.Fatalf("Delete = %d, %v", n, err)
	}
	deleted := time.Now()
	st, err := w.Purge(ctx, table)
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	storetest.ExpectPurgeState(t, st, time.Now().Add(-time.Minute))
	if st.PurgeBy.IsZero() || st.Job != clickhouseOldPartsJob || st.PurgeBy.After(time.Now().Add(2*time.Minute)) {
		t.Fatalf("right after the delete: %+v; want pending by the old parts cleanup within 5 s + the cleanup delay", st)
	}
	if files := filesHolding(t, dir, secret); len(files) == 0 {
		t.Logf("the deleted value had already left the disk when Purge answered")
	}

	deadline := time.Now().Add(2 * time.Minute)
	for st.PurgedAt.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("Purge still pending after 2 minutes: %+v", st)
		}
		time.Sleep(time.Second)
		if st, err = w.Purge(ctx, table); err != nil {
			t.Fatalf("Purge: %v", err)
		}
	}
	t.Logf("old parts gone %.1fs after the delete (old_parts_lifetime = 5)", time.Since(deleted).Seconds())
	var inactive uint64
	if err := w.conn.QueryRow(ctx, `SELECT count() FROM system.parts WHERE database = ? AND table = ? AND active = 0`, w.db, table).Scan(&inactive); err != nil {
		t.Fatal(err)
	}
	if inactive != 0 {
		t.Errorf("%d inactive parts left after Purge reported the rows gone", inactive)
	}
	if files := filesHolding(t, dir, secret); len(files) > 0 {
		t.Errorf("the deleted row's value is still on disk after Purge reported it gone, in %v", files)
	}
	// The server keeps the command of its last finished mutations
	// (finished_mutations_to_keep, 100) in mutation_N.txt, with the contact
	// ID the delete matched, as the audit log keeps it; no part may.
	for _, f := range filesHolding(t, dir, target) {
		if !strings.HasPrefix(strings.TrimPrefix(f, "/"), "mutation_") {
			t.Errorf("the deleted contact's ID is still in %s after Purge reported it gone", f)
		}
	}
	if len(filesHolding(t, dir, kept)) == 0 {
		t.Errorf("the other contact's row is gone from disk")
	}
}

// Purge of a table whose parts are all active reports the data gone now.
func TestClickHousePurgeWithoutOldParts(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	w := newClickHouseTestWarehouse(t, native, native, "native")
	table := storetest.UniqueName("wh")
	if err := w.EnsureTable(t.Context(), table, []string{"contact_id", "payload"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st, err := w.Purge(t.Context(), table)
	if err != nil {
		t.Fatal(err)
	}
	storetest.ExpectPurgeState(t, st, start)
	if st.PurgedAt.IsZero() {
		t.Errorf("Purge of a table without inactive parts = %+v, want PurgedAt", st)
	}
}

// The mutation a delete waits for is its own: of the mutations created
// while it ran, the one whose IN list holds its batch, even when another
// batch shares a value with it.
func TestClickHouseDeleteFindsItsOwnMutation(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	w := newClickHouseTestWarehouse(t, native, native, "native")
	ctx := t.Context()
	table := storetest.UniqueName("wh")
	if err := w.EnsureTable(ctx, table, []string{"contact_id", "payload"}); err != nil {
		t.Fatal(err)
	}
	var mine, theirs []string
	var rows []stores.Row
	for range 5 {
		m, o := storetest.NewUUID(), storetest.NewUUID()
		mine, theirs = append(mine, m), append(theirs, o)
		rows = append(rows, stores.Row{"contact_id": m}, stores.Row{"contact_id": o})
	}
	if err := w.Insert(ctx, table, rows...); err != nil {
		t.Fatal(err)
	}
	// A batch overlapping mine in its first value only, as a retry of a
	// neighbouring batch might.
	overlap := append([]string{mine[0]}, theirs[:2]...)
	before, err := w.mutationIDs(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]string{theirs, mine, overlap} {
		ph, args := inArgs(batch)
		if err := w.conn.Exec(ctx, `ALTER TABLE `+w.table(table)+` DELETE WHERE contact_id IN (`+ph+`)`, args...); err != nil {
			t.Fatal(err)
		}
	}
	all, err := w.newMutations(ctx, table, before, nil)
	if err != nil || len(all) != 3 {
		t.Fatalf("new mutations = %v, %v; want 3", all, err)
	}
	own, err := w.newMutations(ctx, table, before, mutationNeedles(mine))
	if err != nil || len(own) != 1 {
		t.Fatalf("own mutations = %v, %v; want 1", own, err)
	}
	var command string
	if err := w.conn.QueryRow(ctx, `SELECT command FROM system.mutations WHERE database = ? AND table = ? AND mutation_id = ?`, w.db, table, own[0]).Scan(&command); err != nil {
		t.Fatal(err)
	}
	for _, id := range mine {
		if !strings.Contains(command, id) {
			t.Errorf("picked the mutation %q, which does not delete %s", command, id)
		}
	}
	if strings.Contains(command, theirs[0]) {
		t.Errorf("picked the mutation %q, want the one deleting only %q", command, mine)
	}
	// Values the server would escape are never needles; with none left,
	// every new mutation is waited for.
	if got := mutationNeedles([]string{`it's`, `back\slash`, "tab\t"}); len(got) != 0 {
		t.Errorf("needles of escaped values = %q, want none", got)
	}
	if all, err := w.newMutations(ctx, table, before, mutationNeedles([]string{`it's`})); err != nil || len(all) != 3 {
		t.Errorf("new mutations without needles = %v, %v; want all 3", all, err)
	}
	if err := w.waitOwnMutations(ctx, "test", table, own); err != nil {
		t.Fatal(err)
	}
}

// clickhouseTableDir is where the server keeps table's parts. The test
// servers run on this machine, so the directory can be read directly.
func clickhouseTableDir(t *testing.T, w *Warehouse, table string) string {
	t.Helper()
	var dir string
	if err := w.conn.QueryRow(t.Context(), `SELECT data_path FROM system.tables WHERE database = ? AND name = ?`, w.db, table).Scan(&dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("table directory %s not readable here (%v): these tests need the server on this machine", dir, err)
	}
	return dir
}

// filesHolding lists the files under dir whose bytes contain s.
func filesHolding(t *testing.T, dir, s string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a part removed while walking
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			found = append(found, strings.TrimPrefix(path, dir))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	slices.Sort(found)
	return found
}
