package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// purgePerson is one fake customer whose strings the raw-byte checks seek.
type purgePerson struct {
	id, name, phone, email, body string
}

// purgePeople makes n customers whose strings are unique, in a random order
// so the B-trees split and merge as real data makes them.
func purgePeople(n int) []purgePerson {
	r := rand.New(rand.NewPCG(1, 2))
	ps := make([]purgePerson, n)
	for i, j := range r.Perm(n) {
		ps[i] = purgePerson{
			id:    fmt.Sprintf("c-%05d", j),
			name:  fmt.Sprintf("Purgetest Person%05dx", j),
			phone: fmt.Sprintf("+44 7700 8%05d", j),
			email: fmt.Sprintf("purge.person.%05d@example.com", j),
			body:  fmt.Sprintf("Hello, this is Purgetest Person%05dx about my bill.", j) + strings.Repeat(" padding", r.IntN(200)),
		}
	}
	return ps
}

// sought is what must be gone from the files for p: every string as
// written, and lower-cased where the index keeps a lower-cased copy.
func (p purgePerson) sought() []string {
	return []string{p.name, strings.ToLower(p.name), p.phone, p.email, strings.SplitN(p.body, " padding", 2)[0]}
}

// rawFind reports which of needles occur anywhere in the bytes of the
// database file at path or of its -wal and -shm files.
func rawFind(t *testing.T, path string, needles []string) []string {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	var found []string
	for _, n := range needles {
		if bytes.Contains(all, []byte(n)) {
			found = append(found, n)
		}
	}
	return found
}

func walSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestSQLiteSecureDeleteIsOn(t *testing.T) {
	db := newTestDB(t)
	var on int
	if err := db.QueryRowContext(t.Context(), "PRAGMA secure_delete").Scan(&on); err != nil {
		t.Fatal(err)
	}
	if on != 1 {
		t.Errorf("PRAGMA secure_delete = %d, want 1", on)
	}
}

// After a delete returns, the deleted rows' bytes are nowhere in the
// database, its WAL or its shared-memory file, while the other rows' are.
func TestSQLiteDeletesLeaveNoBytes(t *testing.T) {
	people := purgePeople(600)
	targets, others := people[:60], people[60:]

	checkGone := func(t *testing.T, path string) {
		t.Helper()
		var want []string
		for _, p := range targets {
			want = append(want, p.sought()...)
		}
		if found := rawFind(t, path, want); len(found) > 0 {
			t.Errorf("%d of %d deleted strings are still in the files, such as %q", len(found), len(want), found[0])
		}
		var kept []string
		for _, p := range others[:20] {
			kept = append(kept, p.name, p.email)
		}
		if found := rawFind(t, path, kept); len(found) != len(kept) {
			t.Errorf("%d of %d strings of rows not deleted found: the scan sees nothing", len(found), len(kept))
		}
		if n := walSize(t, path); n != 0 {
			t.Errorf("WAL is %d bytes after the delete, want 0", n)
		}
	}

	t.Run("index", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "index.db")
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ix := NewIndex(db)
		// Several transactions, as seeding and later writes make them.
		for chunk := range 6 {
			var docs []stores.Doc
			for _, p := range people[chunk*100 : chunk*100+100] {
				docs = append(docs, stores.Doc{ID: p.id, Fields: map[string]any{"contact_id": p.id,
					"customer_name": p.name, "customer_phone": p.phone, "customer_email": p.email, "note": p.body}})
				docs = append(docs, stores.Doc{ID: p.id + "-ctr", Fields: map[string]any{"contact_id": p.id, "note": p.body}})
			}
			if err := ix.Put(t.Context(), "contacts", docs...); err != nil {
				t.Fatal(err)
			}
		}
		for i, p := range targets {
			// Both delete paths: by term and by ID.
			var n int64
			if i%2 == 0 {
				n, err = ix.DeleteTerm(t.Context(), "contacts", "contact_id", p.id)
			} else {
				n, err = ix.DeleteIDs(t.Context(), "contacts", p.id, p.id+"-ctr")
			}
			if err != nil || n != 2 {
				t.Fatalf("delete %s: %d, %v", p.id, n, err)
			}
		}
		st, err := ix.Purge(t.Context(), "contacts")
		if err != nil || st.Store != "sqlite" || st.PurgedAt.IsZero() || !st.PurgeBy.IsZero() {
			t.Errorf("Purge = %+v, %v; want a purged sqlite state", st, err)
		}
		checkGone(t, path)
	})

	t.Run("warehouse", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "warehouse.db")
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		w := NewWarehouse(db)
		if err := w.EnsureTable(t.Context(), "threads", []string{"thread_id", "subject"}); err != nil {
			t.Fatal(err)
		}
		// customer_id, an email address here, is indexed (see EnsureTable):
		// an index B-tree filled in random order, as the index's terms are.
		if err := w.EnsureTable(t.Context(), "messages", []string{"thread_id", "contact_id", "customer_id", "name", "phone", "email", "body"}); err != nil {
			t.Fatal(err)
		}
		for chunk := range 6 {
			var rows, threads []stores.Row
			for _, p := range people[chunk*100 : chunk*100+100] {
				rows = append(rows, stores.Row{"thread_id": "t-" + p.id, "contact_id": p.id, "customer_id": p.email, "name": p.name,
					"phone": p.phone, "email": p.email, "body": p.body})
				// The thread's subject is the customer's too, so the orphan
				// delete must leave nothing either.
				threads = append(threads, stores.Row{"thread_id": "t-" + p.id, "subject": "Re: " + p.email})
			}
			if err := w.Insert(t.Context(), "messages", rows...); err != nil {
				t.Fatal(err)
			}
			if err := w.Insert(t.Context(), "threads", threads...); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range targets {
			if n, err := w.Delete(t.Context(), "messages", "contact_id", p.id); err != nil || n != 1 {
				t.Fatalf("delete %s: %d, %v", p.id, n, err)
			}
			if n, err := w.DeleteOrphans(t.Context(), "threads", "messages", "thread_id", []string{"t-" + p.id}); err != nil || n != 1 {
				t.Fatalf("delete orphans of %s: %d, %v", p.id, n, err)
			}
		}
		st, err := w.Purge(t.Context(), "messages")
		if err != nil || st.Store != "sqlite" || st.PurgedAt.IsZero() {
			t.Errorf("Purge = %+v, %v; want a purged sqlite state", st, err)
		}
		checkGone(t, path)
	})
}

