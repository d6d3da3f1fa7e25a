package storetest

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// AuditTamperer changes a ledger's stored audit rows behind its back, as
// whoever can write its tables could.
type AuditTamperer interface {
	// DeleteAudit removes the entries with these seqs.
	DeleteAudit(t *testing.T, seqs ...int64)
	// InsertAudit stores e as it is, hash and signature included.
	InsertAudit(t *testing.T, e stores.AuditEntry)
}

// SignedLedger is a ledger that signs with the key it was opened with and
// can be scanned and tampered with.
type SignedLedger interface {
	stores.Ledger
	stores.AuditScanner
	AuditTamperer
}

// TestAuditTampering checks that a ledger signs what Complete, Amend and
// Refuse append, and that stores.VerifyAudit names the first seq of every
// kind of tampering a writer without the key can do. newLedger returns an
// empty ledger signing with key.
func TestAuditTampering(t *testing.T, newLedger func(t *testing.T, key ed25519.PrivateKey) SignedLedger) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)

	// Five entries: three decisions, a late result and a refusal, with an
	// anchor at the head.
	setup := func(t *testing.T) (SignedLedger, []stores.AuditEntry, []stores.Anchor) {
		t.Helper()
		l := newLedger(t, key)
		var first schemas.DeletionRequested
		for i := range 3 {
			r := Request(LedgerBase.Add(time.Duration(i)*time.Minute), NewUUID())
			MustPutRequest(t, l, r, LedgerBase.Add(time.Hour))
			if _, _, err := l.Complete(t.Context(), Outcome(r, schemas.StatusSucceeded, r.RequestedAt.Add(time.Second)), "Delete Contact"); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = r
			}
		}
		late := Result(first.RequestID, schemas.ChannelVoice, schemas.StatusSucceeded, LedgerBase.Add(5*time.Minute))
		MustPutResult(t, l, late)
		if _, created, err := l.Amend(t.Context(), late); err != nil || !created {
			t.Fatalf("Amend = %v, %v", created, err)
		}
		reused := first
		reused.ContactIDs, reused.RequestedBy = []string{NewUUID()}, "crm-service"
		if _, created, err := l.Refuse(t.Context(), schemas.DeletionCompleted{RequestID: first.RequestID, ContactIDs: reused.ContactIDs,
			RequestedBy: reused.RequestedBy, RequestedAt: LedgerBase.Add(6 * time.Minute), CompletedAt: LedgerBase.Add(6 * time.Minute),
			Source: reused.Source, RequestDigest: reused.ContentDigest()}, "Upstream Request"); err != nil || !created {
			t.Fatalf("Refuse = %v, %v", created, err)
		}
		newest := MustAudit(t, l, stores.AuditFilter{Limit: 10})
		if len(newest) != 5 {
			t.Fatalf("%d entries, want 5", len(newest))
		}
		entries := make([]stores.AuditEntry, 5)
		for _, e := range newest {
			entries[e.Seq-1] = e
		}
		return l, entries, []stores.Anchor{NewAnchorAt(entries[4], key)}
	}

	t.Run("EveryWriteIsSigned", func(t *testing.T) {
		l, entries, anchors := setup(t)
		for _, e := range entries {
			if err := stores.VerifyAuditSignature(e, pub); err != nil {
				t.Errorf("entry %d: %v", e.Seq, err)
			}
		}
		rep, err := stores.VerifyAudit(t.Context(), l, pub, anchors)
		if err != nil || rep.Entries != 5 || rep.Signed != 5 || rep.Unsigned != 0 || rep.Anchors != 1 {
			t.Fatalf("VerifyAudit = %+v, %v; want 5 signed entries and 1 anchor", rep, err)
		}
		if n, err := l.VerifyChain(t.Context()); err != nil || n != 5 {
			t.Fatalf("VerifyChain = %d, %v", n, err)
		}
	})

	rehashed := func(t *testing.T, e stores.AuditEntry) stores.AuditEntry {
		t.Helper()
		e.Channels[0].Artefacts[0].Deleted = 0
		h, err := stores.AuditHash(e)
		if err != nil {
			t.Fatal(err)
		}
		e.Hash = h
		return e
	}
	tests := []struct {
		name     string
		tamper   func(t *testing.T, l SignedLedger, entries []stores.AuditEntry, anchors []stores.Anchor) []stores.Anchor
		wantN    int64
		wantText []string
	}{
		{"edited count, hash recomputed without the key", func(t *testing.T, l SignedLedger, es []stores.AuditEntry, as []stores.Anchor) []stores.Anchor {
			l.DeleteAudit(t, 3)
			l.InsertAudit(t, rehashed(t, es[2]))
			return as
		}, 2, []string{"seq 3: signature does not verify"}},
		{"edited count, signature stripped", func(t *testing.T, l SignedLedger, es []stores.AuditEntry, as []stores.Anchor) []stores.Anchor {
			e := rehashed(t, es[3])
			e.Signature = ""
			l.DeleteAudit(t, 4)
			l.InsertAudit(t, e)
			return nil // and the anchors hidden
		}, 3, []string{"seq 4: unsigned entry after signed entries"}},
		{"deleted entry", func(t *testing.T, l SignedLedger, es []stores.AuditEntry, as []stores.Anchor) []stores.Anchor {
			l.DeleteAudit(t, 3)
			return as
		}, 2, []string{"seq 4: expected seq 3"}},
		{"swapped entries", func(t *testing.T, l SignedLedger, es []stores.AuditEntry, as []stores.Anchor) []stores.Anchor {
			l.DeleteAudit(t, 2, 3)
			a, b := es[2], es[1]
			a.Seq, b.Seq = 2, 3
			l.InsertAudit(t, a)
			l.InsertAudit(t, b)
			return as
		}, 1, []string{"seq 2:"}},
		{"swapped entries, rehashed", func(t *testing.T, l SignedLedger, es []stores.AuditEntry, as []stores.Anchor) []stores.Anchor {
			// Even with hashes recomputed for the new seqs (signatures
			// cannot be), the links give the order away first.
			l.DeleteAudit(t, 2, 3)
			a, b := es[2], es[1]
			a.Seq, b.Seq = 2, 3
			for _, e := range []*stores.AuditEntry{&a, &b} {
				h, err := stores.AuditHash(*e)
				if err != nil {
					t.Fatal(err)
				}
				e.Hash = h
			}
			l.InsertAudit(t, a)
			l.InsertAudit(t, b)
			return as
		}, 1, []string{"seq 2: prev_hash does not match"}},
		{"last two entries cut off", func(t *testing.T, l SignedLedger, es []stores.AuditEntry, as []stores.Anchor) []stores.Anchor {
			l.DeleteAudit(t, 4, 5)
			return as
		}, 3, []string{"truncated at seq 4", "anchor names seq 5"}},
		{"anchor edited", func(t *testing.T, l SignedLedger, es []stores.AuditEntry, as []stores.Anchor) []stores.Anchor {
			as[0].Hash = es[3].Hash
			as[0].Seq = 4
			return as
		}, 5, []string{"anchor at seq 4: signature does not verify"}},
		{"anchor signed by another key", func(t *testing.T, l SignedLedger, es []stores.AuditEntry, as []stores.Anchor) []stores.Anchor {
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			return []stores.Anchor{NewAnchorAt(es[4], other)}
		}, 5, []string{"anchor at seq 5: signature does not verify"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, entries, anchors := setup(t)
			anchors = tc.tamper(t, l, entries, anchors)
			rep, err := stores.VerifyAudit(t.Context(), l, pub, anchors)
			if err == nil || !errors.Is(err, stores.ErrPermanent) {
				t.Fatalf("VerifyAudit = %+v, %v; want a permanent error", rep, err)
			}
			for _, w := range tc.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("VerifyAudit error %q does not say %q", err, w)
				}
			}
			if rep.Entries != tc.wantN {
				t.Errorf("verified %d entries before the problem, want %d", rep.Entries, tc.wantN)
			}
		})
	}
}

// NewAnchorAt is the anchor of entry e signed with key.
func NewAnchorAt(e stores.AuditEntry, key ed25519.PrivateKey) stores.Anchor {
	return stores.NewAnchor(e.Seq, e.Hash, time.Now(), key)
}
