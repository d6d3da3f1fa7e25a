package app

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/erasure-project/erasure/consumers"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/receipt"
)

// EventsConfig holds the HMAC keys internal events (finalize, channel
// results, outcomes) are signed and verified with. Every process of a
// deployment needs the same keys. To rotate: add the new key everywhere,
// then set signing_key_id to it everywhere, then remove the old one.
//
// With no keys configured a process uses event.key in the data directory,
// created (0600) on the first start of `erasure up`: right for the embedded
// defaults, where every role shares one data directory, and wrong for
// replicas, which would each mint a key of their own.
type EventsConfig struct {
	Keys []EventKeyFile `yaml:"keys"`
	// SigningKeyID chooses the key to sign with; it may be left empty when
	// exactly one key is configured.
	SigningKeyID string `yaml:"signing_key_id"`
}

// EventKeyFile names a key and the file holding its secret (at least 32
// bytes; surrounding white space is ignored).
type EventKeyFile struct {
	ID   string `yaml:"id"`
	File string `yaml:"file"`
}

// DefaultEventKeyID is the ID of the key in the data directory.
const DefaultEventKeyID = "local"

const defaultEventKeyFile = "event.key"

// applyEnv reads ERASURE_EVENTS_KEYS ("id=file,id=file") and
// ERASURE_EVENTS_SIGNING_KEY_ID.
func (e *EventsConfig) applyEnv(lookup func(string) (string, bool)) error {
	if v, ok := lookup("ERASURE_EVENTS_KEYS"); ok {
		keys, err := parseKeyFiles("ERASURE_EVENTS_KEYS", v)
		if err != nil {
			return err
		}
		e.Keys = keys
	}
	if v, ok := lookup("ERASURE_EVENTS_SIGNING_KEY_ID"); ok {
		e.SigningKeyID = v
	}
	return nil
}

// EventKeyFile is where the default event key lives.
func (c Config) EventKeyFile() string { return filepath.Join(c.DataDir, defaultEventKeyFile) }

// EventKeys loads the keys of internal events. With none configured it
// uses the data directory's key, creating it when create is set (`erasure
// up` and the processes it starts); a client that only verifies passes
// false and gets fs.ErrNotExist when there is none.
func (c Config) EventKeys(create bool) (*schemas.Keyring, error) {
	if len(c.Events.Keys) == 0 {
		secret, err := loadOrCreateEventKey(c.EventKeyFile(), create)
		if err != nil {
			return nil, err
		}
		return schemas.NewKeyring(DefaultEventKeyID, schemas.EventKey{ID: DefaultEventKeyID, Secret: secret})
	}
	keys, err := readKeyFiles("events.keys", c.Events.Keys)
	if err != nil {
		return nil, err
	}
	sign := c.Events.SigningKeyID
	if sign == "" && len(keys) == 1 {
		sign = keys[0].ID
	}
	if sign == "" {
		return nil, errors.New("events.signing_key_id: required when several keys are configured")
	}
	return schemas.NewKeyring(sign, keys...)
}

// parseKeyFiles reads a key list from the environment variable name:
// "id=file,id=file".
func parseKeyFiles(name, v string) ([]EventKeyFile, error) {
	var keys []EventKeyFile
	for _, kv := range SplitList(v) {
		id, file, ok := strings.Cut(kv, "=")
		if !ok || id == "" || file == "" {
			return nil, fmt.Errorf("%s: want id=file[,id=file]", name)
		}
		keys = append(keys, EventKeyFile{ID: id, File: file})
	}
	return keys, nil
}

// readKeyFiles reads the secrets of keys; errors name the key, never the
// secret.
func readKeyFiles(section string, files []EventKeyFile) ([]schemas.EventKey, error) {
	var keys []schemas.EventKey
	for _, k := range files {
		raw, err := os.ReadFile(k.File)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("%s %s: %w", section, k.ID, err)
		}
		keys = append(keys, schemas.EventKey{ID: k.ID, Secret: bytes.TrimSpace(raw)})
	}
	return keys, nil
}

