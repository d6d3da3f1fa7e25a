package locate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// Data-lake files hold many contacts and have other writers (the ETL job,
// a second consumer instance). A rewrite therefore works on a snapshot: it
// lists the file's versions, reads each one it needs by version ID, writes
// the new content only if the current version is still the one read (an
// If-Match write), and then deletes exactly the versions it read. A version
// written after the snapshot is never deleted; a write that loses the race
// starts again from a new snapshot.
//
// Older versions cannot be trusted to lack the contact (a compaction may
// have dropped the records from the current version only), so each one is
// read by its version ID, up to the first record of the contact: one GET
// per older version per file, every time the file is counted or erased.
// That is the price of deleting only versions that hold the contact, and
// leaving alone the history of files that never did.

// datalakeAttempts bounds the rewrites of one file that lose to another
// writer before the erasure gives up for now (retryable).
const datalakeAttempts = 5

// errSnapshotStale means a version listed a moment ago was gone when read.
var errSnapshotStale = errors.New("data-lake file changed while it was read")

// fileSnapshot is what one data-lake file held when it was read.
type fileSnapshot struct {
	// current is the version a plain read returns; nil when there is none
	// (only older versions or delete markers are left).
	current *stores.ObjectVersion
	// mine and others count the records of the contact and of everyone
	// else in the current version.
	mine, others int64
	// holding lists the older versions with at least one of the contact's
	// records.
	holding []string
	// all lists every version and delete marker listed.
	all []string
}

// snapshotFile lists key's versions and reads those that matter.
func (l *Locator) snapshotFile(ctx context.Context, a Artefact, key string, ids idSet) (fileSnapshot, error) {
	var s fileSnapshot
	versions, err := l.Objects.ListVersions(ctx, a.Bucket, key)
	if err != nil {
		return s, err
	}
	for _, v := range versions {
		s.all = append(s.all, v.ID)
		switch {
		case v.DeleteMarker:
		case l.files.skip(a.Bucket, key, v, ids):
			// Known to hold none of the batch: not read. A current version
			// with none is not rewritten, so its other records are not
			// counted.
			if v.Current {
				cur := v
				s.current = &cur
			}
		case v.Current:
			mine, others, err := l.scanVersion(ctx, a, key, v, ids, false)
			if errors.Is(err, stores.ErrNotFound) {
				return s, errSnapshotStale
			}
			if err != nil {
				return s, err
			}
			cur := v
			s.current, s.mine, s.others = &cur, mine, others
		default:
			mine, _, err := l.scanVersion(ctx, a, key, v, ids, true)
			if errors.Is(err, stores.ErrNotFound) {
				continue // deleted meanwhile: nothing left to hold the contact
			}
			if err != nil {
				return s, err
			}
			if mine > 0 {
				s.holding = append(s.holding, v.ID)
			}
		}
	}
	return s, nil
}

