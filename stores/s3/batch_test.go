package s3

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
	"golang.org/x/sync/errgroup"
)

// opCounter counts the S3 operations a client sends, by name.
type opCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *opCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// countCalls returns o with a client that counts its operations.
func countCalls(o *Objects) (*Objects, *opCounter) {
	c := &opCounter{n: map[string]int{}}
	opts := o.client.Options()
	opts.APIOptions = append(slices.Clone(opts.APIOptions), func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				c.n[middleware.GetOperationName(ctx)]++
				c.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
	return &Objects{client: s3.New(opts), region: o.region, listPage: o.listPage}, c
}

// putParallel writes each key once with its own name as content.
func putParallel(t *testing.T, o *Objects, bucket string, keys []string) {
	t.Helper()
	g, ctx := errgroup.WithContext(t.Context())
	g.SetLimit(16)
	for _, k := range keys {
		g.Go(func() error { return o.Put(ctx, bucket, k, strings.NewReader(k)) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// A batch delete removes exactly the requested keys, never another key that
// shares their directory or prefix, or lies between them in key order,
// however the listing is paged: by the server's default, or a few entries a
// page so listings end inside a key's versions and fall back to one listing
// per key.
func TestS3DeleteNeverWidens(t *testing.T) {
	o := newTestS3(t)
	const dir = "rec/2025/03/01/"
	doomed := []string{dir + "c1_rec.wav", dir + "c2_rec.wav", dir + "c3_rec.wav", "rec/2025/03/02/c1_rec.wav"}
	// (No key names a directory of other keys: MinIO cannot hold both.)
	kept := []string{
		dir + "c1_rec.wav.keep", dir + "c10_rec.wav", dir + "c1", dir + "c15_rec.wav", dir + "c2_rec.wa",
		"rec/2025/03/0", "rec/2025/03/02/c1_rec.wav2", "c1_rec.wav",
	}
	for _, page := range []int32{0, 1, 2, 3, 5} {
		t.Run(fmt.Sprintf("page %d", page), func(t *testing.T) {
			bucket := newS3Bucket(t, o)
			o := &Objects{client: o.client, region: o.region, listPage: page}
			// Several versions and delete markers, of doomed and kept keys.
			all := append(slices.Clone(doomed), kept...)
			putParallel(t, o, bucket, all)
			putParallel(t, o, bucket, all)
			for _, k := range []string{doomed[0], doomed[2], kept[0], kept[3]} {
				if _, err := o.client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
					t.Fatal(err)
				}
			}
			putParallel(t, o, bucket, []string{doomed[2], kept[3]})
			versions, markers := rawVersions(t, o, bucket)
			before := append(versions, markers...)

			batch := append(slices.Clone(doomed), dir+"c9_rec.wav", doomed[1])
			if err := o.Delete(t.Context(), bucket, batch...); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			versions, markers = rawVersions(t, o, bucket)
			after := append(versions, markers...)
			var want []string
			for _, v := range before {
				key := v[:strings.LastIndexByte(v, '@')]
				if !slices.Contains(doomed, key) {
					want = append(want, v)
				}
			}
			slices.Sort(want)
			slices.Sort(after)
			if extra, missing := setDiff(after, want), setDiff(want, after); len(extra)+len(missing) > 0 {
				t.Errorf("after Delete the server still holds %q of the deleted keys and lost %q of the kept ones", extra, missing)
			}
			if len(want) != len(before)-(4*2+2+1) {
				t.Errorf("%d of %d entries were kept: the setup is not what the test expects", len(want), len(before))
			}
		})
	}
}

// A batch lists once per directory, not once per key, and deletes by
// version ID in calls of up to 1,000.
func TestS3DeleteListsOncePerPrefix(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	var keys []string
	for d := range 4 {
		for i := range 250 {
			keys = append(keys, fmt.Sprintf("connect/inst/CallRecordings/2025/03/%02d/%s_%04d.wav", d+1, storetest.NewUUID(), i))
		}
	}
	putParallel(t, o, bucket, keys)
	putParallel(t, o, bucket, keys[:100])
	neighbour := "connect/inst/CallRecordings/2025/03/01/zz_neighbour.wav"
	storetest.MustPutObject(t, o, bucket, neighbour, "keep")
	const versions = 1000 + 100

	counted, calls := countCalls(o)
	start := time.Now()
	if err := counted.Delete(t.Context(), bucket, keys...); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	t.Logf("Delete of %d keys (%d versions): %s", len(keys), versions, time.Since(start))
	got := calls.take()
	if got["ListObjectVersions"] != 4 || got["DeleteObjects"] != 2 || len(got) != 2 {
		t.Errorf("Delete of %d keys in 4 directories made calls %v; want 4 ListObjectVersions and 2 DeleteObjects, nothing else",
			len(keys), got)
	}
	v, m := rawVersions(t, o, bucket)
	if len(m) != 0 || len(v) != 1 || !strings.HasPrefix(v[0], neighbour+"@") {
		t.Errorf("after Delete the server holds %d versions (first %q) and %d markers; want only the neighbour", len(v), storetest.First(v), len(m))
	}
}

func TestS3KeyGroups(t *testing.T) {
	groups := keyGroups([]string{
		"a/2/x1", "a/1/k", "a/2/x2", "", "a/2/x1", "top", "a/2/sub/y", "a/é1", "a/è2", "top2",
	})
	got := map[string][]string{}
	for _, g := range groups {
		got[g.prefix] = g.keys
	}
	want := map[string][]string{
		"a/1/k":     {"a/1/k"},
		"a/2/x":     {"a/2/x1", "a/2/x2"},
		"a/2/sub/y": {"a/2/sub/y"},
		"a/":        {"a/è2", "a/é1"}, // the common bytes end inside a character
		"top":       {"top", "top2"},
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("keyGroups = %q, want %q", got, want)
	}
	for _, g := range groups {
		for _, k := range g.keys {
			if !strings.HasPrefix(k, g.prefix) {
				t.Errorf("key %q is not under its group's prefix %q", k, g.prefix)
			}
		}
	}
}

// setDiff lists the entries of a that are not in b.
func setDiff(a, b []string) []string {
	var d []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			d = append(d, x)
		}
	}
	return d
}

// DeleteObjects answers 200 even when it deleted nothing: each version it
// did not delete comes back with an error code, which decides the class of
// the whole call. Versions already gone are what was asked for. No key is
// quoted in the error.
func TestS3DeleteObjectsItemErrors(t *testing.T) {
	var body string
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !r.URL.Query().Has("delete") {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		calls.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`+body+`</DeleteResult>`)
	}))
	defer srv.Close()
	o, err := New(t.Context(), Config{Endpoint: srv.URL, Region: "us-east-1", PathStyle: true, AccessKey: "a", SecretKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	item := func(code string) string {
		return `<Error><Key>secret/c-secret.wav</Key><VersionId>v1</VersionId><Code>` + code + `</Code><Message>about secret/c-secret.wav</Message></Error>`
	}
	objs := make([]types.ObjectIdentifier, 2500)
	for i := range objs {
		objs[i] = types.ObjectIdentifier{Key: aws.String(fmt.Sprintf("secret/c-%d.wav", i)), VersionId: aws.String("v1")}
	}
	for _, tc := range []struct {
		name  string
		items string
		want  error // nil: success
	}{
		{"all deleted", "", nil},
		{"gone already", item("NoSuchVersion") + item("NoSuchKey"), nil},
		{"slow down", item("NoSuchVersion") + item("SlowDown"), stores.ErrRetryable},
		{"internal error", item("InternalError"), stores.ErrRetryable},
		{"access denied", item("AccessDenied"), stores.ErrPermanent},
		{"denied and slowed", item("AccessDenied") + item("SlowDown"), stores.ErrRetryable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body = tc.items
			calls.Store(0)
			err := o.deleteObjects(t.Context(), "objects: delete", "some-bucket", objs)
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("err = %v, want success", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("err = %v, want %v", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "secret/"):
				t.Errorf("error %q quotes a key", err)
			}
			if tc.want == nil && calls.Load() != 3 {
				t.Errorf("%d DeleteObjects calls for %d versions, want 3", calls.Load(), len(objs))
			}
		})
	}
}

// DeleteListed removes exactly the versions it is given: every version and
// delete marker a listing reported of the chosen keys, and not a version
// written after the listing, nor anything of another key.
func TestS3DeleteListedDeletesExactlyWhatWasListed(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	const dir = "rec/2025/03/01/"
	doomed := []string{dir + "c1_rec.wav", dir + "c2_rec.wav"}
	kept := []string{dir + "c1_rec.wav.keep", dir + "c3_rec.wav"}
	all := append(slices.Clone(doomed), kept...)
	putParallel(t, o, bucket, all)
	putParallel(t, o, bucket, all)
	if _, err := o.client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(doomed[1])}); err != nil {
		t.Fatal(err)
	}
	listed := map[string][]string{}
	err := o.ListEachVersion(t.Context(), bucket, dir, func(key, id string) error {
		if slices.Contains(doomed, key) {
			listed[key] = append(listed[key], id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed[doomed[0]]) != 2 || len(listed[doomed[1]]) != 3 {
		t.Fatalf("listed %v; want two versions of %s and two and a delete marker of %s", listed, doomed[0], doomed[1])
	}
	// Written after the listing: not among what is deleted.
	storetest.MustPutObject(t, o, bucket, doomed[0], "late")
	before, markers := rawVersions(t, o, bucket)
	before = append(before, markers...)

	if err := o.DeleteListed(t.Context(), bucket, map[string][]string{"": {"x"}}); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("DeleteListed of an empty key: %v, want a permanent error", err)
	}
	if err := o.DeleteListed(t.Context(), bucket, listed); err != nil {
		t.Fatalf("DeleteListed: %v", err)
	}
	after, markers := rawVersions(t, o, bucket)
	after = append(after, markers...)
	var want []string
	for _, v := range before {
		key, id, _ := strings.Cut(strings.TrimSuffix(v, "!"), "@")
		if !slices.Contains(listed[key], id) {
			want = append(want, v)
		}
	}
	slices.Sort(want)
	slices.Sort(after)
	if !slices.Equal(after, want) {
		t.Errorf("after DeleteListed the server holds %q; want %q", after, want)
	}
	if n := len(before) - len(after); n != 5 {
		t.Errorf("%d entries deleted, want the 5 listed", n)
	}
}
