package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/stores/receipt"
)

// `erasure keys init` makes the shared keys once, owner-only, keeps them on
// a rerun, and prints the public key receipts verify with; a configuration
// naming them loads them.
func TestKeysInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"keys", "init", "--dir", dir}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("keys init: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "created event.key and receipt.key") {
		t.Errorf("stderr %q", errb.String())
	}
	pub, err := receipt.DecodePublicKey(out.Bytes())
	if err != nil {
		t.Fatalf("printed public key: %v", err)
	}
	for _, name := range []string{"event.key", "receipt.key"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", name, err, fi.Mode().Perm())
		}
	}
	event, _ := os.ReadFile(filepath.Join(dir, "event.key"))
	out.Reset()
	errb.Reset()
	if code := run(t.Context(), []string{"keys", "init", "--dir", dir}, strings.NewReader(""), &out, &errb); code != 0 || !strings.Contains(errb.String(), "kept") {
		t.Fatalf("rerun: exit %d: %s", code, errb.String())
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "event.key")); !bytes.Equal(again, event) {
		t.Error("a rerun replaced the event key")
	}
	cfg := app.Default()
	cfg.DataDir = t.TempDir()
	cfg.Events.Keys = []app.EventKeyFile{{ID: "k1", File: filepath.Join(dir, "event.key")}}
	cfg.Receipts.KeyFile = filepath.Join(dir, "receipt.key")
	if _, err := cfg.EventKeys(false); err != nil {
		t.Errorf("configured event key: %v", err)
	}
	key, err := cfg.ReceiptKey()
	if err != nil || !pub.Equal(key.Public()) {
		t.Errorf("configured receipt key: %v", err)
	}
	if code := run(t.Context(), []string{"keys"}, strings.NewReader(""), &out, &errb); code != 2 {
		t.Errorf("keys without init: exit %d, want 2", code)
	}
}
