package locate_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/disk"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/stores/sqlite"
)

const (
	target   = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"
	neighbor = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6c"
)

// newLocator is the default data map over embedded stores in a temporary
// directory, with the target contact in the contact index dated day.
func newLocator(t *testing.T, day time.Time) *locate.Locator {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	m, err := locate.DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	idb, err := sqlite.Open(ctx, filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	wdb, err := sqlite.Open(ctx, filepath.Join(dir, "warehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idb.Close(); wdb.Close() })
	l := &locate.Locator{Map: m, Rule: schemas.DefaultContactIDRule, Index: sqlite.NewIndex(idb),
		Objects: disk.New(filepath.Join(dir, "objects")), Warehouse: sqlite.NewWarehouse(wdb)}
	for _, id := range []string{target, neighbor} {
		if err := l.Index.Put(ctx, "contacts", stores.Doc{ID: id, Fields: map[string]any{"initiation_timestamp": day.Format(time.RFC3339)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Objects.EnsureBucket(ctx, "erasure-connect"); err != nil {
		t.Fatal(err)
	}
	if err := l.Warehouse.EnsureTable(ctx, "qa_evaluations", []string{"evaluation_id", "contact_id"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Warehouse.EnsureTable(ctx, "contact_sentiment", []string{"contact_id"}); err != nil {
		t.Fatal(err)
	}
	return l
}

func recording(m *locate.DataMap, id string, day time.Time) (bucket, key string) {
	a, _ := m.Find(schemas.ChannelVoice, "call_recordings")
	return a.Bucket, a.ObjectKey(id, day, day.Format("20060102T1504")+"_UTC.wav")
}

func putRecording(t *testing.T, l *locate.Locator, id string, day time.Time) {
	t.Helper()
	bucket, key := recording(l.Map, id, day)
	if err := l.Objects.Put(t.Context(), bucket, key, strings.NewReader("audio")); err != nil {
		t.Fatal(err)
	}
}

func callRecordings(t *testing.T, counts []schemas.ArtefactCount) schemas.ArtefactCount {
	t.Helper()
	for _, c := range counts {
		if c.Artefact == "call_recordings" {
			return c
		}
	}
	t.Fatalf("no call_recordings count in %+v", counts)
	return schemas.ArtefactCount{}
}

// An artefact filed far from the contact's date is outside the delete's
// window; the verification counts every date, so it is found, erased and
// counted rather than left behind under a "succeeded".
func TestEraseFindsArtefactsFarFromTheContactDate(t *testing.T) {
	day := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
	l := newLocator(t, day)
	putRecording(t, l, target, day)
	putRecording(t, l, target, day.AddDate(0, 2, 0))
	putRecording(t, l, neighbor, day.AddDate(0, 2, 0))

	counts, err := l.EraseChannel(t.Context(), schemas.ChannelVoice, []string{target}, nil)
	if err != nil {
		t.Fatalf("EraseChannel: %v", err)
	}
	if c := callRecordings(t, counts); c.Before != 2 || c.Deleted != 2 || c.After != 0 {
		t.Errorf("call_recordings = %+v, want before 2, deleted 2, after 0", c)
	}
	a, _ := l.Map.Find(schemas.ChannelVoice, "call_recordings")
	if n, err := l.Count(t.Context(), a, target, nil); err != nil || n != 0 {
		t.Errorf("recordings of the target left at any date: %d, %v", n, err)
	}
	if n, err := l.Count(t.Context(), a, neighbor, nil); err != nil || n != 1 {
		t.Errorf("the neighbour's recordings: %d, %v; want 1 untouched", n, err)
	}
}

// undeletable is object storage whose deletes of one key do nothing, as a
// store that silently refuses would.
type undeletable struct {
	stores.Objects
	key string
}

func (u undeletable) Delete(ctx context.Context, bucket string, keys ...string) error {
	keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == u.key })
	if len(keys) == 0 {
		return nil
	}
	return u.Objects.Delete(ctx, bucket, keys...)
}

// What the verification still finds fails the channel, naming the artefact
// type and where it is (never the contact's data).
func TestEraseFailsNamingWhatAndWhere(t *testing.T) {
	day := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
	l := newLocator(t, day)
	putRecording(t, l, target, day)
	_, key := recording(l.Map, target, day)
	l.Objects = undeletable{Objects: l.Objects, key: key}

	_, err := l.EraseChannel(t.Context(), schemas.ChannelVoice, []string{target}, nil)
	if err == nil {
		t.Fatal("EraseChannel succeeded with a recording left")
	}
	for _, want := range []string{"call_recordings", "1 left", "bucket erasure-connect", stores.ErrNotErased.Error()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), target) {
		t.Errorf("error %q names the contact's key", err)
	}
}

// purging is object storage that reports a pending physical purge.
type purging struct {
	stores.Objects
	by time.Time
}

func (p purging) Purge(context.Context, string) (stores.PurgeState, error) {
	return stores.PurgeState{Store: "test", PurgeBy: p.by, Job: "test cleanup"}, nil
}

// What a store says about physical purging reaches the channel's counts.
func TestEraseRecordsPurgeState(t *testing.T) {
	day := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
	l := newLocator(t, day)
	putRecording(t, l, target, day)
	by := time.Date(2026, 3, 9, 11, 0, 0, 0, time.UTC)
	l.Objects = purging{Objects: l.Objects, by: by}

	counts, err := l.EraseChannel(t.Context(), schemas.ChannelVoice, []string{target}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := callRecordings(t, counts)
	if c.Store != "test" || c.PurgeBy == nil || !c.PurgeBy.Equal(by) || c.PurgeJob != "test cleanup" || c.PurgedAt != nil {
		t.Errorf("call_recordings purge state = %+v, want pending by %s", c, by)
	}
	for _, c := range counts {
		if c.Deleted == 0 && (c.PurgeBy != nil || c.PurgedAt != nil) {
			t.Errorf("%s: purge state without a deletion: %+v", c.Artefact, c)
		}
	}
}

// The contact index entry goes last in contact-search: a data map that puts
// it before a CTR entry is refused.
func TestDataMapPutsTheContactIndexLast(t *testing.T) {
	raw := string(locate.DefaultDataMapYAML())
	ctr := "    - artefact: ctr_index\n      kind: index\n      index: ctr\n      field: contact_id\n"
	if !strings.Contains(raw, ctr) {
		t.Fatal("default data map changed shape")
	}
	swapped := strings.Replace(raw, ctr, "", 1)
	swapped = strings.Replace(swapped, "      by_id: true\n", "      by_id: true\n"+ctr, 1)
	_, err := locate.ParseDataMap([]byte(swapped))
	if err == nil || !strings.Contains(err.Error(), "must be the last artefact of contact-search") {
		t.Fatalf("ParseDataMap with the contact index first: %v", err)
	}
	m, err := locate.DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	arts := m.Artefacts(schemas.ChannelContactSearch)
	if last := arts[len(arts)-1]; last.Index != m.ContactDate.Index {
		t.Errorf("default data map: contact-search ends with %s", last.Artefact)
	}
}

// countingPurger is an index that records which scopes were purged.
type countingPurger struct {
	stores.Index
	scopes *[]string
}

func (c countingPurger) Purge(_ context.Context, scope string) (stores.PurgeState, error) {
	*c.scopes = append(*c.scopes, scope)
	return stores.PurgeState{Store: "test", PurgedAt: time.Now()}, nil
}

// A process that starts a channel resumes the purges of that channel's
// stores, once per store location, so a purge left pending by a crashed
// process still happens.
func TestResumePurgesOncePerLocation(t *testing.T) {
	l := newLocator(t, time.Now())
	var scopes []string
	l.Index = countingPurger{Index: l.Index, scopes: &scopes}
	if err := l.ResumePurges(t.Context(), []schemas.Channel{schemas.ChannelContactSearch, schemas.ChannelContactSearch}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(scopes)
	if !slices.Equal(scopes, []string{"contacts", "ctr"}) {
		t.Errorf("purged %v, want the contact and CTR indexes once each", scopes)
	}
}

// listings records the prefixes object storage is asked to list.
type listings struct {
	stores.Objects
	mu       sync.Mutex
	prefixes []string
}

func (o *listings) List(ctx context.Context, bucket, prefix string, fn func(string) error) error {
	o.mu.Lock()
	o.prefixes = append(o.prefixes, prefix)
	o.mu.Unlock()
	return o.Objects.List(ctx, bucket, prefix, fn)
}

func (o *listings) count(prefix string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(slices.DeleteFunc(slices.Clone(o.prefixes), func(p string) bool { return p != prefix }))
}

// A single contact whose date the index knows is looked for on its days
// by the delete; only the verification lists every date of the bucket.
func TestEraseOfAFewContactsListsTheirDays(t *testing.T) {
	day := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
	l := newLocator(t, day)
	putRecording(t, l, target, day)
	putRecording(t, l, target, day.AddDate(0, 0, 1))
	putRecording(t, l, neighbor, day)
	o := &listings{Objects: l.Objects}
	l.Objects = o
	counts, err := l.EraseChannel(t.Context(), schemas.ChannelVoice, []string{target}, nil)
	if err != nil {
		t.Fatalf("EraseChannel: %v", err)
	}
	if c := callRecordings(t, counts); c.Before != 2 || c.Deleted != 2 || c.After != 0 {
		t.Errorf("call_recordings = %+v, want before 2, deleted 2, after 0", c)
	}
	const all = "connect/demo-instance/CallRecordings/"
	if n := o.count(all); n != 1 {
		t.Errorf("every date listed %d times, want once (the verification)", n)
	}
	if n := o.count(all + "2026/03/09/" + target + "_"); n != 1 {
		t.Errorf("the contact's own day listed %d times, want once; listed: %v", n, o.prefixes)
	}
	// A contact the index does not know is looked for everywhere.
	o.prefixes = nil
	if _, err := l.EraseChannel(t.Context(), schemas.ChannelVoice, []string{"5f3c1e7a-2b4d-4c6e-8f0a-1b2c3d4e5f60"}, nil); err != nil {
		t.Fatal(err)
	}
	if n := o.count(all); n != 2 {
		t.Errorf("unknown contact: every date listed %d times, want twice (delete and verification)", n)
	}
}