// UpstreamConfig names the upstream systems that may publish deletion
// requests to the requests topic: each signs its events (HMAC-SHA256 of the
// payload, hex, in the erasure-signature header, its key ID in
// erasure-key-id) with a key of its own, and the audit records
// upstream:<key id> as the request's producer beside the requester it
// claims. An unsigned request is refused to the dlq unless AllowUnsigned,
// when it is recorded as unsigned.
type UpstreamConfig struct {
	Keys          []EventKeyFile `yaml:"keys"`
	AllowUnsigned bool           `yaml:"allow_unsigned"`
}

// applyEnv reads ERASURE_UPSTREAM_KEYS ("id=file,id=file") and
// ERASURE_UPSTREAM_ALLOW_UNSIGNED.
func (u *UpstreamConfig) applyEnv(lookup func(string) (string, bool)) error {
	if v, ok := lookup("ERASURE_UPSTREAM_KEYS"); ok {
		keys, err := parseKeyFiles("ERASURE_UPSTREAM_KEYS", v)
		if err != nil {
			return err
		}
		u.Keys = keys
	}
	if v, ok := lookup("ERASURE_UPSTREAM_ALLOW_UNSIGNED"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("ERASURE_UPSTREAM_ALLOW_UNSIGNED: %w", err)
		}
		u.AllowUnsigned = b
	}
	return nil
}

// Producers loads who may publish deletion requests: erasure itself, with
// the internal event keys, and the upstream systems configured. An
// upstream key may not share an ID with an internal one, or the audit could
// not tell them apart.
func (c Config) Producers(internal *schemas.Keyring) (consumers.Producers, error) {
	p := consumers.Producers{Internal: internal, AllowUnsigned: c.Upstream.AllowUnsigned}
	keys, err := readKeyFiles("upstream.keys", c.Upstream.Keys)
	if err != nil {
		return p, err
	}
	for _, k := range keys {
		if internal.Has(k.ID) {
			return p, fmt.Errorf("upstream.keys %s: the ID of an event key; choose another", k.ID)
		}
	}
	if p.Upstream, err = schemas.NewKeyring("", keys...); err != nil {
		return p, fmt.Errorf("upstream.keys: %w", err)
	}
	return p, nil
}

func loadOrCreateEventKey(path string, create bool) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		return bytes.TrimSpace(raw), nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return nil, fmt.Errorf("event key in the data directory: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("event key: %w", err)
	}
	secret := []byte(hex.EncodeToString(b))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("event key: %w", err)
	}
	// O_EXCL: of two processes starting at once, one key wins and the
	// other reads it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateEventKey(path, false)
	}
	if err != nil {
		return nil, fmt.Errorf("event key: %w", err)
	}
	if _, err := f.Write(append(secret, '\n')); err != nil {
		f.Close()
		return nil, fmt.Errorf("event key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("event key: %w", err)
	}
	return secret, nil
}

// InitKeys creates, in dir, the keys every process of a deployment shares —
// event.key (HMAC of internal events) and receipt.key (Ed25519, signs
// receipts and audit entries) — keeping any that exist, and returns the
// receipt key's public half to publish.
func InitKeys(dir string) (created []string, public []byte, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("keys: %w", err)
	}
	for _, name := range []string{defaultEventKeyFile, defaultReceiptKey} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		created = append(created, name)
	}
	if _, err := loadOrCreateEventKey(filepath.Join(dir, defaultEventKeyFile), true); err != nil {
		return nil, nil, err
	}
	key, err := receipt.LoadOrCreateKey(filepath.Join(dir, defaultReceiptKey))
	if err != nil {
		return nil, nil, err
	}
	return created, receipt.EncodePublicKey(key.Public().(ed25519.PublicKey)), nil
}
