package app

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The default key is created in the data directory, owner-only, and the
// same key is loaded again; commands that only read never create one.
func TestReceiptKeyDefault(t *testing.T) {
	cfg := Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	if _, err := cfg.ExistingReceiptKey(); err == nil {
		t.Fatal("ExistingReceiptKey without a key file succeeded")
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ExistingReceiptKey created the data directory: %v", err)
	}
	k1, err := cfg.ReceiptKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, "receipt.key")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v; want mode 0600", path, err)
	}
	k2, err := cfg.ExistingReceiptKey()
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reloaded key differs: %v", err)
	}
}

// A configured key_file is a mounted secret: it must exist, and is never
// invented.
func TestReceiptKeyFileMustExist(t *testing.T) {
	cfg := Default()
	cfg.DataDir = t.TempDir()
	cfg.Receipts.KeyFile = filepath.Join(t.TempDir(), "secret", "receipt.key")
	_, err := cfg.ReceiptKey()
	if err == nil || !strings.Contains(err.Error(), "receipts.key_file") {
		t.Fatalf("missing key_file: %v, want an error naming receipts.key_file", err)
	}
	if _, err := os.Stat(cfg.Receipts.KeyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a key was created at the configured key_file")
	}
	// A key made elsewhere (the default form) loads from key_file.
	made := Default()
	made.DataDir = filepath.Dir(cfg.Receipts.KeyFile)
	want, err := made.ReceiptKey()
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.ReceiptKey()
	if err != nil || !got.Equal(want) {
		t.Fatalf("key_file: %v", err)
	}
	os.WriteFile(cfg.Receipts.KeyFile, []byte("not a key"), 0o600)
	if _, err := cfg.ReceiptKey(); err == nil {
		t.Error("a key_file without a PEM key was accepted")
	}
}

func TestReceiptsConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "erasure.yaml")
	os.WriteFile(p, []byte("receipts:\n  key_file: keys/receipt.key\n"), 0o644)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "keys", "receipt.key"); cfg.ReceiptKeyFile() != want {
		t.Errorf("relative key_file is %s, want %s (next to the config file)", cfg.ReceiptKeyFile(), want)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	env := map[string]string{"ERASURE_RECEIPTS_KEY_FILE": "/run/secrets/receipt.key"}
	if err := cfg.applyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if cfg.ReceiptKeyFile() != "/run/secrets/receipt.key" {
		t.Errorf("ERASURE_RECEIPTS_KEY_FILE not applied: %s", cfg.ReceiptKeyFile())
	}
	for _, bad := range []string{"/run/secrets/", " /run/secrets/receipt.key", "."} {
		c := Default()
		c.Receipts.KeyFile = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "receipts.key_file") {
			t.Errorf("key_file %q: %v, want refused", bad, err)
		}
	}
	if Default().ReceiptKeyFile() != filepath.Join("erasure-data", "receipt.key") {
		t.Errorf("default key file %s", Default().ReceiptKeyFile())
	}
}
