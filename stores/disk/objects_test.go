package disk

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

func TestDiskObjectsContract(t *testing.T) {
	storetest.TestObjects(t, func(t *testing.T) stores.Objects { return New(t.TempDir()) })
}

func TestDiskObjectsRejectsUnsafeKeys(t *testing.T) {
	root := t.TempDir()
	o := New(filepath.Join(root, "objects"))
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		"", "/etc/passwd", "../outside", "a/../../outside", "a/..", "..", ".", "./a", "a/./b",
		"a//b", "a/", "/", "a\x00b", `a\b`, `..\outside`, strings.Repeat("x", 256), strings.Repeat("a/", 600) + "b",
		"\xff\xfe",
	}
	for _, k := range bad {
		checks := map[string]error{
			"Put":     o.Put(t.Context(), "bkt", k, strings.NewReader("x")),
			"Replace": o.Replace(t.Context(), "bkt", k, strings.NewReader("x")),
			"Delete":  o.Delete(t.Context(), "bkt", k),
		}
		_, checks["Get"] = o.Get(t.Context(), "bkt", k)
		_, checks["Versions"] = o.Versions(t.Context(), "bkt", k)
		for op, err := range checks {
			if !errors.Is(err, stores.ErrPermanent) {
				t.Errorf("%s(%q): err = %v, want permanent", op, k, err)
			}
		}
	}
	for _, p := range []string{"/abs", "../x", "a/../b", "a//b", "\x00"} {
		if err := o.List(t.Context(), "bkt", p, func(string) error { return nil }); !errors.Is(err, stores.ErrPermanent) {
			t.Errorf("List(%q): err = %v, want permanent", p, err)
		}
	}
	for _, b := range []string{"../x", "Bkt", ".tmp", "a", ""} {
		if err := o.EnsureBucket(t.Context(), b); !errors.Is(err, stores.ErrPermanent) {
			t.Errorf("EnsureBucket(%q): err = %v, want permanent", b, err)
		}
	}
	// Nothing was written outside the bucket.
	if got := filesUnder(t, root); len(got) != 0 {
		t.Errorf("files created: %q", got)
	}
}

func TestDiskObjectsDeletePrunesEmptyDirectories(t *testing.T) {
	root := t.TempDir()
	o := New(root)
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	storetest.MustPutObject(t, o, "bkt", "a/b/c/one", "1")
	storetest.MustPutObject(t, o, "bkt", "a/two", "2")
	if err := o.Delete(t.Context(), "bkt", "a/b/c/one"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bkt", "a", "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a/b should be pruned: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "bkt", "a", "two")); err != nil {
		t.Errorf("a/two should remain: %v", err)
	}
	if err := o.Delete(t.Context(), "bkt", "a/two"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "bkt"))
	if err != nil || len(entries) != 0 {
		t.Errorf("bucket root after deleting everything: %v, %v; want it present and empty", entries, err)
	}
	// A key naming a directory of objects is not an object.
	storetest.MustPutObject(t, o, "bkt", "d/x", "x")
	if err := o.Delete(t.Context(), "bkt", "d"); err != nil {
		t.Fatal(err)
	}
	storetest.ExpectObject(t, o, "bkt", "d/x", "x")
	if v := storetest.MustVersions(t, o, "bkt", "d"); v != 0 {
		t.Errorf("Versions of a directory = %d, want 0", v)
	}
}

func TestDiskObjectsDeleteBatchPrunesEmptyDirectories(t *testing.T) {
	root := t.TempDir()
	o := New(root)
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range []string{"a/b/c/1", "a/b/c/2", "a/b/3", "a/d/4", "e/5", "f"} {
		storetest.MustPutObject(t, o, "bkt", k, k)
		keys = append(keys, k)
	}
	storetest.MustPutObject(t, o, "bkt", "a/keep", "k")
	// A directory emptied some other way (say a crash after its file
	// went) is pruned when a key under it is deleted, though nothing is.
	if err := os.MkdirAll(filepath.Join(root, "bkt", "g", "h"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := o.Delete(t.Context(), "bkt", append(keys, "g/h/gone")...); err != nil {
		t.Fatal(err)
	}
	if got := filesUnder(t, filepath.Join(root, "bkt")); !slices.Equal(got, []string{"a/keep"}) {
		t.Errorf("files left: %q, want [a/keep]", got)
	}
	var dirs []string
	filepath.WalkDir(filepath.Join(root, "bkt"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return err
	})
	if want := []string{"bkt", "bkt/a"}; !slices.Equal(dirs, want) {
		t.Errorf("directories left: %q, want %q", dirs, want)
	}
}

// cancelAfter is a context whose Err reports cancellation after n calls, to
// stop a batch part-way at a known point.
type cancelAfter struct {
	context.Context
	n int
}

func (c *cancelAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

func TestDiskObjectsDeleteStoppedPartWayLeavesNoEmptyDirectory(t *testing.T) {
	root := t.TempDir()
	o := New(root)
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	keys := []string{"a/1/x", "b/2/y", "c/3/z"}
	for _, k := range keys {
		storetest.MustPutObject(t, o, "bkt", k, k)
	}
	// One check before the batch and one per key: the first key goes.
	ctx := &cancelAfter{Context: t.Context(), n: 2}
	if err := o.Delete(ctx, "bkt", keys...); !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete: err = %v, want context.Canceled", err)
	}
	if got := filesUnder(t, filepath.Join(root, "bkt")); !slices.Equal(got, []string{"b/2/y", "c/3/z"}) {
		t.Errorf("files left: %q, want the two keys after the first", got)
	}
	if _, err := os.Stat(filepath.Join(root, "bkt", "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory of the deleted key: %v, want it pruned", err)
	}
	// Stopped before any key: nothing goes.
	if err := o.Delete(&cancelAfter{Context: t.Context(), n: 0}, "bkt", keys...); !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete: err = %v, want context.Canceled", err)
	}
	if got := filesUnder(t, filepath.Join(root, "bkt")); len(got) != 2 {
		t.Errorf("files left: %q, want 2", got)
	}
}

func TestDiskObjectsKeyConflicts(t *testing.T) {
	o := New(t.TempDir())
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	storetest.MustPutObject(t, o, "bkt", "a", "file")
	storetest.MustPutObject(t, o, "bkt", "d/x", "nested")
	if err := o.Put(t.Context(), "bkt", "a/b", strings.NewReader("x")); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("Put under an object: err = %v, want permanent", err)
	}
	if err := o.Put(t.Context(), "bkt", "d", strings.NewReader("x")); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("Put over a prefix: err = %v, want permanent", err)
	}
	storetest.ExpectObject(t, o, "bkt", "a", "file")
	storetest.ExpectObject(t, o, "bkt", "d/x", "nested")
}

