package schemas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
)

// Signed reports whether events of type typ are signed when erasure
// publishes them: finalize, channel results, outcomes and legal holds are
// produced only by erasure's own processes (a forged lift would let a held
// contact be erased), and the deletion requests of the web API, the CLI
// and replays are signed so that the audit can tell them from an upstream
// system's, which signs with a producer key of its own.
func Signed(typ string) bool {
	return typ == TypeFinalizeRequested || typ == TypeChannelCompleted || typ == TypeDeletionCompleted ||
		typ == TypeHoldRequested || typ == TypeDeletionRequested
}

// keyIDPattern is what a key ID may be: it is recorded in the audit log as
// part of a producer's identity.
var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckKeyID refuses a key ID that could not be recorded as it is.
func CheckKeyID(id string) error {
	if !keyIDPattern.MatchString(id) {
		return fmt.Errorf("key id %q: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// MinEventKeyBytes is the shortest event key accepted.
const MinEventKeyBytes = 32

// EventKey is one HMAC key for internal events.
type EventKey struct {
	ID     string
	Secret []byte
}

// Keyring signs internal events with one key and verifies them with any of
// several, so that a key can be rotated: add the new key everywhere, switch
// signing to it, then remove the old one.
type Keyring struct {
	signID string
	keys   map[string][]byte
}

// NewKeyring returns a keyring that signs with signID and verifies with
// every key given. signID may be empty for a process that only verifies.
func NewKeyring(signID string, keys ...EventKey) (*Keyring, error) {
	k := &Keyring{signID: signID, keys: map[string][]byte{}}
	for _, key := range keys {
		if key.ID == "" {
			return nil, errors.New("event key: empty id")
		}
		if err := CheckKeyID(key.ID); err != nil {
			return nil, fmt.Errorf("event key: %w", err)
		}
		if len(key.Secret) < MinEventKeyBytes {
			return nil, fmt.Errorf("event key %s: shorter than %d bytes", key.ID, MinEventKeyBytes)
		}
		if _, dup := k.keys[key.ID]; dup {
			return nil, fmt.Errorf("event key %s: listed twice", key.ID)
		}
		k.keys[key.ID] = key.Secret
	}
	if signID != "" && k.keys[signID] == nil {
		return nil, fmt.Errorf("event signing key %s is not among the configured keys", signID)
	}
	return k, nil
}

// Has reports whether the keyring holds a key named id.
func (k *Keyring) Has(id string) bool {
	if k == nil {
		return false
	}
	_, ok := k.keys[id]
	return ok
}

// IDs returns the IDs of the keys held.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// SigningKeyID is the ID of the key Sign uses.
func (k *Keyring) SigningKeyID() string { return k.signID }

// Sign returns the key ID and signature of payload, the exact bytes that
// are published.
func (k *Keyring) Sign(payload []byte) (keyID, sig string, err error) {
	if k == nil || k.signID == "" {
		return "", "", errors.New("no event signing key configured")
	}
	return k.signID, mac(k.keys[k.signID], payload), nil
}

// Verify checks sig over payload with the key named keyID. Failures are
// ErrInvalidEvent and name only the topic and key ID, never the payload.
func (k *Keyring) Verify(topic, keyID, sig string, payload []byte) error {
	if keyID == "" || sig == "" {
		return fmt.Errorf("%w: unsigned event on %s", ErrInvalidEvent, topic)
	}
	if k == nil {
		return fmt.Errorf("%w: event on %s signed with key %q: no event keys configured", ErrInvalidEvent, topic, keyID)
	}
	secret, ok := k.keys[keyID]
	if !ok {
		return fmt.Errorf("%w: event on %s signed with unknown key %q", ErrInvalidEvent, topic, keyID)
	}
	want, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(want, macBytes(secret, payload)) {
		return fmt.Errorf("%w: event on %s has a bad signature for key %q", ErrInvalidEvent, topic, keyID)
	}
	return nil
}

func macBytes(secret, payload []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(payload)
	return h.Sum(nil)
}

func mac(secret, payload []byte) string { return hex.EncodeToString(macBytes(secret, payload)) }
