package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/stores/storetest"
)

// The server checks If-Match when a multipart upload completes, so a write
// that lands while the parts of a large rewrite are uploading still wins.
func TestS3ReplaceIfMultipartConflict(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	ctx := t.Context()
	if err := o.Put(ctx, bucket, "big", strings.NewReader("small original")); err != nil {
		t.Fatal(err)
	}
	read := storetest.CurrentVersion(t, o, bucket, "big")
	body := &hookReader{r: bytes.NewReader(bytes.Repeat([]byte("x"), s3PartSize+1234)), at: s3PartSize + 1, hook: func() {
		if err := o.Put(ctx, bucket, "big", strings.NewReader("written meanwhile")); err != nil {
			t.Error(err)
		}
	}}
	if _, err := o.ReplaceIf(ctx, bucket, "big", read.ETag, body); !errors.Is(err, stores.ErrConflict) {
		t.Fatalf("multipart ReplaceIf after another write: %v, want ErrConflict", err)
	}
	storetest.ExpectObject(t, o, bucket, "big", "written meanwhile")
	uploads, err := o.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil || len(uploads.Uploads) != 0 {
		t.Errorf("multipart uploads left: %v, %v", uploads, err)
	}
}

// A delete marker put on the object after the read is a change too: the
// conditional write must not bring the object back.
func TestS3ReplaceIfAfterDeleteMarker(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	ctx := t.Context()
	if err := o.Put(ctx, bucket, "f", strings.NewReader("content")); err != nil {
		t.Fatal(err)
	}
	read := storetest.CurrentVersion(t, o, bucket, "f")
	if _, err := o.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.ReplaceIf(ctx, bucket, "f", read.ETag, strings.NewReader("resurrected")); !errors.Is(err, stores.ErrConflict) {
		t.Fatalf("ReplaceIf over a delete marker: %v, want ErrConflict", err)
	}
	if _, err := o.Get(ctx, bucket, "f"); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound (the delete marker still current)", err)
	}
}

// racingObjects stores a new version of one file, as the ETL job would,
// right after the rewrite has read it the first few times.
type racingObjects struct {
	stores.Objects
	bucket, key string
	races       atomic.Int32
	write       func(n int32) string
}

func (r *racingObjects) GetVersion(ctx context.Context, bucket, key, id string) (io.ReadCloser, error) {
	rc, err := r.Objects.GetVersion(ctx, bucket, key, id)
	if err != nil || key != r.key {
		return rc, err
	}
	if n := r.races.Add(-1); n >= 0 {
		if err := r.Objects.Put(ctx, bucket, key, strings.NewReader(r.write(n))); err != nil {
			rc.Close()
			return nil, err
		}
	}
	return rc, nil
}

// The data-lake rewrite against a writer that keeps storing new versions
// between its read and its write: each such version survives until it is
// read, none is lost, and the contact's records end up in none.
func TestS3LocatorDatalakeConcurrentWriter(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	m, err := locate.ParseDataMap([]byte(strings.ReplaceAll(string(locate.DefaultDataMapYAML()), "bucket: erasure-datalake", "bucket: "+bucket)))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Find(schemas.ChannelDataWarehouse, "data_lake_records")
	ctx := t.Context()
	key := "contacts/dt=2026-03-09/part-00000.jsonl"
	lineA := `{"contact_id":"` + idA + `","queue":"Billing"}` + "\n"
	lineB := `{"contact_id":"` + idB + `","queue":"Sales"}` + "\n"
	etl := func(n int32) string { return `{"contact_id":"etl-` + string(rune('a'+n)) + `"}` + "\n" }
	if err := o.Put(ctx, bucket, key, strings.NewReader(lineA+lineB)); err != nil {
		t.Fatal(err)
	}
	racer := &racingObjects{Objects: o, bucket: bucket, key: key}
	racer.races.Store(2)
	racer.write = func(n int32) string { return lineA + lineB + etl(n) } // appends, keeps A
	l := &locate.Locator{Map: m, Rule: schemas.DefaultContactIDRule, Objects: racer}

	res, err := l.Erase(ctx, a, idA)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if res.After != 0 {
		t.Errorf("after = %d", res.After)
	}
	// The last write (etl-a) was read and rewritten; it is current, without A.
	storetest.ExpectObject(t, o, bucket, key, lineB+etl(0))
	for _, v := range storetest.MustListVersions(t, o, bucket, key) {
		rc, err := o.GetVersion(ctx, bucket, key, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if strings.Contains(string(got), idA) {
			t.Errorf("version %s still holds A: %q", v.ID, got)
		}
	}
	if n, err := l.Count(ctx, a, idB, nil); err != nil || n != 1 {
		t.Errorf("B: %d %v, want 1 record", n, err)
	}
}

// Files that never held the contact are not rewritten, whatever their
// history: their versions stay as they are.
func TestS3LocatorDatalakeSkipsOtherFiles(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	m, err := locate.ParseDataMap([]byte(strings.ReplaceAll(string(locate.DefaultDataMapYAML()), "bucket: erasure-datalake", "bucket: "+bucket)))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Find(schemas.ChannelDataWarehouse, "data_lake_records")
	l := &locate.Locator{Map: m, Rule: schemas.DefaultContactIDRule, Objects: o}
	ctx := t.Context()
	key := "contacts/dt=2026-03-09/part-00007.jsonl"
	lineB := `{"contact_id":"` + idB + `","queue":"Sales"}` + "\n"
	for _, body := range []string{lineB, lineB + lineB} {
		if err := o.Put(ctx, bucket, key, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	before := storetest.MustListVersions(t, o, bucket, key)
	res, err := l.Erase(ctx, a, idA)
	if err != nil || res.Before != 0 || res.Deleted != 0 || res.After != 0 {
		t.Fatalf("Erase = %+v, %v; want nothing found", res, err)
	}
	after := storetest.MustListVersions(t, o, bucket, key)
	if len(after) != len(before) || after[0].ID != before[0].ID || after[1].ID != before[1].ID {
		t.Errorf("versions changed: %+v -> %+v", before, after)
	}
}

// hookReader calls hook once, when at bytes have been read.
type hookReader struct {
	r    io.Reader
	n    int
	at   int
	hook func()
	done bool
}

func (h *hookReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += n
	if !h.done && h.n >= h.at {
		h.done = true
		h.hook()
	}
	return n, err
}
