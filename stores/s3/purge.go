package s3

import (
	"context"
	"time"

	"github.com/erasure-project/erasure/stores"
)

var _ stores.Purger = (*Objects)(nil)

// Purge reports the objects deleted from bucket as gone now: the adapter
// deletes every version by its ID, never by adding a delete marker, so no
// older version keeps the content.
//
// MinIO removes a version's data when it is deleted by ID: a small object
// is inlined in the object's xl.meta, which is rewritten without it; a
// larger one's part files are removed from every drive. AWS S3 documents
// that deleting a version by ID removes it permanently, so nothing can read
// it again; it does not publish when the underlying storage is overwritten
// (that is its internal reclamation, and decommissioned media are
// sanitised per NIST 800-88), so "purged" here means no S3 API can return
// the bytes.
func (o *Objects) Purge(ctx context.Context, bucket string) (stores.PurgeState, error) {
	if err := stores.CheckBucket(bucket); err != nil {
		return stores.PurgeState{}, err
	}
	if err := ctx.Err(); err != nil {
		return stores.PurgeState{}, err
	}
	return stores.PurgeState{Store: "s3", PurgedAt: time.Now()}, nil
}
