//go:build unix

package main

import "syscall"

// restrictUmask makes the files and directories this process creates from
// now on readable by their owner only (0600 and 0700 for the usual 0666
// and 0777), until restore is called.
func restrictUmask() (restore func()) {
	old := syscall.Umask(0o077)
	return func() { syscall.Umask(old) }
}
