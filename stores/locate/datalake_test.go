package locate_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/disk"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/stores/storetest"
)

const lakeKey = "contacts/dt=2026-03-09/part-00000.jsonl"

// newLake returns a locator over data-lake files on disk and the artefact.
func newLake(t *testing.T, objects stores.Objects) (*locate.Locator, locate.Artefact) {
	t.Helper()
	m, err := locate.DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Find(schemas.ChannelDataWarehouse, "data_lake_records")
	if err := objects.EnsureBucket(t.Context(), a.Bucket); err != nil {
		t.Fatal(err)
	}
	return &locate.Locator{Map: m, Rule: schemas.DefaultContactIDRule, Objects: objects}, a
}

func record(id, queue string) string {
	return `{"contact_id":"` + id + `","queue":"` + queue + `"}` + "\n"
}

// lateWriter stores a new version of the file, as the ETL job would, each
// time the rewrite has opened it, while races remain.
type lateWriter struct {
	stores.Objects
	races   atomic.Int32
	content func(n int32) string
}

func (w *lateWriter) GetVersion(ctx context.Context, bucket, key, id string) (io.ReadCloser, error) {
	rc, err := w.Objects.GetVersion(ctx, bucket, key, id)
	if err != nil || key != lakeKey {
		return rc, err
	}
	if n := w.races.Add(-1); n >= 0 {
		if err := w.Objects.Put(ctx, bucket, key, strings.NewReader(w.content(n))); err != nil {
			rc.Close()
			return nil, err
		}
	}
	return rc, nil
}

// A writer that stores new versions of a data-lake file while it is being
// rewritten loses nothing: the rewrite's conditional write fails, it reads
// again, and the records the writer added are in the final file, the
// contact's are not.
func TestDatalakeRewriteKeepsConcurrentWrites(t *testing.T) {
	objects := disk.New(t.TempDir())
	w := &lateWriter{Objects: objects}
	l, a := newLake(t, w)
	ctx := t.Context()
	storetest.MustPutObject(t, objects, a.Bucket, lakeKey, record(target, "q1")+record(neighbor, "q2"))
	w.content = func(n int32) string {
		return record(target, "q1") + record(neighbor, "q2") + record("etl-"+string(rune('a'+n)), "q3")
	}
	w.races.Store(3)

	res, err := l.Erase(ctx, a, target)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if res.After != 0 || res.Deleted != 1 {
		t.Errorf("Erase = %+v, want 1 deleted, 0 after", res)
	}
	storetest.ExpectObject(t, objects, a.Bucket, lakeKey, record(neighbor, "q2")+record("etl-a", "q3"))
}

// A file whose content never named the contact is not rewritten: its
// version (on disk, the file itself) stays as it was.
func TestDatalakeRewriteSkipsFilesWithoutTheContact(t *testing.T) {
	objects := disk.New(t.TempDir())
	l, a := newLake(t, objects)
	other := "contacts/dt=2026-03-09/part-00001.jsonl"
	storetest.MustPutObject(t, objects, a.Bucket, lakeKey, record(neighbor, "q2"))
	storetest.MustPutObject(t, objects, a.Bucket, other, record(target, "q1")+record(neighbor, "q2"))
	before := storetest.CurrentVersion(t, objects, a.Bucket, lakeKey)

	res, err := l.Erase(t.Context(), a, target)
	if err != nil || res.Before != 1 || res.Deleted != 1 || res.After != 0 {
		t.Fatalf("Erase = %+v, %v; want the one record found and erased", res, err)
	}
	if after := storetest.CurrentVersion(t, objects, a.Bucket, lakeKey); after.ID != before.ID {
		t.Errorf("a file without the contact was rewritten: %s -> %s", before.ID, after.ID)
	}
	storetest.ExpectObject(t, objects, a.Bucket, other, record(neighbor, "q2"))
}

// countingReads counts the versions read.
type countingReads struct {
	stores.Objects
	reads atomic.Int32
}

func (c *countingReads) GetVersion(ctx context.Context, bucket, key, id string) (io.ReadCloser, error) {
	c.reads.Add(1)
	return c.Objects.GetVersion(ctx, bucket, key, id)
}

// A data-lake file version is read once: afterwards a batch none of whose
// contacts it holds skips it, in the delete and in the verification alike.
// A version written by anyone else is read again, so what it holds is found.
func TestDatalakeVersionsKnownNotToHoldTheBatchAreNotRead(t *testing.T) {
	objects := &countingReads{Objects: disk.New(t.TempDir())}
	l, a := newLake(t, objects)
	const unknown1, unknown2 = "1b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b", "2b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"
	storetest.MustPutObject(t, objects, a.Bucket, lakeKey, record(neighbor, "q2")+record(target, "q1"))

	erase := func(id string, wantDeleted int64, wantReads int32) {
		t.Helper()
		objects.reads.Store(0)
		res, err := l.Erase(t.Context(), a, id)
		if err != nil || res.Deleted != wantDeleted || res.After != 0 {
			t.Fatalf("Erase(%s) = %+v, %v; want %d deleted", id, res, err, wantDeleted)
		}
		if n := objects.reads.Load(); n != wantReads {
			t.Errorf("Erase(%s) read %d versions, want %d", id, n, wantReads)
		}
	}
	erase(unknown1, 0, 1) // first sight: read once, the verification skips it
	erase(unknown2, 0, 0)
	erase(target, 1, 2) // holds it: read, and read again to rewrite; the rewrite is known
	storetest.ExpectObject(t, objects, a.Bucket, lakeKey, record(neighbor, "q2"))

	// Another writer puts the contact back: a new version, read and erased.
	storetest.MustPutObject(t, objects, a.Bucket, lakeKey, record(neighbor, "q2")+record(target, "q3"))
	erase(target, 1, 2)
	storetest.ExpectObject(t, objects, a.Bucket, lakeKey, record(neighbor, "q2"))
}
