package s3

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/locate"
)

// On a versioned bucket the contact's data-lake records must go from every
// version of a file, including versions written before a compaction dropped
// them from the current one.
func TestS3LocatorDatalakeVersions(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	m, err := locate.ParseDataMap([]byte(strings.ReplaceAll(string(locate.DefaultDataMapYAML()), "bucket: erasure-datalake", "bucket: "+bucket)))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Find(schemas.ChannelDataWarehouse, "data_lake_records")
	l := &locate.Locator{Map: m, Rule: schemas.DefaultContactIDRule, Objects: o}
	ctx := t.Context()
	key := "contacts/dt=2026-03-09/part-00000.jsonl"
	lineA := `{"contact_id":"` + idA + `","queue":"Billing"}` + "\n"
	lineB := `{"contact_id":"` + idB + `","queue":"Sales"}` + "\n"
	other := "contacts/dt=2026-03-09/part-00001.jsonl"

	if err := o.Put(ctx, bucket, key, strings.NewReader(lineA+lineB)); err != nil {
		t.Fatal(err)
	}
	// A compaction rewrote the file without A; the old version still has it.
	if err := o.Put(ctx, bucket, key, strings.NewReader(lineB)); err != nil {
		t.Fatal(err)
	}
	if err := o.Put(ctx, bucket, other, strings.NewReader(lineB+lineA)); err != nil {
		t.Fatal(err)
	}
	n, err := l.Count(ctx, a, idA, nil)
	if err != nil || n != 2 {
		t.Fatalf("before: %d %v, want 2 (one record, one old version)", n, err)
	}
	res, err := l.Erase(ctx, a, idA)
	if err != nil {
		t.Fatal(err)
	}
	if res.After != 0 || res.Deleted != 1 {
		t.Errorf("erase %+v", res)
	}
	for k, want := range map[string]string{key: lineB, other: lineB} {
		if v, err := o.Versions(ctx, bucket, k); err != nil || v != 1 {
			t.Errorf("%s: %d versions left (%v), want 1", k, v, err)
		}
		rc, err := o.Get(ctx, bucket, k)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != want {
			t.Errorf("%s now holds %q, want B's record byte for byte", k, got)
		}
	}
	// B's records were never touched.
	if n, err := l.Count(ctx, a, idB, nil); err != nil || n != 2 {
		t.Errorf("B: %d %v", n, err)
	}
}

const (
	idA = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"
	idB = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6c"
)

// Erasing a batch's objects lists each prefix once to find every version of
// their keys and once to verify, and deletes exactly those versions: every
// old version and delete marker of the batch's contacts, nothing of a
// neighbour's.
func TestS3LocatorEraseListsOnceBeforeVerifying(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	m, err := locate.ParseDataMap([]byte(strings.ReplaceAll(string(locate.DefaultDataMapYAML()), "bucket: erasure-connect", "bucket: "+bucket)))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Find(schemas.ChannelVoice, "call_recordings")
	idC := "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6d"
	day1, day2 := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC), time.Date(2026, 3, 12, 10, 0, 0, 0, time.UTC)
	doomed := []string{a.ObjectKey(idA, day1, "rec.wav"), a.ObjectKey(idA, day2, "rec.wav"), a.ObjectKey(idB, day1, "rec.wav")}
	kept := []string{a.ObjectKey(idC, day1, "rec.wav"), a.ObjectKey(idC, day2, "rec.wav")}
	all := append(slices.Clone(doomed), kept...)
	putParallel(t, o, bucket, all)
	putParallel(t, o, bucket, all)
	if _, err := o.client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(doomed[1])}); err != nil {
		t.Fatal(err)
	}

	counted, calls := countCalls(o)
	l := &locate.Locator{Map: m, Rule: schemas.DefaultContactIDRule, Objects: counted}
	res, err := l.Erase(t.Context(), a, idA, idB)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if res.Deleted != 3 || res.After != 0 {
		t.Errorf("Erase = %+v, want 3 keys deleted and none left", res)
	}
	if got := calls.take(); got["ListObjectVersions"] != 2 || got["DeleteObjects"] != 1 || len(got) != 2 {
		t.Errorf("Erase made calls %v; want 2 ListObjectVersions (find, verify) and 1 DeleteObjects", got)
	}
	versions, markers := rawVersions(t, o, bucket)
	var left []string
	for _, v := range append(versions, markers...) {
		left = append(left, v[:strings.IndexByte(v, '@')])
	}
	slices.Sort(left)
	want := []string{kept[0], kept[0], kept[1], kept[1]}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("after Erase the bucket holds versions of %q; want two of each of C's keys", left)
	}
}
