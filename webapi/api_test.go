package webapi

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// TestLogin: cookie flags, one answer for unknown users and wrong
// passwords, throttling per name and address, and logout ending the session.
func TestLogin(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	c := h.login("dpo")
	if !c.cookie.HttpOnly || c.cookie.SameSite != http.SameSiteStrictMode || c.cookie.Path != "/" {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", c.cookie)
	}
	if c.csrf == "" {
		t.Error("no CSRF token")
	}

	wrong := h.do(caller{}, "POST", "/api/v1/login", map[string]string{"name": "dpo", "password": "nope"}, false)
	unknown := h.do(caller{}, "POST", "/api/v1/login", map[string]string{"name": "nobody", "password": "nope"}, false)
	ew, eu := decodeError(t, wrong), decodeError(t, unknown)
	if wrong.StatusCode != 401 || unknown.StatusCode != 401 || ew != eu {
		t.Errorf("wrong password %d %+v, unknown user %d %+v: want the same 401", wrong.StatusCode, ew, unknown.StatusCode, eu)
	}

	// Throttled after repeated failures, even with the right password.
	for range pairPolicy.Free {
		h.do(caller{}, "POST", "/api/v1/login", map[string]string{"name": "auditor", "password": "guess"}, false).Body.Close()
	}
	res := h.do(caller{}, "POST", "/api/v1/login", map[string]string{"name": "auditor", "password": "auditor-password"}, false)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("after %d failures: status %d, want 429 with Retry-After", pairPolicy.Free, res.StatusCode)
	}
	res.Body.Close()
	// Other names from the same address are not affected.
	h.login("admin")

	// Logout ends the session and closes its websocket.
	ws := h.mustDial(c)
	waitClients(t, h, 1)
	res = h.do(c, "POST", "/api/v1/logout", nil, true)
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	res = h.do(c, "GET", "/api/v1/me", nil, false)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("me after logout: %d, want 401", res.StatusCode)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Error("websocket still open after logout")
	}
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	c := h.login("dpo")
	now := time.Now()
	h.srv.sessions.mu.Lock()
	h.srv.sessions.now = func() time.Time { return now.Add(defaultSessionTTL + time.Second) }
	h.srv.sessions.mu.Unlock()
	res := h.do(c, "GET", "/api/v1/me", nil, false)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired session: %d, want 401", res.StatusCode)
	}
}

func TestBadBearerToken(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	dpo := h.login("dpo")
	// A wrong token is refused even alongside a valid session cookie.
	dpo.bearer = "wrong"
	res := h.do(dpo, "GET", "/api/v1/me", nil, false)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", res.StatusCode)
	}
	if e := decodeError(t, res); e.Code != "invalid_token" {
		t.Fatalf("code %q", e.Code)
	}
}

// TestContactRecord returns details, artefacts per channel with
// contact-search last, the deletion history and can_delete.
func TestContactRecord(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	failed := schemas.DeletionCompleted{RequestID: requestByDPO, Status: schemas.StatusFailed, ErrorCode: schemas.ErrCodeChannelFailed,
		Channels: []schemas.ChannelOutcome{{Channel: schemas.ChannelVoice, Status: schemas.StatusFailed, ErrorCode: schemas.ErrCodeStoreUnavailable}}}
	st, _ := h.ledger.State(t.Context(), requestByDPO)
	st.Outcome = &failed
	h.ledger.put(st)

	for _, tc := range []struct {
		role      string
		canDelete bool
	}{{"agent", false}, {"dpo", true}, {"admin", true}} {
		res := h.do(h.login(tc.role), "GET", "/api/v1/contacts/"+contactB, nil, false)
		var got contactResponse
		if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got.CanDelete != tc.canDelete {
			t.Errorf("%s: can_delete %v", tc.role, got.CanDelete)
		}
		if got.ContactID != contactB || got.Fields["customer_name"] != "Sam Sample" {
			t.Errorf("%s: contact %+v", tc.role, got)
		}
		if len(got.Artefacts) != 2 || got.Artefacts[0].Channel != schemas.ChannelVoice || got.Artefacts[0].Total != 3 ||
			got.Artefacts[1].Channel != schemas.ChannelContactSearch || !got.Artefacts[1].Last {
			t.Errorf("%s: artefacts %+v", tc.role, got.Artefacts)
		}
		if len(got.Deletions) != 1 || got.Deletions[0].Status != "failed" || got.Deletions[0].Functionality != "Delete Contact" {
			t.Errorf("%s: deletions %+v", tc.role, got.Deletions)
		}
	}
	res := h.do(h.login("agent"), "GET", "/api/v1/contacts/0a1b2c3d-0000-4000-8000-0000000000ff", nil, false)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown contact: %d, want 404", res.StatusCode)
	}
}