// A reader in another process can keep the WAL from being truncated. The
// purge then fails as retryable (the deleted rows may still be in the WAL),
// stays owed, and the next purge, once the reader is gone, finishes it.
func TestSQLiteBlockedCheckpointIsRetryable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blocked.db")
	db, err := openSQLite(t.Context(), path, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := NewWarehouse(db)
	if err := w.EnsureTable(t.Context(), "t", []string{"contact_id", "body"}); err != nil {
		t.Fatal(err)
	}
	const secret = "Blockedcheckpoint Person 4711"
	if err := w.Insert(t.Context(), "t", stores.Row{"contact_id": "c1", "body": secret}, stores.Row{"contact_id": "c2", "body": "other"}); err != nil {
		t.Fatal(err)
	}

	other, err := Open(t.Context(), path) // another process, as `erasure verify` is
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rows, err := other.QueryContext(t.Context(), `SELECT contact_id FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() { // the open result set holds a read transaction
		t.Fatal("no rows")
	}

	n, err := w.Delete(t.Context(), "t", "contact_id", "c1")
	if err != nil || n != 1 {
		t.Fatalf("delete while a reader holds the WAL: %d, %v", n, err)
	}
	if _, err := w.Purge(t.Context(), "t"); !errors.Is(err, stores.ErrRetryable) || !stores.IsRetryable(err) {
		t.Errorf("Purge while a reader holds the WAL: %v, want a retryable error", err)
	}
	rows.Close()

	// The retry of the whole erasure finds nothing left to delete; the purge
	// is still owed and runs.
	if n, err = w.Delete(t.Context(), "t", "contact_id", "c1"); err != nil || n != 0 {
		t.Fatalf("retried delete: %d, %v; want 0, nil", n, err)
	}
	st, err := w.Purge(t.Context(), "t")
	if err != nil || st.PurgedAt.IsZero() {
		t.Errorf("Purge after the reader left = %+v, %v", st, err)
	}
	if got := walSize(t, path); got != 0 {
		t.Errorf("WAL is %d bytes after the purge, want 0", got)
	}
	if found := rawFind(t, path, []string{secret}); len(found) > 0 {
		t.Errorf("deleted row still in the files after the purge")
	}
}

// A delete that removes nothing does not scrub once nothing is owed: the
// cost is paid only when bytes need to go.
// A purge with nothing deleted since the last one rewrites nothing.
func TestSQLiteEmptyDeleteDoesNotScrub(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := NewWarehouse(db)
	if err := w.EnsureTable(t.Context(), "t", []string{"contact_id"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Purge(t.Context(), "t"); err != nil { // the first one after opening scrubs
		t.Fatal(err)
	}
	if err := w.Insert(t.Context(), "t", stores.Row{"contact_id": "kept"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Delete(t.Context(), "t", "contact_id", "none"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Purge(t.Context(), "t"); err != nil {
		t.Fatal(err)
	}
	if walSize(t, path) == 0 {
		t.Error("a purge after a delete that removed nothing scrubbed the database")
	}
}

func TestSQLiteFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "private.db")
	// An existing database, and its WAL, left open to others.
	for _, p := range []string{path, path + "-wal"} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWarehouse(db)
	if err := w.EnsureTable(t.Context(), "t", []string{"contact_id"}); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "fresh.db")
	db2, err := Open(t.Context(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewWarehouse(db2).EnsureTable(t.Context(), "t", []string{"contact_id"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", fresh, fresh + "-wal", fresh + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			continue
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), perm)
		}
	}
	db.Close()
	db2.Close()
}

// With a deferred scrub, Purge answers at once with the time the rows will
// be gone by; one background scrub then covers every delete made before it
// starts, and the bytes are gone from the files by that time.
func TestSQLiteDeferredScrubKeepsItsPromise(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deferred.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := NewWarehouse(db)
	if err := w.EnsureTable(t.Context(), "t", []string{"contact_id", "body"}); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"Deferredscrub Person 4711", "Deferredscrub Person 4712"}
	for i, s := range secrets {
		if err := w.Insert(t.Context(), "t", stores.Row{"contact_id": fmt.Sprint("c", i), "body": s}, stores.Row{"contact_id": fmt.Sprint("k", i), "body": "kept"}); err != nil {
			t.Fatal(err)
		}
	}
	const delay = 300 * time.Millisecond
	w.DeferScrub(delay)
	start := time.Now()
	var promised time.Time
	for i := range secrets {
		if n, err := w.Delete(t.Context(), "t", "contact_id", fmt.Sprint("c", i)); err != nil || n != 1 {
			t.Fatalf("delete: %d, %v", n, err)
		}
		st, err := w.Purge(t.Context(), "t")
		if err != nil || st.Store != "sqlite" || st.PurgeBy.IsZero() || !st.PurgedAt.IsZero() || st.Job != scrubJob {
			t.Fatalf("Purge = %+v, %v; want a promise", st, err)
		}
		if time.Since(start) > delay {
			t.Fatal("Purge waited for the scrub")
		}
		promised = st.PurgeBy
	}
	if promised.After(start.Add(delay + scrubAllowance + time.Second)) {
		t.Fatalf("promised %v, more than the delay and allowance after the first delete", promised)
	}
	for {
		st, err := w.Purge(t.Context(), "t")
		if err != nil {
			t.Fatal(err)
		}
		if !st.PurgedAt.IsZero() {
			if st.PurgedAt.After(promised) || st.PurgedAt.Before(start.Add(delay)) {
				t.Fatalf("purged at %v: want after the delay and by %v", st.PurgedAt, promised)
			}
			break
		}
		if time.Now().After(promised) {
			t.Fatal("the promise passed without a scrub")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if found := rawFind(t, path, secrets); len(found) > 0 {
		t.Errorf("deleted rows still in the files after the background scrub: %v", found)
	}
	if got := walSize(t, path); got != 0 {
		t.Errorf("WAL is %d bytes after the background scrub, want 0", got)
	}
}

// A file whose scrub takes long is scrubbed less often, and its promise says
// so: the background scrub waits scrubPace times the last scrub's duration,
// and the time promised covers that wait and the scrub.
func TestSQLiteDeferredScrubPacesWithItsDuration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paced.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := NewWarehouse(db)
	if err := w.EnsureTable(t.Context(), "t", []string{"contact_id", "body"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Insert(t.Context(), "t", stores.Row{"contact_id": "c1", "body": "Pacedscrub Person 5150"}); err != nil {
		t.Fatal(err)
	}
	w.DeferScrub(50 * time.Millisecond)
	if err := w.FlushScrub(t.Context()); err != nil { // the scrub owed after opening
		t.Fatal(err)
	}
	const took = 300 * time.Millisecond // as if the file were large
	w.purge.mu.Lock()
	w.purge.took = took
	w.purge.mu.Unlock()
	start := time.Now()
	if n, err := w.Delete(t.Context(), "t", "contact_id", "c1"); err != nil || n != 1 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	st, err := w.Purge(t.Context(), "t")
	if err != nil || st.PurgeBy.IsZero() {
		t.Fatalf("Purge = %+v, %v; want a promise", st, err)
	}
	if want := start.Add(scrubPace*took + scrubAllowance); st.PurgeBy.Before(want) {
		t.Fatalf("promised %v, before the paced delay and allowance (%v)", st.PurgeBy, want)
	}
	for st.PurgedAt.IsZero() {
		if time.Now().After(st.PurgeBy) {
			t.Fatal("the promise passed without a scrub")
		}
		time.Sleep(50 * time.Millisecond)
		if st, err = w.Purge(t.Context(), "t"); err != nil {
			t.Fatal(err)
		}
	}
	if st.PurgedAt.Before(start.Add(scrubPace * took)) {
		t.Fatalf("scrubbed %v after the delete, want no sooner than %v", st.PurgedAt.Sub(start), scrubPace*took)
	}
	if found := rawFind(t, path, []string{"Pacedscrub Person 5150"}); len(found) > 0 {
		t.Errorf("deleted row still in the files: %v", found)
	}
}
