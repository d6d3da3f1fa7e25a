//go:build unix

package disk

import (
	"fmt"
	"io/fs"
	"syscall"
)

// fileIdentity names one file: device and inode tell it from every other
// file present, size and modification time from a later file that reuses
// the inode number.
func fileIdentity(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%x-%x-%x-%x", uint64(st.Dev), uint64(st.Ino), fi.Size(), fi.ModTime().UnixNano())
	}
	return fmt.Sprintf("%x-%x", fi.Size(), fi.ModTime().UnixNano())
}