// TestDeletionState: a request just submitted is pending before the
// aggregator records it; then the ledger's state is returned.
func TestDeletionState(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	c := h.login("dpo")
	rid := h.submit(c, contactA)
	res := h.do(c, "GET", "/api/v1/deletions/"+rid, nil, false)
	var st deletionState
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || st.Status != "pending" || st.Request.RequestID != rid {
		t.Fatalf("just submitted: %d %+v", res.StatusCode, st)
	}
	res = h.do(c, "GET", "/api/v1/deletions/01900000-0000-7000-8000-0000000000ff", nil, false)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown request: %d", res.StatusCode)
	}
}

// TestAudit: Setting name, filters passed on, paging, CSV export.
func TestAudit(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	h.ledger.mu.Lock()
	h.ledger.audit = append(h.ledger.audit, stores.AuditEntry{Seq: 2, RequestID: "01900000-0000-7000-8000-000000000002",
		Functionality: "Bulk Delete", Actor: "=cmd|' /C calc'!A0", ContactIDs: []string{contactA}, Status: schemas.StatusFailed})
	h.ledger.mu.Unlock()
	c := h.login("auditor")

	res := h.do(c, "GET", "/api/v1/audit?user=dpo&functionality=Delete+Contact&from=2026-11-01&to=2026-11-02&contact_id="+contactB+"&page=1", nil, false)
	var got auditResponse
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got.Setting != "Data Deletion" || len(got.Entries) != 1 || got.Entries[0].Setting != "Data Deletion" || got.HasMore {
		t.Errorf("audit %+v", got)
	}
	h.ledger.mu.Lock()
	f := h.ledger.last
	h.ledger.mu.Unlock()
	wantTo := time.Date(2026, 11, 2, 23, 59, 59, 999999999, time.UTC)
	if f.Actor != "" || f.ActorPrefix != "dpo" || f.Functionality != "Delete Contact" || f.ContactID != contactB ||
		!f.From.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || !f.To.Equal(wantTo) {
		t.Errorf("filter %+v", f)
	}

	res = h.do(c, "GET", "/api/v1/audit?page_size=1", nil, false)
	got = auditResponse{}
	_ = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if !got.HasMore || len(got.Entries) != 1 {
		t.Errorf("page_size=1: has_more %v, %d entries", got.HasMore, len(got.Entries))
	}

	res = h.do(c, "GET", "/api/v1/audit.csv", nil, false)
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") ||
		!strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("csv headers: %v", res.Header)
	}
	rows, err := csv.NewReader(res.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "setting" || rows[1][0] != "Data Deletion" || rows[1][4] != "dpo" {
		t.Fatalf("csv rows %q", rows)
	}
	if !strings.HasPrefix(rows[2][4], "'") {
		t.Errorf("formula not neutralised: %q", rows[2][4])
	}
	if !strings.Contains(rows[1][10], "voice:succeeded:deleted=2") {
		t.Errorf("channels column %q", rows[1][10])
	}
}

// TestFeedSkipsInvalidEvents: an event that fails its schema is acked and
// delivered to nobody; the feed goes on.
func TestFeedSkipsInvalidEvents(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	c := h.login("dpo")
	ws := h.mustDial(c)
	rid := h.submit(c, contactA)
	bad := newRawMessage([]byte(`{"type":"ChannelCompleted","request_id":"` + rid + `","channel":"voice","status":"bogus"}`))
	if err := h.feed.Publish(h.topics.ChannelResults(), bad); err != nil {
		t.Fatal(err)
	}
	h.progress(rid, schemas.ChannelSocial)
	m, ok := read(t, ws, 5*time.Second)
	if !ok || m.Channel != schemas.ChannelSocial {
		t.Fatalf("first delivered message %+v (ok=%v), want the valid social progress", m, ok)
	}
}

// TestNewValidates refuses configurations that would fail later.
func TestNewValidates(t *testing.T) {
	deps := Deps{Contacts: &fakeIndex{}, Inventory: fakeInventory{}, Ledger: &fakeLedger{}, Requests: &fakeRequester{}}
	good := hashFor(t, "pw")
	for name, cfg := range map[string]Config{
		"nobody":          {},
		"unknown role":    {Users: []User{{Name: "a", PasswordHash: good, Roles: []string{"root"}}}},
		"no roles":        {Users: []User{{Name: "a", PasswordHash: good}}},
		"plain password":  {Users: []User{{Name: "a", PasswordHash: "pw", Roles: []string{"agent"}}}},
		"bad name":        {Users: []User{{Name: "a b", PasswordHash: good, Roles: []string{"agent"}}}},
		"duplicate":       {Users: []User{{Name: "a", PasswordHash: good, Roles: []string{"agent"}}, {Name: "a", PasswordHash: good, Roles: []string{"agent"}}}},
		"short token sum": {APITokens: []APIToken{{Name: "t", TokenSHA256: "abcd", Roles: []string{"dpo"}}}},
		"oidc incomplete": {OIDC: &OIDCConfig{Issuer: "https://idp.example"}},
	} {
		if s, err := New(cfg, deps); err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{Users: []User{{Name: "a", PasswordHash: good, Roles: []string{"agent"}}}}, Deps{}); err == nil {
		t.Error("missing deps accepted")
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+x": "'+x", "-x": "'-x", "@x": "'@x", "dpo": "dpo", "": ""} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
