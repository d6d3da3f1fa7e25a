package s3

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// newTestAnchors creates a bucket with object lock and returns anchors in
// it, locked in GOVERNANCE mode so that the test can remove them again
// (COMPLIANCE would keep them, and the bucket, for the whole retention).
func newTestAnchors(t *testing.T) *Anchors {
	t.Helper()
	o := newTestS3(t)
	bucket := testBucketName()
	if _, err := o.client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket),
		ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatalf("create bucket with object lock: %v", err)
	}
	t.Cleanup(func() { removeLockedBucket(t, o, bucket) })
	a, err := NewAnchors(t.Context(), Config{
		Endpoint: os.Getenv("ERASURE_TEST_S3_ENDPOINT"), Region: o.region, PathStyle: true,
		AccessKey: os.Getenv("ERASURE_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("ERASURE_TEST_S3_SECRET_KEY"),
	}, AnchorsConfig{Bucket: bucket, Retention: time.Hour, Mode: "governance"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func removeLockedBucket(t *testing.T, o *Objects, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := s3.NewListObjectVersionsPaginator(o.client, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Errorf("cleanup of bucket %s: %v", bucket, err)
			return
		}
		for _, v := range page.Versions {
			if _, err := o.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: v.Key,
				VersionId: v.VersionId, BypassGovernanceRetention: aws.Bool(true)}); err != nil {
				t.Errorf("cleanup of bucket %s: %v", bucket, err)
			}
		}
		for _, m := range page.DeleteMarkers {
			o.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: m.Key, VersionId: m.VersionId})
		}
	}
	if _, err := o.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Errorf("delete bucket %s: %v", bucket, err)
	}
}

func TestS3AnchorsContract(t *testing.T) {
	storetest.TestAnchors(t, func(t *testing.T) stores.Anchors { return newTestAnchors(t) })
}

// An anchor is written once: another with its seq is refused, the same one
// again is a harmless retry, and the stored object is locked.
func TestS3AnchorsAreWriteOnce(t *testing.T) {
	a := newTestAnchors(t)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	an := stores.NewAnchor(7, "77", time.Now(), key)
	if err := a.Append(t.Context(), an); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(t.Context(), an); err != nil {
		t.Fatalf("appending the same anchor again = %v, want nil", err)
	}
	if err := a.Append(t.Context(), stores.NewAnchor(7, "88", time.Now(), key)); err == nil {
		t.Fatal("an anchor with the same seq and another hash was accepted")
	}
	head, err := a.client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(a.cfg.Bucket), Key: aws.String(anchorKey(7))})
	if err != nil {
		t.Fatal(err)
	}
	if head.ObjectLockMode != "GOVERNANCE" || head.ObjectLockRetainUntilDate == nil || !head.ObjectLockRetainUntilDate.After(time.Now()) {
		t.Fatalf("anchor lock = %q until %v, want GOVERNANCE in the future", head.ObjectLockMode, head.ObjectLockRetainUntilDate)
	}
	if _, err := a.client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(a.cfg.Bucket),
		Key: aws.String(anchorKey(7)), VersionId: head.VersionId}); err == nil {
		t.Fatal("a locked anchor version was deleted")
	}
	got, err := a.List(t.Context())
	if err != nil || len(got) != 1 || got[0].Hash != "77" {
		t.Fatalf("List = %+v, %v; want the one anchor", got, err)
	}
}
