package storetest

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// testConditional checks the operations a rewrite of a shared file runs
// on: a snapshot of the versions, reads by version, a write on condition
// that nothing changed since the read, and deletes of named versions only.
func testConditional(t *testing.T, newObjects func(t *testing.T) stores.Objects) {
	t.Run("ListAndGetVersions", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		if vs := MustListVersions(t, o, bucket, "f"); len(vs) != 0 {
			t.Fatalf("ListVersions of a key never written = %+v, want none", vs)
		}
		MustPutObject(t, o, bucket, "f", "first")
		v1 := CurrentVersion(t, o, bucket, "f")
		if v1.ID == "" || v1.ETag == "" || v1.DeleteMarker {
			t.Fatalf("current version %+v: want an ID and an ETag", v1)
		}
		ExpectVersion(t, o, bucket, "f", v1.ID, "first")
		MustPutObject(t, o, bucket, "f", "second, longer")
		v2 := CurrentVersion(t, o, bucket, "f")
		if v2.ID == v1.ID || v2.ETag == v1.ETag {
			t.Fatalf("a new write kept the version %+v", v2)
		}
		ExpectVersion(t, o, bucket, "f", v2.ID, "second, longer")
		// A replaced version is an older version (S3) or gone (disk).
		if got, err := readVersion(t, o, bucket, "f", v1.ID); err == nil && got != "first" {
			t.Errorf("old version reads %q, want %q or ErrNotFound", got, "first")
		} else if err != nil && !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("GetVersion of a replaced version: %v, want its content or ErrNotFound", err)
		}
	})

	t.Run("ReplaceIfUnchanged", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		MustPutObject(t, o, bucket, "d/f", "old content")
		read := CurrentVersion(t, o, bucket, "d/f")
		v, err := o.ReplaceIf(t.Context(), bucket, "d/f", read.ETag, strings.NewReader("new content"))
		if err != nil {
			t.Fatalf("ReplaceIf with the current ETag: %v", err)
		}
		ExpectObject(t, o, bucket, "d/f", "new content")
		if cur := CurrentVersion(t, o, bucket, "d/f"); cur.ID != v.ID {
			t.Errorf("current version %q, ReplaceIf returned %q", cur.ID, v.ID)
		}
		if err := o.DeleteVersions(t.Context(), bucket, "d/f", []string{read.ID}); err != nil {
			t.Fatalf("DeleteVersions of the version read: %v", err)
		}
		ExpectObject(t, o, bucket, "d/f", "new content")
		if n := MustVersions(t, o, bucket, "d/f"); n != 1 {
			t.Errorf("Versions = %d after replacing and deleting the version read, want 1", n)
		}
	})

	// The case the conditional operations exist for: another writer (an ETL
	// job) stores a new version between the read and the write. Its version
	// survives the erasure, and the contact's records go from all of them.
	t.Run("ConcurrentWriterSurvives", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		const key = "datalake/part-0001.jsonl"
		contact := `{"contact_id":"the-erased-contact"}` + "\n"
		kept := `{"contact_id":"someone-else"}` + "\n"
		etl := `{"contact_id":"written-by-the-etl-job"}` + "\n"
		MustPutObject(t, o, bucket, key, kept+contact)

		read := CurrentVersion(t, o, bucket, key)
		ExpectVersion(t, o, bucket, key, read.ID, kept+contact)
		MustPutObject(t, o, bucket, key, kept+contact+etl) // the other writer

		_, err := o.ReplaceIf(t.Context(), bucket, key, read.ETag, strings.NewReader(kept))
		if !errors.Is(err, stores.ErrConflict) || !stores.IsRetryable(err) {
			t.Fatalf("ReplaceIf after another write: %v, want a retryable ErrConflict", err)
		}
		ExpectObject(t, o, bucket, key, kept+contact+etl)
		if err := o.DeleteVersions(t.Context(), bucket, key, []string{read.ID}); err != nil {
			t.Fatalf("DeleteVersions of the version read: %v", err)
		}
		ExpectObject(t, o, bucket, key, kept+contact+etl)

		// Read again and retry, as the rewrite does.
		var readIDs []string
		for _, v := range MustListVersions(t, o, bucket, key) {
			readIDs = append(readIDs, v.ID)
		}
		again := CurrentVersion(t, o, bucket, key)
		written, err := o.ReplaceIf(t.Context(), bucket, key, again.ETag, strings.NewReader(kept+etl))
		if err != nil {
			t.Fatalf("ReplaceIf after reading again: %v", err)
		}
		var drop []string
		for _, id := range readIDs {
			if id != written.ID {
				drop = append(drop, id)
			}
		}
		if err := o.DeleteVersions(t.Context(), bucket, key, drop); err != nil {
			t.Fatalf("DeleteVersions: %v", err)
		}
		ExpectObject(t, o, bucket, key, kept+etl)
		for _, v := range MustListVersions(t, o, bucket, key) {
			if v.DeleteMarker {
				continue
			}
			if got, err := readVersion(t, o, bucket, key, v.ID); err != nil || strings.Contains(got, "the-erased-contact") {
				t.Errorf("version %s = %q, %v: the erased contact's record is still stored", v.ID, got, err)
			}
		}
	})

	t.Run("ReplaceIfAfterDeleteConflicts", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		MustPutObject(t, o, bucket, "f", "content")
		read := CurrentVersion(t, o, bucket, "f")
		if err := o.Delete(t.Context(), bucket, "f"); err != nil {
			t.Fatal(err)
		}
		if _, err := o.ReplaceIf(t.Context(), bucket, "f", read.ETag, strings.NewReader("resurrected")); !errors.Is(err, stores.ErrConflict) {
			t.Fatalf("ReplaceIf of a deleted object: %v, want ErrConflict", err)
		}
		if _, err := o.Get(t.Context(), bucket, "f"); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Get after a refused ReplaceIf: %v, want ErrNotFound", err)
		}
	})

	t.Run("DeleteVersionsOnlyNamed", func(t *testing.T) {
		o, bucket := setupBucket(t, newObjects)
		MustPutObject(t, o, bucket, "a/f", "one")
		v1 := CurrentVersion(t, o, bucket, "a/f")
		MustPutObject(t, o, bucket, "a/f", "two!")
		MustPutObject(t, o, bucket, "a/g", "neighbour")
		if err := o.DeleteVersions(t.Context(), bucket, "a/f", []string{v1.ID}); err != nil {
			t.Fatalf("DeleteVersions(v1): %v", err)
		}
		ExpectObject(t, o, bucket, "a/f", "two!")
		v2 := CurrentVersion(t, o, bucket, "a/f")
		for range 2 { // deleting what is gone succeeds
			if err := o.DeleteVersions(t.Context(), bucket, "a/f", []string{v1.ID, v2.ID}); err != nil {
				t.Fatalf("DeleteVersions(v1, v2): %v", err)
			}
		}
		if n := MustVersions(t, o, bucket, "a/f"); n != 0 {
			t.Errorf("Versions = %d after deleting every version, want 0", n)
		}
		ExpectObject(t, o, bucket, "a/g", "neighbour")
		if err := o.DeleteVersions(t.Context(), bucket, "never/written", []string{v1.ID}); err != nil {
			t.Errorf("DeleteVersions of a key never written: %v", err)
		}
	})
}

