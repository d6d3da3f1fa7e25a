package s3

import (
	"io"
	"strings"
	"testing"

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
