package locate

import (
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// A rewritten version is forgotten when its rewrite is remembered, so what
// the index holds is what the current files hold, not every version ever
// read; the new version is still known not to hold other contacts.
func TestFileIndexForgetsRewrittenVersions(t *testing.T) {
	var x fileIndex
	const a, b, c = "1b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b", "2b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b", "3b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"
	v1 := stores.ObjectVersion{ID: "v1", ETag: "e1"}
	v2 := stores.ObjectVersion{ID: "v2", ETag: "e2"}
	x.remember("lake", "f", v1, []uint64{x.hash(a), x.hash(b), x.hash(b)})
	if x.n != 2 || !x.skip("lake", "f", v1, newIDSet([]string{c})) || x.skip("lake", "f", v1, newIDSet([]string{a})) {
		t.Fatalf("after the first read: n=%d, skip wrong", x.n)
	}
	x.replace("lake", "f", v1, v2, []uint64{x.hash(b)}) // a's record removed
	if len(x.m) != 1 || x.n != 1 {
		t.Fatalf("after the rewrite: %d versions, %d hashes; want 1 and 1", len(x.m), x.n)
	}
	if x.skip("lake", "f", v1, newIDSet([]string{c})) {
		t.Error("the rewritten version is still remembered")
	}
	if !x.skip("lake", "f", v2, newIDSet([]string{a, c})) || x.skip("lake", "f", v2, newIDSet([]string{b})) {
		t.Error("the new version is not remembered as holding b alone")
	}
}
