package app

import (
	"os"
	"path/filepath"
	"testing"
)

// A data directory left open to others (an older version, another umask)
// is tightened: directories 0700, files 0600. A symlink is not followed.
func TestPrepareDataDirTightensExisting(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	outside := filepath.Join(root, "outside.txt")
	mustWrite := func(p string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(dir, "index.db"), filepath.Join(dir, "objects", "bkt", "a", "obj"), outside} {
		mustWrite(p)
	}
	for _, p := range []string{dir, filepath.Join(dir, "objects"), filepath.Join(dir, "objects", "bkt"), filepath.Join(dir, "objects", "bkt", "a")} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "index.db"), 0o664); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := PrepareDataDir(dir); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		dir: 0o700, filepath.Join(dir, "objects"): 0o700, filepath.Join(dir, "objects", "bkt", "a"): 0o700,
		filepath.Join(dir, "index.db"): 0o600, filepath.Join(dir, "objects", "bkt", "a", "obj"): 0o600,
		outside: 0o644, // reached only through a symlink: not the data dir's
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", p, got, want)
		}
	}
	// A new data directory is created private.
	fresh := filepath.Join(root, "fresh", "data")
	if err := PrepareDataDir(fresh); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("new data dir: mode %o, want 700", fi.Mode().Perm())
	}
}
