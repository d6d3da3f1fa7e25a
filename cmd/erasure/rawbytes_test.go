package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/schemas"
)

// TestRawBytesAfterErasure deletes contacts covering every artefact type
// through `erasure up`, stops it (gracefully, or with SIGKILL right after
// the outcome) and then reads every byte of every file in the data
// directory: databases with their -wal and -shm files, objects, temp files,
// the broker's segments. Not one personal string of a deleted contact may
// be left, while those of contacts that were not deleted, including ones
// sharing an email thread or a data-lake file with a deleted one, are all
// still there. Every file is its owner's only (0600), every directory too
// (0700).
//
// Events carry contact IDs, which are identifiers and not personal data,
// so the test seeks names, phone numbers, email addresses and free text.
func TestRawBytesAfterErasure(t *testing.T) {
	bin := buildBinary(t)
	t.Run("graceful stop", func(t *testing.T) { rawBytesAfterErasure(t, bin, syscall.SIGTERM) })
	t.Run("SIGKILL after the outcome", func(t *testing.T) { rawBytesAfterErasure(t, bin, syscall.SIGKILL) })
}

func rawBytesAfterErasure(t *testing.T, bin string, sig syscall.Signal) {
	dir := t.TempDir()
	contacts := seedDataDir(t, dir, 160)
	targets := pickCoverage(contacts)
	if len(targets) != 5 {
		t.Fatalf("demo data lacks coverage: %d targets", len(targets))
	}
	isTarget := func(c demo.Contact) bool {
		return slices.ContainsFunc(targets, func(tc demo.Contact) bool { return tc.ID == c.ID })
	}
	kept := keptSample(t, contacts, targets, isTarget)

	var erased []string
	var ids []string
	for _, c := range targets {
		ids = append(ids, c.ID)
		erased = append(erased, c.PersonalStrings()...)
		// The index keeps a lower-cased copy of the name for search (the
		// phone and email have no capitals).
		erased = append(erased, strings.ToLower(c.Name))
	}
	var keptStrings []string
	for _, k := range kept {
		keptStrings = append(keptStrings, k.c.PersonalStrings()...)
	}

	// Before: the scan sees every string, so finding none later means
	// something.
	before := scanDataDir(t, dir, append(slices.Clone(erased), keptStrings...))
	for _, s := range append(slices.Clone(erased), keptStrings...) {
		if len(before.hits[s]) == 0 {
			t.Fatalf("before the deletion %q is in no file: the scan would prove nothing", s)
		}
	}

	// A data directory left open to others by an older version is
	// tightened on start.
	for p, mode := range map[string]fs.FileMode{dir: 0o755, filepath.Join(dir, "objects"): 0o755,
		filepath.Join(dir, "index.db"): 0o644, filepath.Join(dir, "warehouse.db"): 0o644} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}

	port := freePort(t)
	up := startUp(t, bin, "--data", dir, "--broker-port", fmt.Sprint(port), "--http", "127.0.0.1:0",
		"--demo-contacts", "0", "--deadline", "2m")
	code, stdout, stderr := cli(t, "", append([]string{"delete", "--brokers", fmt.Sprintf("127.0.0.1:%d", port), "--data", dir,
		"--actor", "rawbytes-test", "--wait", "--json", "--timeout", "120s"}, ids...)...)
	if sig == syscall.SIGKILL {
		up.stop(syscall.SIGKILL) // the moment the outcome is in: nothing gets to tidy up
		// The SQLite stores scrub in the background: a process killed before
		// its scrub owes it on its next start, which keeps the promise. Scan
		// with it running until the scrub is done (bounded well inside the
		// promised purge_by), then stop it.
		up = startUp(t, bin, "--data", dir, "--broker-port", fmt.Sprint(port), "--http", "127.0.0.1:0",
			"--demo-contacts", "0", "--deadline", "2m")
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
			if len(scanDataDir(t, dir, erased).hits) == 0 {
				break
			}
		}
		up.stop(syscall.SIGKILL)
	} else {
		up.stop(syscall.SIGTERM)
		if !up.cmd.ProcessState.Success() {
			t.Errorf("erasure up did not stop cleanly: %v", up.cmd.ProcessState)
		}
	}
	if code != 0 {
		t.Fatalf("delete exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	outcomes := 0
	for dec.More() {
		var o schemas.DeletionCompleted
		if err := dec.Decode(&o); err != nil {
			t.Fatal(err)
		}
		outcomes++
		if o.Status != schemas.StatusSucceeded {
			t.Fatalf("request %s: %s %s", o.RequestID, o.Status, o.ErrorCode)
		}
		// Every embedded store says the deleted bytes are gone already, or
		// (SQLite, which scrubs in the background) by when they will be.
		for _, ch := range o.Channels {
			for _, a := range ch.Artefacts {
				finished := a.PurgedAt != nil && a.PurgeBy == nil
				promised := a.Store == "sqlite" && a.PurgeBy != nil && a.PurgedAt == nil && a.PurgeBy.Before(time.Now().Add(2*time.Minute))
				if a.Deleted > 0 && (a.Store == "" || !finished && !promised) {
					t.Errorf("%s/%s: deleted %d, store %q, purged at %v, purge by %v: want a finished purge or a near promise",
						ch.Channel, a.Artefact, a.Deleted, a.Store, a.PurgedAt, a.PurgeBy)
				}
			}
		}
	}
	if outcomes != len(ids) {
		t.Fatalf("%d outcomes for %d requests", outcomes, len(ids))
	}

	after := scanDataDir(t, dir, append(slices.Clone(erased), keptStrings...))
	found := 0
	for _, s := range erased {
		for _, f := range after.hits[s] {
			found++
			t.Errorf("deleted %q is still in %s", s, f)
		}
	}
	keptFound := 0
	for _, k := range kept {
		for _, s := range k.c.PersonalStrings() {
			if len(after.hits[s]) == 0 {
				t.Errorf("%s (%s) lost %q, which was not to be deleted", k.why, k.c.ID, s)
				continue
			}
			keptFound++
		}
		if k.where != "" && !slices.ContainsFunc(k.c.PersonalStrings(), func(s string) bool {
			return slices.ContainsFunc(after.hits[s], func(f string) bool { return strings.HasPrefix(f, k.where) })
		}) {
			t.Errorf("%s (%s): nothing of it left in %s", k.why, k.c.ID, k.where)
		}
	}
	t.Logf("scanned %d files, %d bytes: deleted contacts: %d strings sought, %d found; kept contacts: %d strings sought, %d found",
		after.files, after.bytes, len(erased), found, len(keptStrings), keptFound)

	checkPrivate(t, dir)

	// verify, which reads the stores, agrees that nothing is left.
	if code, out, errOut := cli(t, "", append([]string{"verify", "--data", dir}, ids...)...); code != 0 {
		t.Errorf("verify exit %d:\n%s\n%s", code, out, errOut)
	}
}

// seedDataDir seeds n demo contacts into a data directory, as `erasure up`
// does on its first start, and returns them with their personal strings.
func seedDataDir(t *testing.T, dir string, n int) []demo.Contact {
	t.Helper()
	cfg := app.Default()
	cfg.DataDir = dir
	var contacts []demo.Contact
	_, closeStores, err := app.OpenStores(t.Context(), cfg, app.Prepare(func(ctx context.Context, st *app.Stores) error {
		var err error
		contacts, err = demo.Seed(ctx, st.Demo(), demo.Options{Contacts: n, Seed: 11})
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	closeStores()
	return contacts
}

// keptContact is a contact that is not deleted, and why it is in the sample.
type keptContact struct {
	c     demo.Contact
	why   string
	where string // a path prefix under the data dir that must still hold its data
}

// keptSample picks contacts that must keep all their data: one sharing an
// email thread with a target, one sharing a data-lake file with one, and
// one of every kind besides.
func keptSample(t *testing.T, contacts, targets []demo.Contact, isTarget func(demo.Contact) bool) []keptContact {
	t.Helper()
	var out []keptContact
	add := func(k keptContact) {
		if !slices.ContainsFunc(out, func(o keptContact) bool { return o.c.ID == k.c.ID }) {
			out = append(out, k)
		}
	}
	day := func(c demo.Contact) string { return c.Date.UTC().Format("2006-01-02") }
	var thread, lake bool
	for _, c := range contacts {
		if isTarget(c) {
			continue
		}
		for _, tc := range targets {
			if !thread && c.ThreadID != "" && c.ThreadID == tc.ThreadID {
				add(keptContact{c: c, why: "thread mate of a deleted contact", where: "warehouse.db"})
				thread = true
			}
			if !lake && day(c) == day(tc) {
				add(keptContact{c: c, why: "data-lake file mate of a deleted contact", where: "objects/erasure-datalake/"})
				lake = true
			}
		}
	}
	if !thread || !lake {
		t.Fatalf("no contact shares a thread (%v) or a data-lake file (%v) with a target", thread, lake)
	}
	for _, kind := range []string{"voice", "chat", "email", "social"} {
		for _, c := range contacts {
			if c.Kind == kind && !isTarget(c) {
				add(keptContact{c: c, why: "untouched " + kind + " contact"})
				break
			}
		}
	}
	return out
}

// rawScan is what scanDataDir read and where it found each string.
type rawScan struct {
	files int
	bytes int64
	hits  map[string][]string // string -> files holding it, relative to the data dir
}

// scanDataDir reads every regular file under dir, whatever its name, and
// looks for every one of needles in its bytes.
func scanDataDir(t *testing.T, dir string, needles []string) rawScan {
	t.Helper()
	res := rawScan{hits: map[string][]string{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			t.Errorf("%s: not a regular file (%s), not scanned", path, d.Type())
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		res.files++
		res.bytes += int64(len(b))
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				res.hits[n] = append(res.hits[n], filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkPrivate fails for any directory under dir (dir included) that is not
// 0700 and any file that is not 0600.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	files, dirs := 0, 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
			dirs++
		} else {
			files++
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", rel, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("modes checked: %d files 0600, %d directories 0700", files, dirs)
}
