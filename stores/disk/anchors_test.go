package disk

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

func TestFileAnchorsContract(t *testing.T) {
	storetest.TestAnchors(t, func(t *testing.T) stores.Anchors {
		return NewAnchors(filepath.Join(t.TempDir(), "audit-anchors.jsonl"))
	})
}

func TestFileAnchorsOwnerOnlyAndDamagedLineNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit-anchors.jsonl")
	a := NewAnchors(path)
	if err := a.Append(t.Context(), stores.Anchor{Seq: 1, Hash: "aa", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{not json\n")
	f.Close()
	if _, err := a.List(t.Context()); err == nil || err.Error() != "anchors: line 2 does not parse" {
		t.Fatalf("List = %v, want line 2 named", err)
	}
}
