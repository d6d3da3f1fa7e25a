package stores

import (
	"context"
	"time"
)

// PurgeState says when the bytes a store deleted are physically gone. A
// delete often only hides data: SQLite keeps it in free pages and the WAL,
// OpenSearch in segments until a merge, ClickHouse in inactive parts until
// old_parts_lifetime passes, a versioned bucket in older versions.
type PurgeState struct {
	// Store is the kind of store: "sqlite", "disk", "s3", "opensearch",
	// "clickhouse".
	Store string
	// PurgedAt is when the deleted data was physically gone; zero while a
	// purge is pending.
	PurgedAt time.Time
	// PurgeBy is, while pending, the time by which the data will be gone,
	// and Job what removes it then.
	PurgeBy time.Time
	Job     string
}

// Purger is a store that, after deleting in scope (an index, a table or a
// bucket), makes the deleted data physically gone where it can and says
// when it is or will be.
type Purger interface {
	Purge(ctx context.Context, scope string) (PurgeState, error)
}
