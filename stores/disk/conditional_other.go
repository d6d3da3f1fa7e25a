//go:build !linux

package disk

// installIf puts the file at tmp in place of the file at path if that is
// still the version etag. Without an atomic swap the check and the rename
// are two steps: a writer that renames its file in between is overwritten.
// Linux, where the product runs, swaps atomically instead.
func installIf(tmp, path, etag, _ string) (installed bool, err error) {
	return installChecked(tmp, path, etag)
}
