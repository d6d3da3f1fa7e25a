package storetest

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// TestAnchors checks an Anchors implementation. newAnchors must return
// empty storage of its own for every call.
func TestAnchors(t *testing.T, newAnchors func(t *testing.T) stores.Anchors) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	t.Run("EmptyListsNothing", func(t *testing.T) {
		got, err := newAnchors(t).List(t.Context())
		if err != nil || len(got) != 0 {
			t.Fatalf("List = %v, %v; want nothing", got, err)
		}
	})
	t.Run("AppendThenListInSeqOrder", func(t *testing.T) {
		a := newAnchors(t)
		now := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
		want := []stores.Anchor{
			stores.NewAnchor(3, "33", now, key),
			stores.NewAnchor(10, "aa", now.Add(time.Minute), key),
			stores.NewAnchor(120, "ff", now.Add(2*time.Minute), key),
		}
		for _, i := range []int{1, 0, 2} {
			if err := a.Append(t.Context(), want[i]); err != nil {
				t.Fatalf("Append(seq %d): %v", want[i].Seq, err)
			}
		}
		got, err := a.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("List = %d anchors, want %d", len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Seq != w.Seq || g.Hash != w.Hash || !g.Time.Equal(w.Time) || g.Signature != w.Signature {
				t.Errorf("anchor %d = %+v, want %+v", i, g, w)
			}
			if err := stores.VerifyAnchor(g, pub); err != nil {
				t.Errorf("stored anchor %d: %v", i, err)
			}
		}
	})
}
