package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
	"golang.org/x/sync/errgroup"
)

// newTestS3 connects to the S3-compatible server named by
// ERASURE_TEST_S3_ENDPOINT, skipping the test when it is not set (and
// failing it in CI, where a missing server must not pass silently).
func newTestS3(t *testing.T) *Objects {
	t.Helper()
	endpoint := os.Getenv("ERASURE_TEST_S3_ENDPOINT")
	if endpoint == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ERASURE_TEST_S3_ENDPOINT not set")
		}
		t.Skip("ERASURE_TEST_S3_ENDPOINT not set")
	}
	region := os.Getenv("ERASURE_TEST_S3_REGION")
	if region == "" {
		region = "us-east-1"
	}
	o, err := New(t.Context(), Config{
		Endpoint:  endpoint,
		Region:    region,
		PathStyle: true,
		AccessKey: os.Getenv("ERASURE_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("ERASURE_TEST_S3_SECRET_KEY"),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return o
}

func testBucketName() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "erasure-test-" + hex.EncodeToString(b)
}

// newS3Bucket creates a fresh versioned bucket that is emptied and removed
// when the test ends.
func newS3Bucket(t *testing.T, o *Objects) string {
	t.Helper()
	bucket := testBucketName()
	if err := o.EnsureBucket(t.Context(), bucket); err != nil {
		t.Fatalf("EnsureBucket: %v", err)
	}
	t.Cleanup(func() { removeS3Bucket(t, o, bucket) })
	return bucket
}

// removeS3Bucket deletes every version, delete marker and unfinished upload
// in bucket, then the bucket itself.
func removeS3Bucket(t *testing.T, o *Objects, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var objs []types.ObjectIdentifier
	err := o.scan(ctx, "cleanup", bucket, "", func(e s3Entry) (bool, error) {
		objs = append(objs, types.ObjectIdentifier{Key: aws.String(e.key), VersionId: aws.String(e.versionID)})
		return false, nil
	})
	if err == nil {
		err = o.deleteObjects(ctx, "cleanup", bucket, objs)
	}
	if err != nil {
		t.Errorf("cleanup of bucket %s: %v", bucket, err)
		return
	}
	uploads, err := o.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err == nil {
		for _, u := range uploads.Uploads {
			_, _ = o.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId})
		}
	}
	if _, err := o.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Errorf("delete bucket %s: %v", bucket, err)
	}
}

// trackedS3 removes every bucket the contract suite creates through it.
type trackedS3 struct {
	*Objects
	t *testing.T
}

func (o trackedS3) EnsureBucket(ctx context.Context, bucket string) error {
	_, err := o.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	existed := err == nil
	if err := o.Objects.EnsureBucket(ctx, bucket); err != nil {
		return err
	}
	if !existed {
		o.t.Cleanup(func() { removeS3Bucket(o.t, o.Objects, bucket) })
	}
	return nil
}

func TestS3ObjectsContract(t *testing.T) {
	newTestS3(t) // skip early when there is no server
	storetest.TestObjects(t, func(t *testing.T) stores.Objects { return trackedS3{Objects: newTestS3(t), t: t} })
}

// rawVersions lists what the server holds under bucket, bypassing Objects:
// "key@versionID" for versions and "key@versionID!" for delete markers.
func rawVersions(t *testing.T, o *Objects, bucket string) (versions, markers []string) {
	t.Helper()
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)}
	for {
		page, err := o.client.ListObjectVersions(t.Context(), in)
		if err != nil {
			t.Fatalf("ListObjectVersions: %v", err)
		}
		for _, v := range page.Versions {
			versions = append(versions, aws.ToString(v.Key)+"@"+aws.ToString(v.VersionId))
		}
		for _, m := range page.DeleteMarkers {
			markers = append(markers, aws.ToString(m.Key)+"@"+aws.ToString(m.VersionId)+"!")
		}
		if !aws.ToBool(page.IsTruncated) {
			return versions, markers
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
}

func TestS3EnsureBucketEnablesVersioning(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	if err := o.EnsureBucket(t.Context(), bucket); err != nil {
		t.Fatalf("EnsureBucket again: %v", err)
	}
	out, err := o.client.GetBucketVersioning(t.Context(), &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("GetBucketVersioning: %v", err)
	}
	if out.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("versioning status = %q, want Enabled", out.Status)
	}
}

