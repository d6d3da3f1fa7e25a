package receipt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"
)

// FuzzVerify: whatever bytes a receipt file holds, Parse and Verify never
// panic, and a file that verifies against the signer's key says exactly
// what was signed.
func FuzzVerify(f *testing.F) {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	r, err := New(requestID, chain(f), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	if err != nil {
		f.Fatal(err)
	}
	if r, err = Sign(r, key); err != nil {
		f.Fatal(err)
	}
	good, err := json.Marshal(r)
	if err != nil {
		f.Fatal(err)
	}
	want, _ := canonical(r)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"deleted":2`), []byte(`"deleted":1`), 1))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := Parse(raw)
		if err != nil {
			return
		}
		if Verify(got, pub) != nil {
			return
		}
		c, err := canonical(got)
		if err != nil || !bytes.Equal(c, want) {
			t.Fatalf("a receipt other than the signed one verified:\n%s", c)
		}
	})
}