// blockingReader returns its first part, then waits for release before EOF.
type blockingReader struct {
	first   []byte
	reached chan struct{}
	release chan struct{}
	ctx     context.Context
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.first) > 0 {
		n := copy(p, r.first)
		r.first = r.first[n:]
		return n, nil
	}
	if r.reached != nil {
		close(r.reached)
		r.reached = nil
	}
	select {
	case <-r.release:
		return 0, io.EOF
	case <-r.ctx.Done():
		return 0, r.ctx.Err()
	}
}

func TestDiskObjectsWriteIsAtomic(t *testing.T) {
	root := t.TempDir()
	o := New(root)
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	storetest.MustPutObject(t, o, "bkt", "k", "old")
	r := &blockingReader{first: []byte("new content"), reached: make(chan struct{}), release: make(chan struct{}), ctx: t.Context()}
	reached := r.reached
	done := make(chan error, 1)
	go func() { done <- o.Replace(t.Context(), "bkt", "k", r) }()
	<-reached
	// Half-written: readers still see the old content, and List nothing new.
	storetest.ExpectObject(t, o, "bkt", "k", "old")
	if got := storetest.ListKeys(t, o, "bkt", ""); !slices.Equal(got, []string{"k"}) {
		t.Errorf("List during write = %q", got)
	}
	close(r.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	storetest.ExpectObject(t, o, "bkt", "k", "new content")
	if tmp, _ := os.ReadDir(filepath.Join(root, diskTempDir)); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestDiskObjectsCancelledPutLeavesNothing(t *testing.T) {
	root := t.TempDir()
	o := New(root)
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &blockingReader{first: []byte("partial"), reached: make(chan struct{}), release: make(chan struct{}), ctx: ctx}
	reached := r.reached
	done := make(chan error, 1)
	go func() { done <- o.Put(ctx, "bkt", "k", r) }()
	<-reached
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Put after cancel: err = %v, want context.Canceled", err)
	}
	if v := storetest.MustVersions(t, o, "bkt", "k"); v != 0 {
		t.Errorf("Versions after a cancelled Put = %d, want 0", v)
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, diskTempDir)); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestDiskObjectsListSkipsSymlinks(t *testing.T) {
	root := t.TempDir()
	o := New(filepath.Join(root, "objects"))
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(root, "outside")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600)
	if err := os.Symlink(outside, filepath.Join(root, "objects", "bkt", "link")); err != nil {
		t.Skip("symlinks unsupported:", err)
	}
	storetest.MustPutObject(t, o, "bkt", "real", "r")
	if got := storetest.ListKeys(t, o, "bkt", ""); !slices.Equal(got, []string{"real"}) {
		t.Errorf("List = %q, want only the real object", got)
	}
}

