//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos

package disk

import (
	"io/fs"
	"os"
	"syscall"
)

// renameOpen: the temp file stays open, and locked, until it is renamed
// into place, so no cleaner can take it for abandoned before then.
const renameOpen = true

// lockTemp marks a temp file as being written by a live process. The kernel
// drops the lock when the process dies, however it dies.
func lockTemp(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// abandoned reports whether no live writer holds the temp file at path.
func abandoned(path string, _ fs.FileInfo) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	// Closing f releases the lock taken here.
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
