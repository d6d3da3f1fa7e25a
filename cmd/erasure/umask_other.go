//go:build !unix

package main

// restrictUmask does nothing where there is no umask; file modes there are
// not Unix permissions.
func restrictUmask() (restore func()) { return func() {} }