// scanVersion counts the batch's records and the other records in one
// version of a file; with firstOnly it stops at the batch's first record.
func (l *Locator) scanVersion(ctx context.Context, a Artefact, key string, v stores.ObjectVersion, ids idSet, firstOnly bool) (mine, others int64, err error) {
	rc, err := l.Objects.GetVersion(ctx, a.Bucket, key, v.ID)
	if err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	errFound := errors.New("found")
	field := quoted(a.Field)
	var owners []uint64
	err = eachLine(rc, func(line []byte) error {
		if owner, _ := lineOwner(line, field); owner != "" {
			owners = append(owners, l.files.hash(owner))
		}
		if recordIn(line, field, ids) {
			mine++
			if firstOnly {
				return errFound
			}
		} else if len(bytes.TrimSpace(line)) > 0 {
			others++
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return mine, others, nil // stopped early: not every owner was seen
	}
	if err == nil {
		l.files.remember(a.Bucket, key, v, owners)
	}
	return mine, others, err
}

// countFile counts what one data-lake file still holds of the batch: its
// records in the current version, plus one for each older version that
// holds any.
func (l *Locator) countFile(ctx context.Context, a Artefact, key string, ids idSet) (int64, error) {
	for attempt := 0; ; attempt++ {
		s, err := l.snapshotFile(ctx, a, key, ids)
		if errors.Is(err, errSnapshotStale) {
			if attempt < datalakeAttempts {
				continue
			}
			return 0, stores.Retryable(fmt.Errorf("data-lake file in %s: %w", a.Bucket, err))
		}
		if err != nil {
			return 0, err
		}
		return s.mine + int64(len(s.holding)), nil
	}
}

// rewriteFile removes the batch's records from one data-lake file, in one
// read and one write whatever the batch's size, and returns how many there
// were in its current version. The current version is streamed into a new
// one without them, every other record byte for byte; a file left with
// nothing is deleted; older versions holding any are deleted. A file whose
// versions never held a contact of the batch is never rewritten.
func (l *Locator) rewriteFile(ctx context.Context, a Artefact, key string, ids idSet) (int64, error) {
	unlock := l.fileLocks.Lock(a.Bucket + "/" + key)
	defer unlock()
	for attempt := 0; attempt < datalakeAttempts; attempt++ {
		if attempt > 0 {
			// Another writer is busy with this file: give it a moment.
			t := time.NewTimer(time.Duration(attempt*attempt) * 50 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, ctx.Err()
			case <-t.C:
			}
		}
		s, err := l.snapshotFile(ctx, a, key, ids)
		if errors.Is(err, errSnapshotStale) {
			continue
		}
		if err != nil {
			return 0, err
		}
		switch {
		case s.current == nil || s.mine == 0:
			// Nothing current to rewrite; only older versions with the
			// contact's records go (none: the file is not the contact's).
			if len(s.holding) == 0 {
				return 0, nil
			}
			return 0, l.Objects.DeleteVersions(ctx, a.Bucket, key, s.holding)
		case s.others == 0:
			// Only the contact's records: the file goes, with every version
			// listed, so deleting the current one cannot bring an older one
			// back as current. A version written since stays.
			return s.mine, l.Objects.DeleteVersions(ctx, a.Bucket, key, s.all)
		}
		written, err := l.writeWithout(ctx, a, key, ids, *s.current)
		if errors.Is(err, stores.ErrConflict) {
			continue
		}
		if err != nil {
			return 0, err
		}
		drop := slices.DeleteFunc(append(s.holding, s.current.ID), func(id string) bool { return id == written.ID })
		return s.mine, l.Objects.DeleteVersions(ctx, a.Bucket, key, drop)
	}
	return 0, stores.Retryable(fmt.Errorf("data-lake file in %s changed during each of %d rewrites: %w", a.Bucket, datalakeAttempts, stores.ErrConflict))
}

// writeWithout streams the version read into a new current version without
// the batch's records, on condition that it is still current.
func (l *Locator) writeWithout(ctx context.Context, a Artefact, key string, ids idSet, read stores.ObjectVersion) (stores.ObjectVersion, error) {
	rc, err := l.Objects.GetVersion(ctx, a.Bucket, key, read.ID)
	if errors.Is(err, stores.ErrNotFound) {
		return stores.ObjectVersion{}, stores.Retryable(fmt.Errorf("rewrite: %w", stores.ErrConflict))
	}
	if err != nil {
		return stores.ObjectVersion{}, err
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	copied := make(chan struct{})
	var kept []uint64
	go func() {
		defer close(copied)
		bw := bufio.NewWriterSize(pw, 64<<10)
		field := quoted(a.Field)
		err := eachLine(rc, func(line []byte) error {
			if recordIn(line, field, ids) {
				return nil
			}
			if owner, _ := lineOwner(line, field); owner != "" {
				kept = append(kept, l.files.hash(owner))
			}
			_, err := bw.Write(line)
			return err
		})
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	v, err := l.Objects.ReplaceIf(ctx, a.Bucket, key, read.ETag, pr)
	// Unblocks the copier if the write stopped reading early, and lets it
	// finish before rc is closed.
	pr.CloseWithError(errors.New("rewrite finished"))
	<-copied
	if err == nil {
		// What was written is known: the verification need not read it.
		l.files.replace(a.Bucket, key, read, v, kept)
	}
	return v, err
}

// quoted is a field name as it appears as a JSON key (data-map field names
// are identifiers, so nothing needs escaping).
func quoted(field string) []byte { return []byte(`"` + field + `"`) }
