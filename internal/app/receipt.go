package app

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/erasure-project/erasure/stores/receipt"
)

// defaultReceiptKey is the signing key's file name in the data directory.
const defaultReceiptKey = "receipt.key"

func (r ReceiptsConfig) validate() error {
	k := r.KeyFile
	switch {
	case k == "":
		return nil
	case strings.TrimSpace(k) != k:
		return errors.New("receipts.key_file has leading or trailing spaces")
	case strings.HasSuffix(k, "/") || strings.HasSuffix(k, string(filepath.Separator)) || filepath.Base(k) == ".":
		return fmt.Errorf("receipts.key_file %q names a directory, not a key file", k)
	}
	return nil
}

// ReceiptKeyFile is where the receipt signing key is read from.
func (c Config) ReceiptKeyFile() string {
	if c.Receipts.KeyFile != "" {
		return c.Receipts.KeyFile
	}
	return filepath.Join(c.DataDir, defaultReceiptKey)
}

// ReceiptKey loads the receipt signing key at start-up. The default key in
// the data directory is created, owner-only, on first use; a configured
// key_file must exist: it is a secret shared by every web API replica, and
// one created here would sign receipts no published key verifies.
func (c Config) ReceiptKey() (ed25519.PrivateKey, error) {
	if c.Receipts.KeyFile != "" {
		return c.ExistingReceiptKey()
	}
	return receipt.LoadOrCreateKey(c.ReceiptKeyFile())
}

// ExistingReceiptKey loads the receipt signing key and never creates one:
// a command run against the wrong data directory must not mint a key of
// its own.
func (c Config) ExistingReceiptKey() (ed25519.PrivateKey, error) {
	path := c.ReceiptKeyFile()
	if _, err := os.Stat(path); err != nil {
		if c.Receipts.KeyFile != "" {
			return nil, fmt.Errorf("receipts.key_file: %w (mount the signing key there, or leave key_file unset for a key in the data directory)", err)
		}
		return nil, fmt.Errorf("receipt key: %w (the web API creates it on its first start; or set receipts.key_file)", err)
	}
	return receipt.LoadOrCreateKey(path)
}
