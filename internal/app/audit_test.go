package app

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/disk"
	"github.com/erasure-project/erasure/stores/sqlite"
	"github.com/erasure-project/erasure/stores/storetest"
)

func TestAnchorerCadence(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, key, _ := ed25519.GenerateKey(nil)
	l := sqlite.NewLedger(db, sqlite.WithAuditKey(key))
	anchors := disk.NewAnchors(filepath.Join(dir, AnchorsFile))
	a := &anchorer{ledger: l, anchors: anchors, key: key, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), lastAt: time.Now()}
	complete := func(n int) {
		for range n {
			r := storetest.Request(storetest.LedgerBase, storetest.NewUUID())
			storetest.MustPutRequest(t, l, r, storetest.LedgerBase)
			if _, _, err := l.Complete(t.Context(), storetest.Outcome(r, schemas.StatusSucceeded, r.RequestedAt), "Delete Contact"); err != nil {
				t.Fatal(err)
			}
		}
	}
	heads := func() []int64 {
		list, err := anchors.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, an := range list {
			if err := stores.VerifyAnchor(an, key.Public().(ed25519.PublicKey)); err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, an.Seq)
		}
		return seqs
	}
	step := func(force bool) {
		if err := a.anchor(t.Context(), force); err != nil {
			t.Fatal(err)
		}
	}

	step(true) // empty log: nothing to anchor
	complete(2)
	step(false) // two entries, just anchored: not due
	if got := heads(); len(got) != 0 {
		t.Fatalf("anchors %v, want none yet", got)
	}
	a.lastAt = time.Now().Add(-anchorInterval)
	step(false) // a minute passed
	complete(int(anchorEvery))
	step(false) // anchorEvery entries appended
	step(false) // nothing new: no second anchor of the same head
	complete(1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := a.run(ctx); err != nil { // shutdown anchors the rest
		t.Fatal(err)
	}
	want := []int64{2, 2 + anchorEvery, 3 + anchorEvery}
	if got := heads(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("anchored seqs %v, want %v", got, want)
	}
}

func TestAnchorsConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		a  AnchorsConfig
		ok bool
	}{
		{AnchorsConfig{}, true},
		{AnchorsConfig{Kind: "file"}, true},
		{AnchorsConfig{Kind: "s3", Bucket: "audit-anchors", Retention: 24 * time.Hour, Mode: "compliance"}, true},
		{AnchorsConfig{Kind: "s3"}, false},
		{AnchorsConfig{Kind: "s3", Bucket: "b", Mode: "legal-hold"}, false},
		{AnchorsConfig{Kind: "tape"}, false},
	} {
		if err := tc.a.validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: validate = %v, want ok %v", tc.a, err, tc.ok)
		}
	}
}
