package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/erasure-project/erasure/stores"
)

// Conditional writes: PutObject and CompleteMultipartUpload with If-Match
// are answered 412 PreconditionFailed when the current version's ETag
// differs. AWS S3 supports this since November 2024, and so does the MinIO
// that deploy/local/servers.sh builds (RELEASE 2026-02): it checks the
// condition under its per-object lock, on PutObject and again when a
// multipart upload completes.

// ListVersions returns every version and delete marker of exactly key.
func (o *Objects) ListVersions(ctx context.Context, bucket, key string) ([]stores.ObjectVersion, error) {
	if err := checkS3Object(bucket, key); err != nil {
		return nil, err
	}
	var out []stores.ObjectVersion
	err := o.scan(ctx, "objects: list versions", bucket, key, func(e s3Entry) (bool, error) {
		if e.key != key {
			return true, nil
		}
		out = append(out, stores.ObjectVersion{ID: e.versionID, ETag: e.etag, Current: e.latest, DeleteMarker: e.marker})
		return false, nil
	})
	return out, err
}

// GetVersion opens one version of key, or returns ErrNotFound when it is
// gone (or is a delete marker, which has no content).
func (o *Objects) GetVersion(ctx context.Context, bucket, key, versionID string) (io.ReadCloser, error) {
	if err := checkS3Object(bucket, key); err != nil {
		return nil, err
	}
	if versionID == "" {
		return nil, stores.Permanent(errors.New("objects: get version: empty version ID"))
	}
	out, err := o.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String(versionID),
	})
	if err != nil {
		var nsk *types.NoSuchKey
		switch code := s3Code(err); {
		case errors.As(err, &nsk), code == "NoSuchKey", code == "NoSuchVersion":
			return nil, fmt.Errorf("objects: get version: %w", stores.ErrNotFound)
		case code == "MethodNotAllowed":
			// A delete marker asked for by its ID.
			return nil, fmt.Errorf("objects: get version: %w", stores.ErrNotFound)
		}
		return nil, s3Err("objects: get version", err)
	}
	if aws.ToBool(out.DeleteMarker) {
		out.Body.Close()
		return nil, fmt.Errorf("objects: get version: %w", stores.ErrNotFound)
	}
	return out.Body, nil
}

// ReplaceIf writes body as the new current version of key if the current
// version's ETag is still etag. A version written meanwhile by someone else
// makes it ErrConflict (retryable) and writes nothing.
//
// An ETag names content, not a version: a writer that stored the very
// same bytes meanwhile is not detected. Its version then stays behind as
// an older one, which the caller's verification finds and a later pass
// deletes.
func (o *Objects) ReplaceIf(ctx context.Context, bucket, key, etag string, body io.Reader) (stores.ObjectVersion, error) {
	if err := checkS3Object(bucket, key); err != nil {
		return stores.ObjectVersion{}, err
	}
	if etag == "" {
		return stores.ObjectVersion{}, stores.Permanent(errors.New("objects: conditional replace: empty ETag"))
	}
	id, err := o.upload(ctx, "objects: conditional replace", bucket, key, etag, body)
	if err != nil {
		switch s3Code(err) {
		// 412: the ETag differs. 409: a concurrent conditional write won
		// (AWS asks to retry). 404: the object was deleted meanwhile.
		case "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey":
			return stores.ObjectVersion{}, stores.Retryable(fmt.Errorf("objects: conditional replace: %w", stores.ErrConflict))
		}
		return stores.ObjectVersion{}, err
	}
	if id == "" {
		id = "null" // an unversioned bucket
	}
	return stores.ObjectVersion{ID: id, Current: true}, nil
}

// DeleteVersions permanently deletes the named versions of key, in batches;
// versions already gone are skipped.
func (o *Objects) DeleteVersions(ctx context.Context, bucket, key string, versionIDs []string) error {
	if err := checkS3Object(bucket, key); err != nil {
		return err
	}
	objs := make([]types.ObjectIdentifier, 0, len(versionIDs))
	for _, id := range stores.UniqueKeys(versionIDs) {
		objs = append(objs, types.ObjectIdentifier{Key: aws.String(key), VersionId: aws.String(id)})
	}
	return o.deleteObjects(ctx, "objects: delete versions", bucket, objs)
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
