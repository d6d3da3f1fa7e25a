package webapi

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

const requestByDPO2 = "01900000-0000-7000-8000-000000000002"

// withDPO2Entry adds a decided request of dpo2 and a refused submission by
// dpo2 that reused dpo's request ID.
func withDPO2Entry(h *harness) {
	h.ledger.mu.Lock()
	defer h.ledger.mu.Unlock()
	base := h.ledger.audit[0]
	mine := base
	mine.Seq, mine.RequestID, mine.Actor, mine.ContactIDs = 2, requestByDPO2, "dpo2", []string{contactA}
	refused := base
	refused.Seq, refused.Actor, refused.Status = 3, "dpo2", schemas.StatusRefused
	h.ledger.audit = append(h.ledger.audit, mine, refused)
}

func getAudit(t *testing.T, h *harness, c caller, path string) auditResponse {
	t.Helper()
	res := h.do(c, "GET", path, nil, false)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as %s: %d", path, c.name, res.StatusCode)
	}
	var got auditResponse
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

func entryIDs(got auditResponse) []string {
	var ids []string
	for _, e := range got.Entries {
		ids = append(ids, e.RequestID+"/"+e.Actor)
	}
	return ids
}

// TestAuditOwnEntries: whoever may delete reads the Audit Log, but only the
// entries of requests it made; no filter widens that, and the CSV and the
// receipts follow the same rule. Auditors read everything.
func TestAuditOwnEntries(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	withDPO2Entry(h)
	dpo, dpo2, auditor := h.login("dpo"), h.login("dpo2"), h.login("auditor")

	got := getAudit(t, h, dpo, "/api/v1/audit")
	if ids := entryIDs(got); !slices.Equal(ids, []string{requestByDPO + "/dpo"}) || !got.Own || got.Total != 1 {
		t.Errorf("dpo sees %q own=%v total=%d, want only its own entry", ids, got.Own, got.Total)
	}
	// A user filter naming someone else narrows further; it never widens.
	if got := getAudit(t, h, dpo, "/api/v1/audit?user=dpo2"); len(got.Entries) != 0 || got.Total != 0 {
		t.Errorf("dpo filtering by dpo2 sees %q", entryIDs(got))
	}
	// dpo2's own: its decision and the refusal of its reuse of dpo's ID.
	if ids := entryIDs(getAudit(t, h, dpo2, "/api/v1/audit")); !slices.Equal(ids, []string{requestByDPO2 + "/dpo2", requestByDPO + "/dpo2"}) {
		t.Errorf("dpo2 sees %q", ids)
	}
	if got := getAudit(t, h, auditor, "/api/v1/audit"); got.Own || got.Total != 3 || len(got.Entries) != 3 {
		t.Errorf("auditor sees %q own=%v total=%d, want all 3", entryIDs(got), got.Own, got.Total)
	}

	res := h.do(dpo, "GET", "/api/v1/audit.csv", nil, false)
	rows, err := csv.NewReader(res.Body).ReadAll()
	res.Body.Close()
	if err != nil || len(rows) != 2 || rows[1][4] != "dpo" {
		t.Errorf("dpo's CSV: %q %v, want the header and its own entry", rows, err)
	}

	for _, tc := range []struct {
		who  caller
		id   string
		want int
	}{
		{dpo, requestByDPO, http.StatusOK},
		{dpo2, requestByDPO2, http.StatusOK},
		// Refused under dpo's ID: no claim on dpo's receipt.
		{dpo2, requestByDPO, http.StatusNotFound},
		{dpo, requestByDPO2, http.StatusNotFound},
		{auditor, requestByDPO2, http.StatusOK},
	} {
		res := h.do(tc.who, "GET", "/api/v1/audit/"+tc.id+"/receipt", nil, false)
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("receipt of %s as %s: %d, want %d", tc.id, tc.who.name, res.StatusCode, tc.want)
		}
	}
}

// TestAuditTotal: the answer counts every matching entry, across pages.
func TestAuditTotal(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	withDPO2Entry(h)
	c := h.login("auditor")
	for _, tc := range []struct {
		path  string
		total int64
		n     int
		more  bool
	}{
		{"/api/v1/audit?page_size=2", 3, 2, true},
		{"/api/v1/audit?page_size=2&page=2", 3, 1, false},
		{"/api/v1/audit?page_size=2&page=9", 3, 0, false},
		{"/api/v1/audit?user=DPO2", 2, 2, false}, // a prefix, in any case
		{"/api/v1/audit?user=dp", 3, 3, false},
		{"/api/v1/audit?user=pO", 0, 0, false},
	} {
		got := getAudit(t, h, c, tc.path)
		if got.Total != tc.total || len(got.Entries) != tc.n || got.HasMore != tc.more {
			t.Errorf("%s: total %d, %d entries, has_more %v; want %d, %d, %v", tc.path, got.Total, len(got.Entries), got.HasMore, tc.total, tc.n, tc.more)
		}
	}
}