func TestS3DeleteRemovesEveryVersion(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	key := "connect/inst/CallRecordings/2025/03/01/c1_rec.wav"
	for i := range 3 {
		storetest.MustPutObject(t, o, bucket, key, fmt.Sprintf("version %d", i))
	}
	storetest.MustPutObject(t, o, bucket, key+".keep", "a longer key sharing the prefix")
	if v := storetest.MustVersions(t, o, bucket, key); v != 3 {
		t.Fatalf("Versions after 3 puts = %d, want 3", v)
	}
	if err := o.Delete(t.Context(), bucket, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	versions, markers := rawVersions(t, o, bucket)
	for _, v := range append(versions, markers...) {
		if strings.HasPrefix(v, key+"@") {
			t.Errorf("left on the server after Delete: %s", v)
		}
	}
	if len(versions) != 1 || !strings.HasPrefix(versions[0], key+".keep@") || len(markers) != 0 {
		t.Errorf("server holds versions %q, markers %q; want only the .keep object", versions, markers)
	}
	if _, err := o.Get(t.Context(), bucket, key); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	storetest.ExpectObject(t, o, bucket, key+".keep", "a longer key sharing the prefix")
}

func TestS3DeleteMarkerOnlyKey(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	key := "rec/c2_rec.wav"
	storetest.MustPutObject(t, o, bucket, key, "old 1")
	storetest.MustPutObject(t, o, bucket, key, "old 2")
	// A plain delete, as any other tool would do it: only a marker on top.
	if _, err := o.client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	if _, markers := rawVersions(t, o, bucket); len(markers) != 1 {
		t.Fatalf("delete markers = %q, want 1", markers)
	}
	if _, err := o.Get(t.Context(), bucket, key); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Get behind a delete marker: err = %v, want ErrNotFound", err)
	}
	if got := storetest.ListKeys(t, o, bucket, ""); !slices.Equal(got, []string{key}) {
		t.Fatalf("List = %q, want [%s]: hidden old versions are still stored", got, key)
	}
	if v := storetest.MustVersions(t, o, bucket, key); v != 3 {
		t.Fatalf("Versions = %d, want 3 (2 versions + 1 delete marker)", v)
	}
	if err := o.Delete(t.Context(), bucket, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if versions, markers := rawVersions(t, o, bucket); len(versions)+len(markers) != 0 {
		t.Fatalf("after Delete the server holds versions %q, markers %q; want nothing", versions, markers)
	}
	if got := storetest.ListKeys(t, o, bucket, ""); len(got) != 0 {
		t.Fatalf("List after Delete = %q, want nothing", got)
	}
}

func TestS3ReplaceLeavesOneVersion(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	key := "datalake/contacts/dt=2025-03-01/part-0000.jsonl"
	storetest.MustPutObject(t, o, bucket, key, "v1 naming the contact")
	if _, err := o.client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	storetest.MustPutObject(t, o, bucket, key, "v2 naming the contact")
	if err := o.Replace(t.Context(), bucket, key, strings.NewReader("v3 without the contact")); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	versions, markers := rawVersions(t, o, bucket)
	if len(versions) != 1 || len(markers) != 0 {
		t.Fatalf("after Replace the server holds versions %q, markers %q; want exactly 1 version", versions, markers)
	}
	if v := storetest.MustVersions(t, o, bucket, key); v != 1 {
		t.Fatalf("Versions = %d, want 1", v)
	}
	storetest.ExpectObject(t, o, bucket, key, "v3 without the contact")
}

func TestS3ListPaginatesVersions(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	const n = 1050
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("many/%04d/obj", i)
	}
	g, ctx := errgroup.WithContext(t.Context())
	g.SetLimit(16)
	for i, k := range want {
		g.Go(func() error {
			if err := o.Put(ctx, bucket, k, strings.NewReader(k)); err != nil {
				return fmt.Errorf("Put(%q): %w", k, err)
			}
			switch i % 10 {
			case 3: // a second version
				return o.Put(ctx, bucket, k, strings.NewReader(k+" again"))
			case 7: // hidden behind a delete marker
				_, err := o.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	storetest.MustPutObject(t, o, bucket, "man", "outside the prefix")
	if got := storetest.ListKeys(t, o, bucket, "many/"); !slices.Equal(got, want) {
		t.Fatalf("List returned %d keys (first %q), want %d in order, each once", len(got), storetest.First(got), n)
	}
	if got := storetest.ListKeys(t, o, bucket, ""); len(got) != n+1 || got[0] != "man" {
		t.Fatalf("List(\"\") returned %d keys (first %q), want %d", len(got), storetest.First(got), n+1)
	}
}

func TestS3MissingOrInvalidBucketIsPermanent(t *testing.T) {
	o := newTestS3(t)
	missing := testBucketName()
	checks := map[string]error{
		"Put":    o.Put(t.Context(), missing, "k", strings.NewReader("v")),
		"Delete": o.Delete(t.Context(), missing, "k"),
		"List":   o.List(t.Context(), missing, "", func(string) error { return nil }),
		"Ensure": o.EnsureBucket(t.Context(), "Not_A_Bucket"),
	}
	_, checks["Versions"] = o.Versions(t.Context(), missing, "k")
	for op, err := range checks {
		if !errors.Is(err, stores.ErrPermanent) {
			t.Errorf("%s: err = %v, want permanent", op, err)
		}
	}
	if err := o.Put(t.Context(), missing, "", strings.NewReader("v")); !errors.Is(err, stores.ErrPermanent) {
		t.Errorf("Put with an empty key: err = %v, want permanent", err)
	}
}

func TestS3CanceledContextPassesThrough(t *testing.T) {
	o := newTestS3(t)
	bucket := newS3Bucket(t, o)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := o.Put(ctx, bucket, "k", strings.NewReader("v"))
	if !errors.Is(err, context.Canceled) || stores.IsRetryable(err) {
		t.Fatalf("Put with a canceled context: err = %v, want context.Canceled, not retryable", err)
	}
}

// TestS3ErrorClassification needs no server.
func TestS3ErrorClassification(t *testing.T) {
	apiErr := func(code string, status int) error {
		return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      &smithy.GenericAPIError{Code: code, Message: "msg"},
			},
		}}
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"SlowDown", apiErr("SlowDown", 503), stores.ErrRetryable},
		{"InternalError", apiErr("InternalError", 500), stores.ErrRetryable},
		{"RequestTimeout", apiErr("RequestTimeout", 400), stores.ErrRetryable},
		{"TooManyRequests", apiErr("TooManyRequests", 429), stores.ErrRetryable},
		{"AccessDenied", apiErr("AccessDenied", 403), stores.ErrPermanent},
		{"NoSuchBucket", apiErr("NoSuchBucket", 404), stores.ErrPermanent},
		{"InvalidBucketName", apiErr("InvalidBucketName", 400), stores.ErrPermanent},
		{"network", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: errors.New("connection reset by peer")}, stores.ErrRetryable},
	}
	for _, tc := range tests {
		got := s3Err("objects: test", tc.err)
		if !errors.Is(got, tc.want) {
			t.Errorf("%s: classified as %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := s3Err("objects: test", fmt.Errorf("send: %w", context.Canceled)); !errors.Is(got, context.Canceled) || stores.IsRetryable(got) {
		t.Errorf("canceled: %v, want context.Canceled and not retryable", got)
	}
}

// TestS3UnreachableIsRetryable needs no server: nothing listens on the port.
func TestS3UnreachableIsRetryable(t *testing.T) {
	o, err := New(t.Context(), Config{Endpoint: "http://127.0.0.1:1", Region: "us-east-1", PathStyle: true, AccessKey: "a", SecretKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = o.Versions(ctx, "some-bucket", "secret/key.wav")
	if !errors.Is(err, stores.ErrRetryable) {
		t.Fatalf("err = %v, want retryable", err)
	}
	if strings.Contains(err.Error(), "secret/key.wav") {
		t.Errorf("error text %q contains the key", err)
	}
}
