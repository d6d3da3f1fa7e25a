package stores

import "errors"

// ErrConflict is returned by a conditional write when the object changed
// since it was read: another writer got there first. Read again and retry.
var ErrConflict = errors.New("object changed since it was read")

// ObjectVersion identifies one stored version of an object.
//
// In a versioned S3 bucket ID is the version ID ("null" in an unversioned
// one) and ETag the entity tag that a conditional write compares. On local
// disk there is one version, the file, and both are the file's identity
// (device, inode, size and modification time), which every write changes.
type ObjectVersion struct {
	ID   string
	ETag string
	// Current marks the version a plain Get reads.
	Current bool
	// DeleteMarker marks an S3 delete marker: it hides older versions and
	// holds no content.
	DeleteMarker bool
}
