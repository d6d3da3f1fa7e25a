package receipt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// Auditor is the ledger query receipts are built from.
type Auditor interface {
	Audit(ctx context.Context, f stores.AuditFilter) ([]stores.AuditEntry, error)
}

// ErrInvalidRequestID means the ID given is not a request ID.
var ErrInvalidRequestID = errors.New("not a request ID (a UUID in lower-case hex)")

// Entries returns every audit entry the ledger holds under requestID:
// the decision, late and refused entries (the ledger's request filter
// returns all three). The ledger answers in pages, so they are read page
// by page; an entry seen twice, because the log grew between two pages and
// shifted them, is kept once.
func Entries(ctx context.Context, l Auditor, requestID string) ([]stores.AuditEntry, error) {
	if !schemas.IsRequestID(requestID) {
		return nil, stores.Permanent(ErrInvalidRequestID)
	}
	f := stores.AuditFilter{RequestID: requestID, Limit: stores.AuditMaxLimit}
	seen := map[int64]bool{}
	var out []stores.AuditEntry
	for {
		page, err := l.Audit(ctx, f)
		if err != nil {
			return nil, err
		}
		added := 0
		for _, e := range page {
			if !seen[e.Seq] {
				seen[e.Seq] = true
				out = append(out, e)
				added++
			}
		}
		if len(page) < f.Limit || added == 0 {
			return out, nil
		}
		f.Offset += len(page)
	}
}

// Issue builds and signs the receipt of requestID from the ledger, issued
// at now. A request without a decision yet has no receipt (ErrNoEntries).
func Issue(ctx context.Context, l Auditor, requestID string, key ed25519.PrivateKey, now time.Time) (Receipt, error) {
	entries, err := Entries(ctx, l, requestID)
	if err != nil {
		return Receipt{}, err
	}
	r, err := New(requestID, entries, now)
	if err != nil {
		return Receipt{}, err
	}
	return Sign(r, key)
}

// Marshal is the file form of a receipt: indented JSON and a final newline.
// Layout does not matter to the signature, which covers the canonical form.
func Marshal(r Receipt) ([]byte, error) {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("receipt: encode: %w", err)
	}
	return append(raw, '\n'), nil
}

// Parse reads a receipt file strictly. Verify checks the members it knows,
// so a member the format does not have, a member given twice (a reader may
// take the first, Go takes the last) or anything after the receipt could
// show a reader text the signature does not cover; all three are refused.
func Parse(raw []byte) (Receipt, error) {
	if err := noDuplicateKeys(raw); err != nil {
		return Receipt{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var r Receipt
	if err := dec.Decode(&r); err != nil {
		return Receipt{}, fmt.Errorf("not a receipt: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Receipt{}, errors.New("not a receipt: data after the receipt")
	}
	return r, nil
}

// noDuplicateKeys walks the JSON tokens and refuses an object that names a
// member twice.
func noDuplicateKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	// One entry per open object or array; an object's set holds the keys
	// seen so far, an array's is nil.
	var stack []map[string]bool
	expectKey := func() bool { return len(stack) > 0 && stack[len(stack)-1] != nil }
	afterKey := false // the last token was an object key; its value follows
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a receipt: %w", err)
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, map[string]bool{})
			case '[':
				stack = append(stack, nil)
			default:
				stack = stack[:len(stack)-1]
			}
			afterKey = false
			continue
		}
		if expectKey() && !afterKey {
			k := tok.(string) // the decoder only yields strings as keys
			if stack[len(stack)-1][k] {
				return fmt.Errorf("not a receipt: member %q given twice", k)
			}
			stack[len(stack)-1][k] = true
			afterKey = true
			continue
		}
		afterKey = false
	}
}
