package stores_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

func auditEntry(t testing.TB) stores.AuditEntry {
	t.Helper()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	out := schemas.DeletionCompleted{RequestID: "0192f0c4-7d4a-7e5b-9c6d-0a1b2c3d4e5f", ContactIDs: []string{"3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f"},
		RequestedBy: "dpo", RequestedAt: at, CompletedAt: at.Add(3 * time.Second), Status: schemas.StatusSucceeded,
		Channels: []schemas.ChannelOutcome{{Channel: schemas.ChannelVoice, Status: schemas.StatusSucceeded,
			Artefacts: []schemas.ArtefactCount{{Artefact: "call_recordings", Before: 2, Deleted: 2}}}}}
	e, err := stores.NewAuditEntry(out, "Delete Contact", 2, strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// FuzzVerifyAuditLink: an audit entry read back from storage, however its
// stored form was altered, passes the chain check only if it says what was
// chained.
func FuzzVerifyAuditLink(f *testing.F) {
	e := auditEntry(f)
	good, err := json.Marshal(e)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"deleted":2`), []byte(`"deleted":1`), 1))
	f.Add(bytes.Replace(good, []byte(`"seq":2`), []byte(`"seq":3`), 1))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got stores.AuditEntry
		if json.Unmarshal(raw, &got) != nil {
			return
		}
		if stores.VerifyAuditLink(got, 1, e.PrevHash) != nil {
			return
		}
		a, _ := json.Marshal(stores.NormalizeAudit(got))
		b, _ := json.Marshal(stores.NormalizeAudit(e))
		if !bytes.Equal(a, b) {
			t.Fatalf("an altered entry passed the chain check:\n%s\n%s", a, b)
		}
	})
}