func TestDiskObjectsListPrunedSkipsRefusedDirectories(t *testing.T) {
	o := New(filepath.Join(t.TempDir(), "objects"))
	if err := o.EnsureBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"d/a/1", "d/a/x/2", "d/b/1", "d/b/x/2", "d/c_1", "e/a/1"} {
		storetest.MustPutObject(t, o, "bkt", k, "v")
	}
	var asked []string
	var got []string
	err := o.ListPruned(t.Context(), "bkt", "d/", func(dir string) bool {
		asked = append(asked, dir)
		return dir != "d/b/"
	}, func(k string) error { got = append(got, k); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"d/a/1", "d/a/x/2", "d/c_1"}; !slices.Equal(got, want) {
		t.Errorf("ListPruned = %q, want %q", got, want)
	}
	// Nothing under a refused directory is asked about: it is not read.
	if want := []string{"d/a/", "d/a/x/", "d/b/"}; !slices.Equal(asked, want) {
		t.Errorf("directories asked about = %q, want %q", asked, want)
	}
	if got, want := storetest.ListKeys(t, o, "bkt", "d/"), []string{"d/a/1", "d/a/x/2", "d/b/1", "d/b/x/2", "d/c_1"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
}

// filesUnder lists regular files under dir, relative and slash-separated.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

func FuzzDiskObjectsKey(f *testing.F) {
	for _, s := range []string{
		"../../etc/passwd", "..", ".", "/abs", "a//b", "a/./b", `..\x`, "a\x00b", "%", "_", "*", "' OR 1=1 --",
		"keep", "s/one", "s", "s/", "../bkt2/keep", "rec/c1_1.wav",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		root := t.TempDir()
		o := New(filepath.Join(root, "objects"))
		ctx := t.Context()

		// The mapping never leaves the bucket directory.
		if dir, path, err := o.objectPath("bkt", key); err == nil {
			if !within(dir, path) {
				t.Fatalf("key %q maps to %q, outside %q", key, path, dir)
			}
		} else if !errors.Is(err, stores.ErrPermanent) {
			t.Fatalf("key %q: unclassified error %v", key, err)
		}

		for _, b := range []string{"bkt", "bkt2"} {
			if err := o.EnsureBucket(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		sentinels := map[string]string{"bkt/keep": "k", "bkt/s/one": "1", "bkt2/keep": "k2"}
		for bk, v := range sentinels {
			b, k, _ := strings.Cut(bk, "/")
			storetest.MustPutObject(t, o, b, k, v)
		}
		if err := os.WriteFile(filepath.Join(root, "outside"), []byte("o"), 0o600); err != nil {
			t.Fatal(err)
		}
		want := []string{"objects/bkt/keep", "objects/bkt/s/one", "objects/bkt2/keep", "outside"}

		isSentinel := sentinels["bkt/"+key] != ""
		if !isSentinel {
			if err := o.Put(ctx, "bkt", key, strings.NewReader("fuzz")); err == nil {
				got := filesUnder(t, root)
				exp := append(slices.Clone(want), "objects/bkt/"+key)
				sort.Strings(exp)
				if !slices.Equal(got, exp) {
					t.Fatalf("Put(%q) wrote %q, want %q", key, got, exp)
				}
				if keys := storetest.ListKeys(t, o, "bkt", key); !slices.Contains(keys, key) {
					t.Fatalf("List(%q) = %q, missing the key", key, keys)
				}
				storetest.ExpectObject(t, o, "bkt", key, "fuzz")
			} else if !errors.Is(err, stores.ErrPermanent) {
				t.Fatalf("Put(%q): unclassified error %v", key, err)
			}
			if err := o.Delete(ctx, "bkt", key); err != nil && !errors.Is(err, stores.ErrPermanent) {
				t.Fatalf("Delete(%q): unclassified error %v", key, err)
			}
			if v, err := o.Versions(ctx, "bkt", key); err == nil && v != 0 {
				t.Fatalf("Versions(%q) after Delete = %d", key, v)
			}
		} else if err := o.Delete(ctx, "bkt", key); err != nil {
			t.Fatalf("Delete(%q): %v", key, err)
		} else {
			want = slices.DeleteFunc(want, func(s string) bool { return s == "objects/bkt/"+key })
		}
		if got := filesUnder(t, root); !slices.Equal(got, want) {
			t.Fatalf("after Delete(%q): files %q, want %q", key, got, want)
		}
	})
}

func FuzzDiskObjectsListPrefix(f *testing.F) {
	for _, s := range []string{"", "a", "a/", "a/b", "../", "..", "/", "%", "*", "a/../..", "a-", "a0", "a/c/"} {
		f.Add(s)
	}
	root := f.TempDir()
	o := New(root)
	if err := o.EnsureBucket(context.Background(), "bkt"); err != nil {
		f.Fatal(err)
	}
	if err := o.EnsureBucket(context.Background(), "bkt2"); err != nil {
		f.Fatal(err)
	}
	keys := []string{"a/b", "a/c/d", "a-c", "a.b", "a0", "ab", "%", "_x", "b/x_1"}
	for _, k := range keys {
		if err := o.Put(context.Background(), "bkt", k, strings.NewReader(k)); err != nil {
			f.Fatal(err)
		}
	}
	if err := o.Put(context.Background(), "bkt2", "a/secret", strings.NewReader("s")); err != nil {
		f.Fatal(err)
	}
	sorted := slices.Clone(keys)
	sort.Strings(sorted)
	f.Fuzz(func(t *testing.T, prefix string) {
		var got []string
		err := o.List(t.Context(), "bkt", prefix, func(k string) error {
			got = append(got, k)
			return nil
		})
		if err != nil {
			if !errors.Is(err, stores.ErrPermanent) {
				t.Fatalf("List(%q): unclassified error %v", prefix, err)
			}
			return
		}
		var want []string
		for _, k := range sorted {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
		}
	})
}
