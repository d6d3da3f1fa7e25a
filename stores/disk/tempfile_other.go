//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos)

package disk

import (
	"io/fs"
	"os"
	"time"
)

// renameOpen is false where an open file cannot be renamed (Windows).
const renameOpen = false

// diskStaleTemp is how old a temp file must be to count as abandoned where
// there is no advisory lock to tell a live writer's file from a dead one's.
const diskStaleTemp = 24 * time.Hour

func lockTemp(*os.File) error { return nil }

func abandoned(_ string, fi fs.FileInfo) bool {
	return time.Since(fi.ModTime()) > diskStaleTemp
}
