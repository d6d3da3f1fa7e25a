package disk

import "context"

// RequireBucket fails unless the bucket's directory exists.
func (o *Objects) RequireBucket(ctx context.Context, bucket string) error {
	dir, err := o.bucketDir(bucket)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return requireBucket(dir)
}
