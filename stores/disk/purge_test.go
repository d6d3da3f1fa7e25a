package disk

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores/storetest"
)

// filesHolding returns the files under root whose bytes contain s.
func filesHolding(t *testing.T, root, s string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestDiskObjectsArePrivate(t *testing.T) {
	root := filepath.Join(t.TempDir(), "objects")
	// A root left open to others by an older version is tightened.
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	o := New(root)
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	storetest.MustPutObject(t, o, "bkt", "a/b/c.json", "x")
	if err := o.Replace(t.Context(), "bkt", "a/b/c.json", strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	storetest.MustPutObject(t, o, "bkt", "top", "x")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", strings.TrimPrefix(path, root), fi.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 7 { // root, .tmp, bkt, a, b, c.json, top
		t.Errorf("walked %d entries, want at least 7", n)
	}
}

// Replace renames the new content over the old: no file under the root,
// temp files included, holds the old content afterwards.
func TestDiskObjectsReplaceLeavesNoCopy(t *testing.T) {
	root := t.TempDir()
	o := New(root)
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	const old = `{"contact_id":"c1","customer_phone":"+44 7700 900123"}`
	storetest.MustPutObject(t, o, "bkt", "lake/part-0.jsonl", old+"\n"+`{"contact_id":"c2"}`+"\n")
	if err := o.Replace(t.Context(), "bkt", "lake/part-0.jsonl", strings.NewReader(`{"contact_id":"c2"}`+"\n")); err != nil {
		t.Fatal(err)
	}
	if found := filesHolding(t, root, "+44 7700 900123"); len(found) > 0 {
		t.Errorf("replaced content still in %v", found)
	}
	if found := filesHolding(t, root, `"c2"`); len(found) != 1 {
		t.Errorf("new content in %d files, want 1", len(found))
	}
}

// A temp file left by a crash mid-write may hold a copy of data deleted
// since; Purge (and EnsureBucket) remove it. A live writer's temp file, which
// it holds locked, stays whatever its age, and so does one created a moment
// ago, which its writer may not have locked yet.
func TestDiskObjectsPurgeRemovesAbandonedTempFiles(t *testing.T) {
	if !renameOpen {
		t.Skip("no advisory locks here: abandoned temp files go by age only")
	}
	root := t.TempDir()
	o := New(root)
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	tmpDir := filepath.Join(root, diskTempDir)
	old := time.Now().Add(-time.Hour)
	abandonedTemp := filepath.Join(tmpDir, "obj-crashed")
	if err := os.WriteFile(abandonedTemp, []byte("Crashed Write Person"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(abandonedTemp, old, old); err != nil {
		t.Fatal(err)
	}
	young := filepath.Join(tmpDir, "obj-young")
	if err := os.WriteFile(young, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A write in progress, its temp file made to look old.
	r := &blockingReader{first: []byte("in progress"), reached: make(chan struct{}), release: make(chan struct{}), ctx: t.Context()}
	reached := r.reached
	done := make(chan error, 1)
	go func() { done <- o.Put(t.Context(), "bkt", "k", r) }()
	<-reached
	entries, err := os.ReadDir(tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == filepath.Base(young) {
			continue
		}
		if err := os.Chtimes(filepath.Join(tmpDir, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}

	st, err := o.Purge(t.Context(), "bkt")
	if err != nil || st.Store != "disk" || st.PurgedAt.IsZero() || !st.PurgeBy.IsZero() {
		t.Fatalf("Purge = %+v, %v; want a purged disk state", st, err)
	}
	if _, err := os.Stat(abandonedTemp); err == nil {
		t.Error("Purge left a temp file no writer holds")
	}
	if found := filesHolding(t, root, "Crashed Write Person"); len(found) > 0 {
		t.Errorf("abandoned temp content still in %v", found)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("Purge removed a temp file created a moment ago: %v", err)
	}
	close(r.release)
	if err := <-done; err != nil {
		t.Fatalf("Put whose temp file Purge saw: %v", err)
	}
	storetest.ExpectObject(t, o, "bkt", "k", "in progress")

	// EnsureBucket clears them too, as on every start.
	if err := os.WriteFile(abandonedTemp, []byte("again"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(abandonedTemp, old, old); err != nil {
		t.Fatal(err)
	}
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abandonedTemp); err == nil {
		t.Error("EnsureBucket left a temp file no writer holds")
	}
}

func TestDiskObjectsPurgeOfMissingBucket(t *testing.T) {
	o := New(t.TempDir())
	if _, err := o.Purge(t.Context(), "nope"); err == nil {
		t.Error("Purge of a bucket that does not exist succeeded")
	}
}
