package receipt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// pagedLedger answers Audit as the ledgers do: newest first, filtered by
// request, in pages of at most the filter's limit.
type pagedLedger struct {
	entries []stores.AuditEntry // newest first
	calls   int
}

func (l *pagedLedger) Audit(_ context.Context, f stores.AuditFilter) ([]stores.AuditEntry, error) {
	l.calls++
	var out []stores.AuditEntry
	for _, e := range l.entries {
		if f.RequestID == "" || e.RequestID == f.RequestID {
			out = append(out, e)
		}
	}
	out = out[min(f.Offset, len(out)):]
	return out[:min(f.Limit, len(out))], nil
}

func TestEntriesReadsEveryPage(t *testing.T) {
	l := &pagedLedger{}
	for seq := int64(stores.AuditMaxLimit + 5); seq > 0; seq-- {
		l.entries = append(l.entries, stores.AuditEntry{Seq: seq, RequestID: requestID})
	}
	got, err := Entries(t.Context(), l, requestID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != stores.AuditMaxLimit+5 || l.calls != 2 {
		t.Fatalf("%d entries in %d calls, want %d in 2", len(got), l.calls, stores.AuditMaxLimit+5)
	}
	if _, err := Entries(t.Context(), l, "0192F0C4-7D4A-7E5B-9C6D-0A1B2C3D4E5F"); !errors.Is(err, ErrInvalidRequestID) {
		t.Errorf("an upper-case ID: %v, want ErrInvalidRequestID", err)
	}
}

// A refused entry records another submission under the same ID: it is not
// part of the receipt, which still verifies.
func TestIssueLeavesOutRefusedEntries(t *testing.T) {
	entries := chain(t)
	refused, err := stores.NewAuditEntry(schemas.DeletionCompleted{RequestID: requestID, ContactIDs: []string{"9e2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f"},
		RequestedBy: "someone-else", Status: schemas.StatusRefused, ErrorCode: "request_id_conflict"}, "Upstream Request", 4, entries[0].Hash)
	if err != nil {
		t.Fatal(err)
	}
	l := &pagedLedger{entries: append([]stores.AuditEntry{refused}, entries...)}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	r, err := Issue(t.Context(), l, requestID, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != 2 || r.Entries[0].Seq != 1 || r.Entries[1].Seq != 3 {
		t.Fatalf("entries %+v: want seq 1 and 3", r.Entries)
	}
	if err := Verify(r, pub); err != nil {
		t.Fatal(err)
	}
	// Only a refused entry: nothing was deleted under this ID.
	l.entries = []stores.AuditEntry{refused}
	if _, err := Issue(t.Context(), l, requestID, key, time.Now()); !errors.Is(err, ErrNoEntries) {
		t.Errorf("receipt of a refused submission only: %v, want ErrNoEntries", err)
	}
}

func TestFileFormRoundTrip(t *testing.T) {
	r, pub := signed(t)
	raw, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(back, pub); err != nil {
		t.Fatalf("Verify after Marshal and Parse: %v", err)
	}
	text := string(raw)
	for name, tc := range map[string]struct{ edit, want string }{
		"unknown member": {strings.Replace(text, `"type":`, `"note": "all deleted", "type":`, 1), "unknown field"},
		"member twice":   {strings.Replace(text, `"deleted": 2,`, `"deleted": 5, "deleted": 2,`, 1), `member "deleted" given twice`},
		"data after":     {text + `{"type":"DeletionReceipt"}`, "data after the receipt"},
		"not JSON":       {"receipt", "not a receipt"},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.edit == text {
				t.Fatal("the edit changed nothing")
			}
			if _, err := Parse([]byte(tc.edit)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