// MustListVersions lists the versions of key or fails the test.
func MustListVersions(t *testing.T, o stores.Objects, bucket, key string) []stores.ObjectVersion {
	t.Helper()
	vs, err := o.ListVersions(t.Context(), bucket, key)
	if err != nil {
		t.Fatalf("ListVersions(%q): %v", key, err)
	}
	return vs
}

// CurrentVersion returns the one current version of key or fails the test.
func CurrentVersion(t *testing.T, o stores.Objects, bucket, key string) stores.ObjectVersion {
	t.Helper()
	var cur []stores.ObjectVersion
	for _, v := range MustListVersions(t, o, bucket, key) {
		if v.Current {
			cur = append(cur, v)
		}
	}
	if len(cur) != 1 || cur[0].DeleteMarker {
		t.Fatalf("current versions of %q = %+v, want exactly one", key, cur)
	}
	return cur[0]
}

func readVersion(t *testing.T, o stores.Objects, bucket, key, id string) (string, error) {
	t.Helper()
	rc, err := o.GetVersion(t.Context(), bucket, key, id)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

// ExpectVersion checks the content of one version of key.
func ExpectVersion(t *testing.T, o stores.Objects, bucket, key, id, want string) {
	t.Helper()
	got, err := readVersion(t, o, bucket, key, id)
	if err != nil || got != want {
		t.Fatalf("GetVersion(%q, %s) = %q, %v; want %q", key, id, got, err, want)
	}
}
