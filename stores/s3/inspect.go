package s3

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/erasure-project/erasure/stores"
)

// RequireBucket fails unless the bucket exists and these credentials may
// use it.
func (o *Objects) RequireBucket(ctx context.Context, bucket string) error {
	if err := stores.CheckBucket(bucket); err != nil {
		return err
	}
	_, err := o.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	switch s3Code(err) {
	case "NotFound", "NoSuchBucket": // HEAD responses have no body, so the code is the status's
		return stores.Permanent(fmt.Errorf("objects: bucket %q does not exist", bucket))
	}
	return s3Err("objects: bucket", err)
}
