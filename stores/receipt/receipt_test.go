package receipt

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

const requestID = "0192f0c4-7d4a-7e5b-9c6d-0a1b2c3d4e5f"

// chain is two chained audit entries of one request and one of another,
// newest first as the ledger lists them.
func chain(t testing.TB) []stores.AuditEntry {
	t.Helper()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	purged := at.Add(2 * time.Second)
	out := schemas.DeletionCompleted{RequestID: requestID, ContactIDs: []string{"3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f"},
		RequestedBy: "dpo", RequestedAt: at, CompletedAt: at.Add(3 * time.Second), Status: schemas.StatusSucceeded,
		Channels: []schemas.ChannelOutcome{{Channel: schemas.ChannelVoice, Status: schemas.StatusSucceeded,
			Artefacts: []schemas.ArtefactCount{{Artefact: "call_recordings", Before: 2, Deleted: 2, Store: "disk", PurgedAt: &purged}}}}}
	e1, err := stores.NewAuditEntry(out, "Delete Contact", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	other := out
	other.RequestID = "0192f0c4-7d4a-7e5b-9c6d-0a1b2c3d4e60"
	e2, err := stores.NewAuditEntry(other, "Delete Contact", 2, e1.Hash)
	if err != nil {
		t.Fatal(err)
	}
	late := out
	late.CompletedAt = at.Add(9 * time.Second)
	e3, err := stores.NewAuditEntry(late, "Delete Contact", 3, e2.Hash)
	if err != nil {
		t.Fatal(err)
	}
	return []stores.AuditEntry{e3, e2, e1}
}

func signed(t *testing.T) (Receipt, ed25519.PublicKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(requestID, chain(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r, err = Sign(r, key); err != nil {
		t.Fatal(err)
	}
	return r, pub
}

func TestReceiptRoundTrip(t *testing.T) {
	r, pub := signed(t)
	if len(r.Entries) != 2 || r.Entries[0].Seq != 1 || r.Entries[1].Seq != 3 {
		t.Fatalf("entries %+v: want seq 1 and 3 of the request, in chain order", r.Entries)
	}
	// Through JSON, as a downloaded file is.
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Receipt
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if err := Verify(back, pub); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !strings.Contains(string(raw), `"purged_at":"2026-03-01T12:00:02Z"`) {
		t.Errorf("receipt does not state when the data was purged: %s", raw)
	}
}

func TestReceiptDetectsTampering(t *testing.T) {
	r, pub := signed(t)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	for name, tamper := range map[string]func(r *Receipt) ed25519.PublicKey{
		"count edited": func(r *Receipt) ed25519.PublicKey {
			r.Entries[0].Channels[0].Artefacts[0].After = 1
			return pub
		},
		"entry dropped": func(r *Receipt) ed25519.PublicKey { r.Entries = r.Entries[:1]; return pub },
		"actor edited":  func(r *Receipt) ed25519.PublicKey { r.Entries[1].Actor = "someone"; return pub },
		"issued later":  func(r *Receipt) ed25519.PublicKey { r.IssuedAt = r.IssuedAt.Add(time.Hour); return pub },
		"other key":     func(r *Receipt) ed25519.PublicKey { return otherKey.Public().(ed25519.PublicKey) },
		"resigned with an edited entry": func(r *Receipt) ed25519.PublicKey {
			// Whoever holds the key can re-sign, but not make an edited entry
			// hash as the chain does.
			r.Entries[0].Status = schemas.StatusFailed
			s, _ := Sign(*r, otherKey)
			*r = s
			return otherKey.Public().(ed25519.PublicKey)
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := r
			c.Entries = append([]stores.AuditEntry(nil), r.Entries...)
			c.Entries[0].Channels = []schemas.ChannelOutcome{r.Entries[0].Channels[0]}
			c.Entries[0].Channels[0].Artefacts = append([]schemas.ArtefactCount(nil), r.Entries[0].Channels[0].Artefacts...)
			key := tamper(&c)
			if err := Verify(c, key); err == nil {
				t.Fatal("tampered receipt verified")
			}
		})
	}
	if err := Verify(r, pub); err != nil {
		t.Fatalf("the untouched receipt no longer verifies: %v", err)
	}
}

func TestReceiptWithoutEntries(t *testing.T) {
	if _, err := New("0192f0c4-7d4a-7e5b-9c6d-0a1b2c3d4e61", chain(t), time.Now()); err == nil {
		t.Fatal("a receipt for a request with no audit entry")
	}
}

func TestKeyFileAndPublishedKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "receipt.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	pub := k1.Public().(ed25519.PublicKey)
	got, err := DecodePublicKey(EncodePublicKey(pub))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("PEM round trip: %v", err)
	}
	if _, err := DecodePublicKey([]byte("not a key")); err == nil {
		t.Error("garbage accepted as a public key")
	}
}

// Keys made by openssl load, and the published key is what openssl derives
// from them, so operators can make and publish keys with standard tools.
func TestOpenSSLKeys(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	keyPath, pubPath := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub")
	if out, err := exec.Command(openssl, "genpkey", "-algorithm", "ed25519", "-out", keyPath).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey: %v: %s", err, out)
	}
	if out, err := exec.Command(openssl, "pkey", "-in", keyPath, "-pubout", "-out", pubPath).CombinedOutput(); err != nil {
		t.Fatalf("openssl pkey: %v: %s", err, out)
	}
	key, err := LoadOrCreateKey(keyPath)
	if err != nil {
		t.Fatalf("openssl key does not load: %v", err)
	}
	raw, _ := os.ReadFile(pubPath)
	pub, err := DecodePublicKey(raw)
	if err != nil || !pub.Equal(key.Public()) {
		t.Fatalf("openssl public key: %v", err)
	}
	if string(EncodePublicKey(pub)) != string(raw) {
		t.Errorf("published key differs from openssl's:\n%s\n%s", EncodePublicKey(pub), raw)
	}
}
