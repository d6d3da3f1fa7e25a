// Package receipt issues and checks signed deletion receipts: a JSON
// document that states, for one request, every audit entry the ledger holds
// for it (the outcome and any result that arrived after it), with counts
// before and after and when each store physically purged the data, signed
// with Ed25519 so that anyone holding the published public key can check it
// without access to the ledger.
package receipt

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// Type and Version identify the receipt format.
const (
	Type    = "DeletionReceipt"
	Version = 1
)

// Receipt is one request's signed account of its deletion.
type Receipt struct {
	Type      string              `json:"type"`
	Version   int                 `json:"version"`
	RequestID string              `json:"request_id"`
	IssuedAt  time.Time           `json:"issued_at"`
	Setting   string              `json:"setting"`
	Entries   []stores.AuditEntry `json:"entries"`
	// KeyID names the signing key: the first 16 hex digits of the SHA-256
	// of the public key, so a verifier can pick the right published key
	// after a rotation.
	KeyID     string `json:"key_id"`
	Signature string `json:"signature,omitempty"`
}

// ErrNoEntries means the ledger has no audit entry for the request.
var ErrNoEntries = errors.New("no audit entry for this request")

// New builds the unsigned receipt of a request from its audit entries, in
// chain order. Refused entries are left out: they record another
// submission that reused the request ID (its contacts, its requester) and
// deleted nothing, so they are no part of this deletion's account.
func New(requestID string, entries []stores.AuditEntry, issuedAt time.Time) (Receipt, error) {
	var mine []stores.AuditEntry
	for _, e := range entries {
		if e.RequestID == requestID && (e.IsDecision() || e.Amends > 0) {
			mine = append(mine, stores.NormalizeAudit(e))
		}
	}
	if len(mine) == 0 {
		return Receipt{}, stores.Permanent(ErrNoEntries)
	}
	// The ledger lists entries newest first; a receipt reads in chain order.
	slices.SortFunc(mine, func(a, b stores.AuditEntry) int { return cmp.Compare(a.Seq, b.Seq) })
	return Receipt{Type: Type, Version: Version, RequestID: requestID, IssuedAt: issuedAt.UTC().Truncate(time.Second),
		Setting: stores.AuditSetting, Entries: mine}, nil
}

// KeyID is the identifier of a public key in receipts.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign signs r with key and returns it with KeyID and Signature set.
func Sign(r Receipt, key ed25519.PrivateKey) (Receipt, error) {
	r.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	r.Signature = ""
	msg, err := canonical(r)
	if err != nil {
		return r, err
	}
	r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))
	return r, nil
}

// Verify checks a receipt's signature with pub and that its entries hash as
// the audit chain does, so an entry cannot be edited without the signature
// or its hash failing.
func Verify(r Receipt, pub ed25519.PublicKey) error {
	if r.Type != Type || r.Version != Version {
		return fmt.Errorf("not a version %d %s", Version, Type)
	}
	if r.KeyID != KeyID(pub) {
		return fmt.Errorf("receipt was signed with key %s, not with the given key %s", r.KeyID, KeyID(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("signature is not a base64 Ed25519 signature")
	}
	unsigned := r
	unsigned.Signature = ""
	msg, err := canonical(unsigned)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, sig) {
		return errors.New("signature does not match the receipt")
	}
	for _, e := range r.Entries {
		h, err := stores.AuditHash(e)
		if err != nil {
			return err
		}
		if h != e.Hash {
			return fmt.Errorf("entry seq %d does not match its audit hash", e.Seq)
		}
		if e.RequestID != r.RequestID {
			return fmt.Errorf("entry seq %d belongs to another request", e.Seq)
		}
	}
	return nil
}

// canonical is the signed form: the receipt's JSON with object keys sorted,
// no insignificant whitespace and no HTML escaping, so any JSON library can
// reproduce it.
func canonical(r Receipt) ([]byte, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("receipt: encode: %w", err)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("receipt: canonicalise: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("receipt: canonicalise: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

const (
	privatePEM = "PRIVATE KEY"
	publicPEM  = "PUBLIC KEY"
)

// LoadOrCreateKey reads the Ed25519 signing key at path (PKCS #8 in a PEM
// "PRIVATE KEY" block, as `openssl genpkey -algorithm ed25519` writes it),
// creating it, readable by its owner only, when it does not exist.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("receipt key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("receipt key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("receipt key: %w", err)
		}
		if err := pem.Encode(f, &pem.Block{Type: privatePEM, Bytes: der}); err != nil {
			f.Close()
			return nil, fmt.Errorf("receipt key: %w", err)
		}
		return key, f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != privatePEM {
		return nil, fmt.Errorf("receipt key %s: want a PEM %q block (PKCS #8 Ed25519)", path, privatePEM)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	key, ok := k.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("receipt key %s: not a PKCS #8 Ed25519 private key", path)
	}
	return key, nil
}

// EncodePublicKey is the published form of a public key: PKIX in a PEM
// "PUBLIC KEY" block, which openssl and every TLS library read.
func EncodePublicKey(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // an ed25519.PublicKey always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: publicPEM, Bytes: der})
}

// DecodePublicKey reads a published public key: the PEM form, or the 32
// raw key bytes in base64.
func DecodePublicKey(raw []byte) (ed25519.PublicKey, error) {
	if b, _ := pem.Decode(raw); b != nil {
		if b.Type != publicPEM {
			return nil, fmt.Errorf("want a PEM %q block (PKIX Ed25519)", publicPEM)
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		pub, ok := k.(ed25519.PublicKey)
		if err != nil || !ok {
			return nil, errors.New("not a PKIX Ed25519 public key")
		}
		return pub, nil
	}
	k, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, errors.New("public key is neither PEM nor a base64 Ed25519 key")
	}
	return ed25519.PublicKey(k), nil
}
