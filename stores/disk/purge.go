package disk

import (
	"context"
	"time"

	"github.com/erasure-project/erasure/stores"
)

var _ stores.Purger = (*Objects)(nil)

// Purge reports when the objects deleted from bucket were physically gone.
// A delete unlinks the file and a replace renames the new content over the
// old, so the bytes leave the file tree when the call returns; what could
// still hold a copy is a temp file left by a crash mid-write, and those
// are removed here first.
func (o *Objects) Purge(ctx context.Context, bucket string) (stores.PurgeState, error) {
	dir, err := o.bucketDir(bucket)
	if err != nil {
		return stores.PurgeState{}, err
	}
	if err := ctx.Err(); err != nil {
		return stores.PurgeState{}, err
	}
	if err := requireBucket(dir); err != nil {
		return stores.PurgeState{}, err
	}
	if err := o.cleanTemps(); err != nil {
		return stores.PurgeState{Store: "disk"}, err
	}
	return stores.PurgeState{Store: "disk", PurgedAt: time.Now()}, nil
}
