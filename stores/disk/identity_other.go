//go:build !unix

package disk

import (
	"fmt"
	"io/fs"
)

// fileIdentity names one file by size and modification time: every write
// creates a new file, so both are the write's.
func fileIdentity(fi fs.FileInfo) string {
	return fmt.Sprintf("%x-%x", fi.Size(), fi.ModTime().UnixNano())
}
