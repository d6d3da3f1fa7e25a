package webapi

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/receipt"
)

// auditChain is a hashed audit log: the decision of requestByDPO, another
// request's decision, a late voice result of requestByDPO and a refused
// submission that reused its ID, newest first as the ledger lists them.
func auditChain(t *testing.T) []stores.AuditEntry {
	t.Helper()
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	out := schemas.DeletionCompleted{RequestID: requestByDPO, ContactIDs: []string{contactB}, RequestedBy: "dpo",
		RequestedAt: at, CompletedAt: at.Add(3 * time.Second), Status: schemas.StatusFailed, ErrorCode: "deadline_exceeded",
		Channels: []schemas.ChannelOutcome{{Channel: schemas.ChannelVoice, Status: schemas.StatusFailed}}}
	decision, err := stores.NewAuditEntry(out, "Delete Contact", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	other := out
	other.RequestID, other.Status, other.ErrorCode = "01900000-0000-7000-8000-000000000002", schemas.StatusSucceeded, ""
	e2, err := stores.NewAuditEntry(other, "Delete Contact", 2, decision.Hash)
	if err != nil {
		t.Fatal(err)
	}
	purgeBy := at.Add(time.Hour)
	late, err := stores.LateAuditEntry(decision, schemas.ChannelCompleted{RequestID: requestByDPO, Channel: schemas.ChannelVoice,
		Status: schemas.StatusSucceeded, CompletedAt: at.Add(40 * time.Second),
		Artefacts: []schemas.ArtefactCount{{Artefact: "call_recordings", Before: 2, Deleted: 2, Store: "sqlite", PurgeBy: &purgeBy, PurgeJob: "vacuum"}}},
		3, e2.Hash)
	if err != nil {
		t.Fatal(err)
	}
	refused := out
	refused.ContactIDs, refused.RequestedBy, refused.Status, refused.ErrorCode = []string{contactA}, "crm-service", schemas.StatusRefused, "request_id_conflict"
	e4, err := stores.NewAuditEntry(refused, "Upstream Request", 4, late.Hash)
	if err != nil {
		t.Fatal(err)
	}
	return []stores.AuditEntry{e4, late, e2, decision}
}

func readAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestReceiptDownload: an auditor downloads a request's receipt as a file;
// it holds the decision and the late entry, not the refused submission, and
// verifies with the key the public endpoint publishes to anyone.
func TestReceiptDownload(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	h.ledger.mu.Lock()
	h.ledger.audit = auditChain(t)
	h.ledger.mu.Unlock()

	res := h.do(caller{}, "GET", "/api/v1/receipts/public-key", nil, false)
	pemKey := readAll(t, res)
	pub, err := receipt.DecodePublicKey(pemKey)
	if err != nil {
		t.Fatalf("published key: %v\n%s", err, pemKey)
	}
	if got := res.Header.Get("X-Receipt-Key-ID"); got != receipt.KeyID(pub) {
		t.Errorf("X-Receipt-Key-ID %q, want %q", got, receipt.KeyID(pub))
	}

	res = h.do(h.login("auditor"), "GET", "/api/v1/audit/"+requestByDPO+"/receipt", nil, false)
	raw := readAll(t, res)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, raw)
	}
	for k, want := range map[string]string{
		"Content-Disposition": `attachment; filename="deletion-receipt-` + requestByDPO + `.json"`,
		"Content-Type":        "application/json; charset=utf-8",
		"Cache-Control":       "no-store",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	r, err := receipt.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := receipt.Verify(r, pub); err != nil {
		t.Fatalf("downloaded receipt does not verify: %v", err)
	}
	if r.RequestID != requestByDPO || len(r.Entries) != 2 || r.Entries[0].Seq != 1 || r.Entries[1].Amends != 1 {
		t.Errorf("receipt %s with entries %+v: want the decision (seq 1) and its late entry", r.RequestID, r.Entries)
	}
	if pb := r.Entries[1].Channels[0].Artefacts[0]; pb.PurgeBy == nil || pb.PurgeJob != "vacuum" {
		t.Errorf("late entry's purge state lost: %+v", pb)
	}
	if h.ledger.last.RequestID != requestByDPO {
		t.Errorf("ledger queried with %+v, want the request filter", h.ledger.last)
	}
}

func TestReceiptErrors(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	auditor := h.login("auditor")
	for _, tc := range []struct {
		id     string
		status int
		code   string
	}{
		{"01900000-0000-7000-8000-00000000000F", 400, "invalid_request_id"}, // upper case
		{"01900000-0000-7000-8000-0000000000", 400, "invalid_request_id"},
		{"*", 400, "invalid_request_id"},
		{"01900000-0000-7000-8000-0000000000ff", 404, "not_found"},
	} {
		res := h.do(auditor, "GET", "/api/v1/audit/"+tc.id+"/receipt", nil, false)
		if e := decodeError(t, res); res.StatusCode != tc.status || e.Code != tc.code {
			t.Errorf("receipt of %q: %d %s, want %d %s", tc.id, res.StatusCode, e.Code, tc.status, tc.code)
		}
	}
}

type failingLedger struct{ *fakeLedger }

func (failingLedger) Audit(context.Context, stores.AuditFilter) ([]stores.AuditEntry, error) {
	return nil, stores.Retryable(errors.New("ledger down"))
}

// TestReceiptUnavailable: a ledger that fails and a server without a key
// answer 503, never a receipt.
func TestReceiptUnavailable(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	token := "auditor-token"
	for name, tc := range map[string]struct {
		key    ed25519.PrivateKey
		ledger Ledger
		path   string
		code   string
	}{
		"ledger fails":       {key, failingLedger{&fakeLedger{}}, "/api/v1/audit/" + requestByDPO + "/receipt", "store_unavailable"},
		"no key":             {nil, &fakeLedger{}, "/api/v1/audit/" + requestByDPO + "/receipt", "receipts_unavailable"},
		"no key, public key": {nil, &fakeLedger{}, "/api/v1/receipts/public-key", "receipts_unavailable"},
	} {
		t.Run(name, func(t *testing.T) {
			srv, err := New(Config{
				APITokens:  []APIToken{{Name: "audit-script", TokenSHA256: sha256Hex(token), Roles: []string{"auditor"}}},
				ReceiptKey: tc.key,
			}, Deps{Contacts: &fakeIndex{}, Inventory: fakeInventory{}, Ledger: tc.ledger, Requests: &fakeRequester{}})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			req := httptest.NewRequest("GET", tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if e := decodeError(t, rec.Result()); rec.Code != http.StatusServiceUnavailable || e.Code != tc.code {
				t.Errorf("status %d code %q, want 503 %s", rec.Code, e.Code, tc.code)
			}
		})
	}
}
