package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// PrepareDataDir creates the data directory readable by its owner only, and
// tightens what is already there: the embedded stores keep personal data
// in it (databases, objects, the broker's segments), so every directory
// under it is made 0700 and every file 0600. A data directory created by an
// older version or under a looser umask is tightened on every start, not
// only new ones.
//
// Errors name the data directory but not the file: paths under it hold
// object keys.
func PrepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != dir {
				return nil // removed meanwhile, by a store of a running process
			}
			return err
		}
		want := fs.FileMode(0o600)
		switch {
		case d.IsDir():
			want = 0o700
		case !d.Type().IsRegular():
			return nil // a symlink's mode is not its own, and chmod would follow it
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm() == want {
			return nil
		}
		if err := os.Chmod(path, want); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
		}
		return fmt.Errorf("data dir %s: tighten permissions: %w", dir, err)
	}
	return nil
}
