package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// TestObjects checks an Objects implementation through the interface
// only. newObjects returns a ready store; every subtest uses its own freshly
// named bucket.
func TestObjects(t *testing.T, newObjects func(t *testing.T) stores.Objects) {
	t.Run("EnsureBucketIsIdempotent", func(t *testing.T) {
		o, bucket := newObjects(t), uniqueBucket()
		for range 2 {
			if err := o.EnsureBucket(t.Context(), bucket); err != nil {
				t.Fatalf("EnsureBucket: %v", err)
			}
		}
	})

	t.Run("PutGet", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		MustPutObject(t, o, bucket, "connect/inst/CallRecordings/2025/03/01/c1_rec.wav", "audio bytes")
		MustPutObject(t, o, bucket, "empty", "")
		ExpectObject(t, o, bucket, "connect/inst/CallRecordings/2025/03/01/c1_rec.wav", "audio bytes")
		ExpectObject(t, o, bucket, "empty", "")
		MustPutObject(t, o, bucket, "empty", "now not")
		ExpectObject(t, o, bucket, "empty", "now not")
	})

	t.Run("GetMissingIsNotFound", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		if _, err := o.Get(t.Context(), bucket, "no/such/key"); !errors.Is(err, stores.ErrNotFound) {
			t.Fatalf("Get of a missing key: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("DeleteAndVerify", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		key, other := "a/b/c1_rec.wav", "a/b/c2_rec.wav"
		MustPutObject(t, o, bucket, key, "one")
		MustPutObject(t, o, bucket, other, "two")
		if v := MustVersions(t, o, bucket, key); v < 1 {
			t.Fatalf("Versions before delete = %d, want at least 1", v)
		}
		if err := o.Delete(t.Context(), bucket, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if v := MustVersions(t, o, bucket, key); v != 0 {
			t.Fatalf("Versions after delete = %d, want 0", v)
		}
		if _, err := o.Get(t.Context(), bucket, key); !errors.Is(err, stores.ErrNotFound) {
			t.Fatalf("Get after delete: err = %v, want ErrNotFound", err)
		}
		if got := ListKeys(t, o, bucket, ""); !slices.Equal(got, []string{other}) {
			t.Fatalf("List after delete = %q, want [%s]", got, other)
		}
		ExpectObject(t, o, bucket, other, "two")
	})

	t.Run("DeletingWhatIsGoneSucceeds", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		MustPutObject(t, o, bucket, "k", "v")
		for i := range 3 {
			if err := o.Delete(t.Context(), bucket, "k"); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		if err := o.Delete(t.Context(), bucket, "never/was/here"); err != nil {
			t.Fatalf("Delete of a key never written: %v", err)
		}
		if v := MustVersions(t, o, bucket, "never/was/here"); v != 0 {
			t.Fatalf("Versions of a key never written = %d, want 0", v)
		}
	})

	t.Run("ListInKeyOrderUnderPrefix", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		// Byte order puts "a-c" (0x2d) and "a.b" (0x2e) before "a/…" (0x2f)
		// and "a0" (0x30) after it: a store that walks directories naively
		// gets this wrong.
		keys := []string{"a/b", "a/c/d", "a-c", "a.b", "a0", "b/x_1", "b/x_2", "b/y_1", "ab"}
		for _, k := range keys {
			MustPutObject(t, o, bucket, k, k)
		}
		sorted := slices.Clone(keys)
		sort.Strings(sorted)
		tests := []struct {
			prefix string
			want   []string
		}{
			{"", sorted},
			{"a", []string{"a-c", "a.b", "a/b", "a/c/d", "a0", "ab"}},
			{"a/", []string{"a/b", "a/c/d"}},
			{"a/c", []string{"a/c/d"}},
			{"b/x_", []string{"b/x_1", "b/x_2"}},
			{"b/x", []string{"b/x_1", "b/x_2"}},
			{"b/z", nil},
			{"zzz/", nil},
		}
		for _, tc := range tests {
			if got := ListKeys(t, o, bucket, tc.prefix); !slices.Equal(got, tc.want) {
				t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		}
	})

	t.Run("ListPast1000Objects", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		var want []string
		for i := range 1050 {
			want = append(want, fmt.Sprintf("many/%04d/obj", i))
		}
		putObjectsParallel(t, o, bucket, want)
		MustPutObject(t, o, bucket, "manz", "outside the prefix")
		MustPutObject(t, o, bucket, "man", "outside the prefix")
		if got := ListKeys(t, o, bucket, "many/"); !slices.Equal(got, want) {
			t.Fatalf("List returned %d keys (First %q), want %d in order", len(got), First(got), len(want))
		}
		if got := ListKeys(t, o, bucket, "many"); !slices.Equal(got, want) {
			t.Fatalf("List(many) returned %d keys, want %d", len(got), len(want))
		}
	})

	t.Run("ListStopsAtCallbackError", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		for _, k := range []string{"k1", "k2", "k3"} {
			MustPutObject(t, o, bucket, k, k)
		}
		stop := errors.New("stop")
		var seen []string
		err := o.List(t.Context(), bucket, "", func(key string) error {
			seen = append(seen, key)
			if key == "k2" {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || !slices.Equal(seen, []string{"k1", "k2"}) {
			t.Fatalf("List = %v after %q, want the callback's error after [k1 k2]", err, seen)
		}
	})

	t.Run("NoKeyWidensADelete", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		id := "3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f"
		keys := []string{
			"rec/" + id + "_1.wav", "rec/" + id + "_2.wav", "rec/other_1.wav",
			"a", "ab", "dir/b", "%", "_x",
		}
		for _, k := range keys {
			MustPutObject(t, o, bucket, k, "content of "+k)
		}
		before := snapshotObjects(t, o, bucket, keys)
		hostile := []string{
			"", "*", "%%", "?", "a*", "rec/*", "rec/", "rec", "rec/" + id, "rec/" + id + "_",
			"rec/" + id + "_*", "rec/" + id + "_1.wa", "rec/" + id + "_1.wav ", "REC/" + id + "_1.wav",
			"/rec/" + id + "_1.wav", "rec//" + id + "_1.wav", "./rec/" + id + "_1.wav",
			"rec/../rec/" + id + "_1.wav", "../" + bucket + "/a", "a/", "dir", "dir/", "dir/b/", "dir/*", "\x00", "' OR 1=1 --",
		}
		for _, k := range hostile {
			_ = o.Delete(t.Context(), bucket, k) // an error is fine; deleting anything else is not
			if v, err := o.Versions(t.Context(), bucket, k); err == nil && v != 0 && !slices.Contains(keys, k) {
				t.Errorf("Versions(%q) = %d for a key never written", k, v)
			}
		}
		expectObjectsUnchanged(t, o, bucket, before)
	})

	t.Run("ReplaceStreamsLargeBody", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		const size = 9<<20 + 12345 // over 8 MiB, and not a multiple of any buffer size
		key := "datalake/contacts/dt=2025-03-01/part-0000.jsonl"
		MustPutObject(t, o, bucket, key, "original content naming a deleted contact")
		if err := o.Replace(t.Context(), bucket, key, newPatternReader(1, size)); err != nil {
			t.Fatalf("Replace: %v", err)
		}
		rc, err := o.Get(t.Context(), bucket, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		defer rc.Close()
		got := sha256.New()
		n, err := io.Copy(got, rc)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		want := sha256.New()
		io.Copy(want, newPatternReader(1, size))
		if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			t.Fatalf("content after Replace: %d bytes, hash mismatch=%v; want %d bytes", n, !bytes.Equal(got.Sum(nil), want.Sum(nil)), size)
		}
		if v := MustVersions(t, o, bucket, key); v != 1 {
			t.Fatalf("Versions after Replace = %d, want 1 (older content gone)", v)
		}
	})

	t.Run("ReplaceLeavesOnlyNewContent", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		MustPutObject(t, o, bucket, "f", "v1")
		MustPutObject(t, o, bucket, "f", "v2")
		if err := o.Replace(t.Context(), bucket, "f", strings.NewReader("v3")); err != nil {
			t.Fatalf("Replace: %v", err)
		}
		ExpectObject(t, o, bucket, "f", "v3")
		if v := MustVersions(t, o, bucket, "f"); v != 1 {
			t.Fatalf("Versions after Replace = %d, want 1", v)
		}
		if err := o.Delete(t.Context(), bucket, "f"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if v := MustVersions(t, o, bucket, "f"); v != 0 {
			t.Fatalf("Versions after Delete = %d, want 0", v)
		}
		if got := ListKeys(t, o, bucket, ""); len(got) != 0 {
			t.Fatalf("List after Delete = %q, want nothing", got)
		}
	})

	t.Run("MissingBucketIsAnError", func(t *testing.T) {
		// A misspelt bucket in the data map must fail the step, not verify
		// as "nothing left".
		o, bucket := newObjects(t), uniqueBucket()
		if err := o.Put(t.Context(), bucket, "k", strings.NewReader("v")); err == nil {
			t.Error("Put to a missing bucket: want an error")
		}
		if err := o.List(t.Context(), bucket, "", func(string) error { return nil }); err == nil {
			t.Error("List of a missing bucket: want an error")
		}
		if err := o.Delete(t.Context(), bucket, "k"); err == nil {
			t.Error("Delete in a missing bucket: want an error")
		}
		if _, err := o.Versions(t.Context(), bucket, "k"); err == nil {
			t.Error("Versions in a missing bucket: want an error")
		}
	})

	t.Run("Batch", func(t *testing.T) { testObjectsBatch(t, newObjects) })
	t.Run("Inspection", func(t *testing.T) { testObjectsInspection(t, newObjects) })
	t.Run("Conditional", func(t *testing.T) { testConditional(t, newObjects) })
	t.Run("Purge", func(t *testing.T) { testObjectsPurge(t, newObjects) })
}

