package disk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/erasure-project/erasure/stores"
)

// Conditional operations. A key has one version on disk, its file, and the
// file's identity (see fileIdentity) serves as both version ID and ETag:
// every write renames a new file into place, so any write changes it.

// ListVersions returns the file of key as its only version, or none.
func (o *Objects) ListVersions(ctx context.Context, bucket, key string) ([]stores.ObjectVersion, error) {
	dir, path, err := o.objectPath(bucket, key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := requireBucket(dir); err != nil {
		return nil, err
	}
	id, err := identityAt(path)
	if errors.Is(err, stores.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, diskErr("objects: list versions", err)
	}
	return []stores.ObjectVersion{{ID: id, ETag: id, Current: true}}, nil
}

// GetVersion opens key if its file is still the version named, else
// returns ErrNotFound: a replaced file is gone.
func (o *Objects) GetVersion(ctx context.Context, bucket, key, versionID string) (io.ReadCloser, error) {
	f, fi, err := o.open(ctx, "objects: get version", bucket, key)
	if err != nil {
		return nil, err
	}
	if fileIdentity(fi) != versionID {
		f.Close()
		return nil, fmt.Errorf("objects: get version: %w", stores.ErrNotFound)
	}
	return f, nil
}

// ReplaceIf writes body to a temp file, then puts it in place of key only
// if key's file is still the one named by etag; otherwise it returns
// ErrConflict and the file at key is the other writer's. The replaced file
// is unlinked: there are no older versions on disk.
func (o *Objects) ReplaceIf(ctx context.Context, bucket, key, etag string, body io.Reader) (v stores.ObjectVersion, err error) {
	const op = "objects: conditional replace"
	dir, path, err := o.objectPath(bucket, key)
	if err != nil {
		return v, err
	}
	if err := requireBucket(dir); err != nil {
		return v, err
	}
	if etag == "" {
		return v, stores.Permanent(fmt.Errorf("%s: empty ETag", op))
	}
	// Hold the file that was read, so the temp-file cleaner leaves it alone
	// while a swap has it in the temp directory.
	old, err := openIdentified(path, etag)
	if err != nil {
		return v, wrapConflict(op, err)
	}
	defer old.Close()

	tmp, f, err := o.writeTemp(ctx, op, body)
	if err != nil {
		return v, err
	}
	installed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !installed {
			os.Remove(tmp)
		}
	}()
	fi, err := os.Lstat(tmp)
	if err != nil {
		return v, diskErr(op, err)
	}
	newID := fileIdentity(fi)
	if !renameOpen {
		if err := f.Close(); err != nil {
			return v, diskErr(op, err)
		}
		f = nil
	}
	installed, err = installIf(tmp, path, etag, newID)
	if err != nil {
		return v, wrapConflict(op, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return v, diskErr(op, err)
	}
	return stores.ObjectVersion{ID: newID, ETag: newID, Current: true}, nil
}

// DeleteVersions removes key's file if it is one of the versions named; a
// file written since (another identity) stays.
func (o *Objects) DeleteVersions(ctx context.Context, bucket, key string, versionIDs []string) error {
	const op = "objects: delete versions"
	dir, path, err := o.objectPath(bucket, key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := requireBucket(dir); err != nil {
		return err
	}
	id, err := identityAt(path)
	if errors.Is(err, stores.ErrNotFound) {
		return nil
	}
	if err != nil {
		return diskErr(op, err)
	}
	if !slices.Contains(versionIDs, id) {
		return nil
	}
	f, err := openIdentified(path, id)
	if errors.Is(err, stores.ErrConflict) || errors.Is(err, stores.ErrNotFound) {
		return nil // replaced or removed since the check: not a named version
	}
	if err != nil {
		return diskErr(op, err)
	}
	if !renameOpen {
		f.Close()
	} else {
		defer f.Close()
	}
	// Move whatever is at path aside, atomically, then look at what was
	// moved: a writer may have renamed a new file in since the check.
	aside, err := o.tempName("del-")
	if err != nil {
		return diskErr(op, err)
	}
	if err := os.Rename(path, aside); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return diskErr(op, err)
	}
	movedID, err := identityAt(aside)
	if err == nil && !slices.Contains(versionIDs, movedID) {
		// Another writer's file: back into place, unless a newer one has
		// arrived meanwhile, which would have replaced it anyway.
		if lerr := os.Link(aside, path); lerr != nil && !errors.Is(lerr, fs.ErrExist) {
			return diskErr(op, lerr)
		}
	}
	if err := os.Remove(aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return diskErr(op, err)
	}
	parent := filepath.Dir(path)
	if err := syncDir(parent); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return diskErr(op, err)
	}
	for d := parent; within(dir, d); d = filepath.Dir(d) {
		if os.Remove(d) != nil { // stops at the first directory not empty
			break
		}
	}
	return nil
}

// writeTemp streams body into a new, synced temp file and returns its path
// and the file, still open and locked where an open file can be renamed.
func (o *Objects) writeTemp(ctx context.Context, op string, body io.Reader) (path string, f *os.File, err error) {
	tmpDir := filepath.Join(o.root, diskTempDir)
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return "", nil, diskErr(op, err)
	}
	f, err = os.CreateTemp(tmpDir, "obj-*") // mode 0600
	if err != nil {
		return "", nil, diskErr(op, err)
	}
	path = f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if err := lockTemp(f); err != nil {
		return "", nil, diskErr(op, err)
	}
	buf := make([]byte, 256<<10)
	if _, err := io.CopyBuffer(f, ctxReader{ctx: ctx, r: body}, buf); err != nil {
		if ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		return "", nil, diskErr(op, err)
	}
	if err := f.Sync(); err != nil {
		return "", nil, diskErr(op, err)
	}
	return path, f, nil
}

// tempName returns an unused path in the temp directory.
func (o *Objects) tempName(prefix string) (string, error) {
	tmpDir := filepath.Join(o.root, diskTempDir)
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return "", err
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return filepath.Join(tmpDir, prefix+hex.EncodeToString(b)), nil
}

// identityAt is the identity of the regular file at path, or ErrNotFound.
func identityAt(path string) (string, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return "", stores.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", stores.ErrNotFound
	}
	return fileIdentity(fi), nil
}

// openIdentified opens the file at path and locks it if it is still the
// version id; ErrConflict if another file is there, ErrNotFound if none.
func openIdentified(path, id string) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, stores.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() || fileIdentity(fi) != id {
		f.Close()
		return nil, stores.ErrConflict
	}
	if err := lockTemp(f); err != nil {
		// Another conditional write or delete holds it right now.
		f.Close()
		return nil, stores.ErrConflict
	}
	return f, nil
}

// wrapConflict turns a lost race (the file changed or went since it was
// read) into a retryable ErrConflict and classifies other errors.
func wrapConflict(op string, err error) error {
	if errors.Is(err, stores.ErrConflict) || errors.Is(err, stores.ErrNotFound) {
		return stores.Retryable(fmt.Errorf("%s: %w", op, stores.ErrConflict))
	}
	return diskErr(op, err)
}

// installChecked checks that path still holds the version etag, then
// renames tmp over it: two steps, for file systems that cannot swap.
func installChecked(tmp, path, etag string) (bool, error) {
	id, err := identityAt(path)
	if err != nil {
		return false, err
	}
	if id != etag {
		return false, stores.ErrConflict
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, err
	}
	return true, nil
}