// TestSuggestions: existing values by prefix, ignoring case and bounded;
// principals only for whoever may read them.
func TestSuggestions(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	withDPO2Entry(h)
	h.index.mu.Lock()
	for i, agent := range []string{"Dale.Smith", "dale.jones", "Dana", "bob"} {
		id := "0a1b2c3d-0000-4000-8000-00000000010" + string(rune('0'+i))
		h.index.docs[id] = stores.Doc{ID: id, Fields: map[string]any{"agent": agent, "queue": "Sales " + agent[:1]}}
	}
	for i := range 30 {
		id := "0a1b2c3d-0000-4000-8000-0000000002" + string(rune('a'+i/10)) + string(rune('0'+i%10))
		h.index.docs[id] = stores.Doc{ID: id, Fields: map[string]any{"agent": "zed" + string(rune('a'+i))}}
	}
	h.index.mu.Unlock()

	get := func(c caller, query string) (int, suggestionsResponse) {
		t.Helper()
		res := h.do(c, "GET", "/api/v1/suggestions?"+query, nil, false)
		defer res.Body.Close()
		var got suggestionsResponse
		if res.StatusCode == http.StatusOK {
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
		}
		return res.StatusCode, got
	}
	agent, dpo, auditor := h.login("agent"), h.login("dpo"), h.login("auditor")
	for _, tc := range []struct {
		who   caller
		query string
		code  int
		want  []string
	}{
		{agent, "field=agent&prefix=DALE", 200, []string{"Dale.Smith", "dale.jones"}},
		{agent, "field=agent&prefix=da", 200, []string{"Dale.Smith", "Dana", "dale.jones"}},
		{agent, "field=queue&prefix=sales", 200, []string{"Sales D", "Sales b", "Sales d"}},
		{agent, "field=agent&prefix=nobody", 200, []string{}},
		{agent, "field=agent&prefix=%3Cscript%3E", 400, nil},
		{agent, "field=user&prefix=d", 403, nil},
		{agent, "field=customer_phone&prefix=%2B44", 400, nil},
		{auditor, "field=user&prefix=DPO", 200, []string{"dpo", "dpo2"}},
		{auditor, "field=agent&prefix=d", 403, nil},
		// Whoever sees only its own entries learns no other principal.
		{dpo, "field=user&prefix=dpo", 200, []string{"dpo"}},
		{dpo, "field=user&prefix=dpo2", 200, []string{}},
	} {
		code, got := get(tc.who, tc.query)
		if code != tc.code || (tc.want != nil && !slices.Equal(got.Values, tc.want)) {
			t.Errorf("%s as %s: %d %q, want %d %q", tc.query, tc.who.name, code, got.Values, tc.code, tc.want)
		}
	}
	if _, got := get(agent, "field=agent&prefix=z"); len(got.Values) != suggestionsLimit {
		t.Errorf("30 matching agents: %d suggestions, want %d", len(got.Values), suggestionsLimit)
	}
}

// TestFieldErrorsAreSentences: what the UI shows at a field reads as a
// sentence for the person who typed it, never an internal name.
func TestFieldErrorsAreSentences(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	c := h.login("admin")
	for _, tc := range []struct{ path, code string }{
		{"/api/v1/contacts?from=2026-11-05&to=2026-11-01", "invalid_range"},
		{"/api/v1/contacts?contact_id=not-an-id", "invalid_contact_id"},
		{"/api/v1/contacts?from=yesterday", "invalid_from"},
		{"/api/v1/contacts?agent=%3Cb%3E", "invalid_agent"},
		{"/api/v1/audit?from=2026-11-05&to=2026-11-01", "invalid_range"},
		{"/api/v1/audit?contact_id=x", "invalid_contact_id"},
		{"/api/v1/audit?user=a%20b", "invalid_user"},
		{"/api/v1/contacts/not-an-id", "invalid_contact_id"},
	} {
		res := h.do(c, "GET", tc.path, nil, false)
		e := decodeError(t, res)
		if res.StatusCode != http.StatusBadRequest || e.Code != tc.code {
			t.Errorf("%s: %d %q, want 400 %q", tc.path, res.StatusCode, e.Code, tc.code)
			continue
		}
		// Sentences, not "to is before from": no parameter names, no formats
		// a supervisor does not know, and never the value itself.
		if !strings.HasSuffix(e.Error, ".") || e.Error[0] < 'A' || e.Error[0] > 'Z' ||
			strings.Contains(e.Error, "from is") || strings.Contains(e.Error, "before from") ||
			strings.Contains(e.Error, "RFC") || strings.Contains(e.Error, "not-an-id") {
			t.Errorf("%s: message %q is not a sentence for a person", tc.path, e.Error)
		}
	}
}