// testObjectsBatch checks Delete over many keys: every version of each key
// goes, keys that are not there are fine, and nothing else is touched.
func testObjectsBatch(t *testing.T, newObjects func(t *testing.T) stores.Objects) {
	t.Run("ManyKeysLeaveNoVersion", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		const n = 1500
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("rec/%03d/c%04d_rec.wav", i/10, i)
		}
		// Two versions of every key and a third of every tenth, on a
		// store that keeps versions.
		putObjectsParallel(t, o, bucket, keys)
		putObjectsParallel(t, o, bucket, keys)
		var third []string
		for i := 0; i < n; i += 10 {
			third = append(third, keys[i])
		}
		putObjectsParallel(t, o, bucket, third)
		keep := []string{
			keys[0] + "0", keys[n-1][:len(keys[n-1])-1], // near misses
			"rec/000/keep", // beside deleted keys
			fmt.Sprintf("rec/%03d/c%04d_rec.wav", n/10, n), // past the end
		}
		for _, k := range keep {
			MustPutObject(t, o, bucket, k, "keep "+k)
		}
		before := snapshotObjects(t, o, bucket, keep)
		if v := MustVersions(t, o, bucket, keys[0]); v < 1 {
			t.Fatalf("Versions before delete = %d, want at least 1", v)
		}
		// Keys never written and repeated keys change nothing.
		batch := append(slices.Clone(keys), "rec/never/written", "never")
		batch = append(batch, keys[:300]...)
		if err := o.Delete(t.Context(), bucket, batch...); err != nil {
			t.Fatalf("Delete(%d keys): %v", len(batch), err)
		}
		// List names every key with anything left, old versions and delete
		// markers included, so this covers every key of the batch.
		expectObjectsUnchanged(t, o, bucket, before)
		for i := 0; i < n; i += 100 {
			if v := MustVersions(t, o, bucket, keys[i]); v != 0 {
				t.Errorf("Versions(%q) after delete = %d, want 0", keys[i], v)
			}
		}
		if v := MustVersions(t, o, bucket, keys[n-1]); v != 0 {
			t.Errorf("Versions(%q) after delete = %d, want 0", keys[n-1], v)
		}
	})

	t.Run("KeysNotThere", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		if err := o.Delete(t.Context(), bucket, "never/1", "never/2", "never/1"); err != nil {
			t.Fatalf("Delete of keys never written: %v", err)
		}
		for _, k := range []string{"a", "d/x", "gone", "keep"} {
			MustPutObject(t, o, bucket, k, "content of "+k)
		}
		before := snapshotObjects(t, o, bucket, []string{"a", "d/x", "keep"})
		// "a/b" is under an object and "d" is a prefix of one: neither is
		// an object, and deleting them must leave "a" and "d/x" alone.
		if err := o.Delete(t.Context(), bucket, "a/b", "missing", "gone", "d", "gone", "d/x/y"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if v := MustVersions(t, o, bucket, "gone"); v != 0 {
			t.Fatalf("Versions(gone) = %d, want 0", v)
		}
		expectObjectsUnchanged(t, o, bucket, before)
	})

	t.Run("BadKeyDeletesNothing", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		keys := []string{"k1", "k2", "dir/k3"}
		for _, k := range keys {
			MustPutObject(t, o, bucket, k, "content of "+k)
		}
		before := snapshotObjects(t, o, bucket, keys)
		// The empty key comes after more keys than a store deletes in one
		// call, so a store checking call by call would delete first.
		long := slices.Clone(keys)
		for i := len(long); i < 1100; i++ {
			long = append(long, fmt.Sprintf("absent/%04d", i))
		}
		for name, batch := range map[string][]string{
			"an empty key":       {""},
			"an empty key too":   {"k1", ""},
			"an empty key last":  append(slices.Clone(long), ""),
			"an empty key first": append([]string{""}, long...),
		} {
			if err := o.Delete(t.Context(), bucket, batch...); !errors.Is(err, stores.ErrPermanent) {
				t.Errorf("Delete with %s: err = %v, want a permanent error", name, err)
			}
		}
		// Whether no keys at all is an error is the store's choice; it
		// deletes nothing either way.
		_ = o.Delete(t.Context(), bucket)
		expectObjectsUnchanged(t, o, bucket, before)
	})
}

