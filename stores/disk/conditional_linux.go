package disk

import (
	"errors"
	"os"

	"github.com/erasure-project/erasure/stores"
	"golang.org/x/sys/unix"
)

// installIf puts the file at tmp in place of the file at path if that is
// still the version etag. It swaps the two atomically (renameat2 with
// RENAME_EXCHANGE), so a reader never finds path missing, then checks what
// it swapped out: the version read is unlinked; another writer's file is
// swapped back and ErrConflict returned. installed reports whether tmp's
// file is now at path (tmp is then gone or holds the replaced file, which
// this removes).
func installIf(tmp, path, etag, newID string) (installed bool, err error) {
	if err := exchange(tmp, path); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, stores.ErrConflict // removed since it was read
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
			return installChecked(tmp, path, etag) // the file system cannot swap
		}
		return false, err
	}
	out, err := identityAt(tmp)
	if err == nil && out == etag {
		return true, removeIfPresent(tmp)
	}
	// A writer renamed its file in after the read. Swap back; if a still
	// newer file replaced ours meanwhile, that one wins, as it would have
	// over the writer's file anyway.
	if err := exchange(tmp, path); err != nil {
		return true, err
	}
	if back, err := identityAt(tmp); err == nil && back != newID {
		if err := exchange(tmp, path); err != nil {
			return true, err
		}
	}
	return false, stores.ErrConflict
}

func exchange(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}

func removeIfPresent(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
