package stores

import (
	"crypto/ed25519"
	"testing"
)

// A signature is not part of the hash, so signing an entry, or reading an
// old one without a signature, never changes its hash.
func TestAuditHashIgnoresSignature(t *testing.T) {
	e := NormalizeAudit(AuditEntry{Seq: 1, RequestID: "r", Setting: AuditSetting})
	h, err := AuditHash(e)
	if err != nil {
		t.Fatal(err)
	}
	e.Hash = h
	_, key, _ := ed25519.GenerateKey(nil)
	SignAudit(&e, key)
	if e.Signature == "" {
		t.Fatal("not signed")
	}
	if h2, _ := AuditHash(e); h2 != h {
		t.Fatalf("hash changed with the signature: %s, want %s", h2, h)
	}
	if err := VerifyAuditSignature(e, key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	// The same key's anchor signature does not pass: entry and anchor
	// signatures are domain-separated.
	e.Signature = NewAnchor(1, h, e.CompletedAt, key).Signature
	if err := VerifyAuditSignature(e, key.Public().(ed25519.PublicKey)); err == nil {
		t.Fatal("an anchor signature verified as an entry signature")
	}
}