// patternReader yields n deterministic pseudo-random bytes without holding
// them, so a test can stream more than fits comfortably in memory.
type patternReader struct {
	state     uint64
	remaining int64
}

func newPatternReader(seed uint64, n int64) *patternReader {
	return &patternReader{state: seed*0x9E3779B97F4A7C15 + 1, remaining: n}
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.remaining <= 0 {
		return 0, io.EOF
	}
	// Odd-sized reads exercise the writer's buffering.
	p = p[:min(int64(len(p)), r.remaining, 7919)]
	for i := range p {
		r.state ^= r.state << 13
		r.state ^= r.state >> 7
		r.state ^= r.state << 17
		p[i] = byte(r.state)
	}
	r.remaining -= int64(len(p))
	return len(p), nil
}

func uniqueBucket() string { return strings.ReplaceAll(UniqueName("contract"), "_", "-") }

func setupBucket(t *testing.T, newObjects func(t *testing.T) stores.Objects) (stores.Objects, string) {
	t.Helper()
	o, bucket := newObjects(t), uniqueBucket()
	if err := o.EnsureBucket(t.Context(), bucket); err != nil {
		t.Fatalf("EnsureBucket: %v", err)
	}
	return o, bucket
}

func MustPutObject(t *testing.T, o stores.Objects, bucket, key, content string) {
	t.Helper()
	if err := o.Put(t.Context(), bucket, key, strings.NewReader(content)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func putObjectsParallel(t *testing.T, o stores.Objects, bucket string, keys []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	sem := make(chan struct{}, 16)
	for _, k := range keys {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := o.Put(t.Context(), bucket, k, strings.NewReader(k)); err != nil {
				errs <- fmt.Errorf("Put(%q): %w", k, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func readObject(t *testing.T, o stores.Objects, bucket, key string) (string, error) {
	t.Helper()
	rc, err := o.Get(t.Context(), bucket, key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

func ExpectObject(t *testing.T, o stores.Objects, bucket, key, want string) {
	t.Helper()
	got, err := readObject(t, o, bucket, key)
	if err != nil || got != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, want)
	}
}

func MustVersions(t *testing.T, o stores.Objects, bucket, key string) int {
	t.Helper()
	v, err := o.Versions(t.Context(), bucket, key)
	if err != nil {
		t.Fatalf("Versions(%q): %v", key, err)
	}
	return v
}

func ListKeys(t *testing.T, o stores.Objects, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	if err := o.List(t.Context(), bucket, prefix, func(k string) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func snapshotObjects(t *testing.T, o stores.Objects, bucket string, keys []string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	for _, k := range keys {
		v, err := readObject(t, o, bucket, k)
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		snap[k] = v
	}
	return snap
}

func expectObjectsUnchanged(t *testing.T, o stores.Objects, bucket string, before map[string]string) {
	t.Helper()
	for k, want := range before {
		got, err := readObject(t, o, bucket, k)
		if err != nil || got != want {
			t.Errorf("object %q = %q, %v; want it untouched (%q)", k, got, err, want)
		}
	}
	var want []string
	for k := range before {
		want = append(want, k)
	}
	sort.Strings(want)
	if got := ListKeys(t, o, bucket, ""); !slices.Equal(got, want) {
		extra := slices.DeleteFunc(slices.Clone(got), func(k string) bool { return slices.Contains(want, k) })
		missing := slices.DeleteFunc(slices.Clone(want), func(k string) bool { return slices.Contains(got, k) })
		t.Errorf("List = %d keys, want exactly %q: %d more (%q…), %d missing (%q)",
			len(got), want, len(extra), extra[:min(len(extra), 5)], len(missing), missing)
	}
}

func First(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
