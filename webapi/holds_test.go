package webapi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
)

// fakeHolds is the ledger's holds and the aggregator that applies hold
// changes, in memory: a change is applied as it is published unless the
// aggregator is stopped.
type fakeHolds struct {
	mu        sync.Mutex
	held      map[string]stores.Hold
	published []schemas.HoldRequested
	stopped   bool
}

func (f *fakeHolds) Held(_ context.Context, ids ...string) (map[string]stores.Hold, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]stores.Hold{}
	for _, id := range ids {
		if h, ok := f.held[id]; ok {
			out[id] = h
		}
	}
	return out, nil
}

func (f *fakeHolds) RequestHold(_ context.Context, ev schemas.HoldRequested) error {
	if _, err := schemas.Encode(&ev); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, ev)
	if f.stopped {
		return nil
	}
	if ev.Action == schemas.HoldPlace {
		f.held[ev.ContactID] = stores.Hold{ContactID: ev.ContactID, HoldID: ev.HoldID, PlacedBy: ev.RequestedBy,
			PlacedAt: ev.RequestedAt, ReasonCode: ev.ReasonCode, Ticket: ev.Ticket, AuditSeq: 7}
	} else {
		delete(f.held, ev.ContactID)
	}
	return nil
}

// subjectIndex adds the exact phone and email matching of the real indexes
// to the fake one.
type subjectIndex struct{ *fakeIndex }

func (s subjectIndex) Search(ctx context.Context, index string, q stores.Query) (stores.SearchResult, error) {
	phone, err := stores.SubjectPhone(q, stores.DefaultPhoneRegion)
	if err != nil {
		return stores.SearchResult{}, err
	}
	res, err := s.fakeIndex.Search(ctx, index, stores.Query{ContactID: q.ContactID})
	var out stores.SearchResult
	for _, d := range res.Docs {
		p, _ := d.Fields["customer_phone"].(string)
		e, _ := d.Fields["customer_email"].(string)
		if n, _ := stores.NormalizePhone(p, stores.DefaultPhoneRegion); phone != "" && n != phone ||
			q.Email != "" && !strings.EqualFold(e, q.Email) {
			continue
		}
		out.Docs = append(out.Docs, d)
	}
	out.Total = int64(len(out.Docs))
	return out, err
}

const contactC = "0a1b2c3d-0000-4000-8000-00000000000c"

func newHoldHarness(t *testing.T) (*harness, *fakeHolds) {
	t.Helper()
	var users []User
	for _, u := range []struct{ name, role string }{{"agent", "agent"}, {"dpo", "dpo"}, {"legal", "legal"}, {"auditor", "auditor"}} {
		users = append(users, User{Name: u.name, PasswordHash: hashFor(t, u.name+"-password"), Roles: []string{u.role}})
	}
	h := &harness{
		t: t,
		index: &fakeIndex{docs: map[string]stores.Doc{
			contactA: {ID: contactA, Fields: map[string]any{"contact_id": contactA, "customer_phone": "+44 7700 900304", "customer_email": "pat@example.com"}},
			contactB: {ID: contactB, Fields: map[string]any{"contact_id": contactB, "customer_phone": "07700900304"}},
			contactC: {ID: contactC, Fields: map[string]any{"contact_id": contactC, "customer_phone": "07700900305", "customer_email": "Pat@Example.com"}},
		}},
		ledger: &fakeLedger{states: map[string]stores.RequestState{}},
		req:    &fakeRequester{},
	}
	holds := &fakeHolds{held: map[string]stores.Hold{}}
	dm, err := locate.DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(Config{Users: users, ReceiptKey: key,
		Reasons: []Reason{{"gdpr-art17", "GDPR Art. 17 erasure request"}, {"retention", "Retention period expired"}}},
		Deps{Contacts: subjectIndex{h.index}, Inventory: fakeInventory{}, Ledger: h.ledger, Requests: h.req, DataMap: dm,
			Holds: holds, HoldRequests: holds}, defaultSendBuffer)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	h.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(func() { srv.Close(); h.ts.Close() })
	return h, holds
}

func decodeJSON[T any](t *testing.T, res *http.Response) T {
	t.Helper()
	defer res.Body.Close()
	var v T
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A legal hold is placed and lifted by the legal role only, with a
// configured reason and a ticket without personal data; the contact record
// shows it, and a deletion of the held contact is refused before anything
// is published.
func TestLegalHoldAPI(t *testing.T) {
	h, holds := newHoldHarness(t)
	legal, dpo, agent := h.login("legal"), h.login("dpo"), h.login("agent")
	place := func(c caller, body any) *http.Response {
		return h.do(c, "POST", "/api/v1/contacts/"+contactA+"/hold", body, true)
	}
	for name, c := range map[string]caller{"dpo": dpo, "agent": agent} {
		if res := place(c, holdRequest{ReasonCode: "litigation"}); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s placing a hold: %d, want 403", name, res.StatusCode)
		}
	}
	for _, bad := range []holdRequest{{ReasonCode: "gdpr-art17"}, {ReasonCode: ""}, {ReasonCode: "litigation", Ticket: "07700900304"},
		{ReasonCode: "litigation", Ticket: "pat@example.com"}} {
		if res := place(legal, bad); res.StatusCode != http.StatusBadRequest {
			t.Errorf("hold %+v: %d, want 400", bad, res.StatusCode)
		}
	}
	if res := h.do(legal, "POST", "/api/v1/contacts/"+contactA+"/hold", holdRequest{ReasonCode: "litigation"}, false); res.StatusCode != http.StatusForbidden {
		t.Errorf("hold without the CSRF token: %d", res.StatusCode)
	}
	if len(holds.published) != 0 {
		t.Fatalf("refused hold requests published %d events", len(holds.published))
	}

	res := place(legal, holdRequest{ReasonCode: "litigation", Ticket: "LEGAL-2026-114"})
	got := decodeJSON[holdResponse](t, res)
	if res.StatusCode != http.StatusOK || got.Status != "placed" || got.Hold == nil || got.Hold.PlacedBy != "legal" ||
		got.Hold.ReasonLabel != "Litigation or anticipated litigation" || got.Hold.Ticket != "LEGAL-2026-114" {
		t.Fatalf("place: %d %+v", res.StatusCode, got)
	}
	if ev := holds.published[0]; ev.ContactID != contactA || ev.Action != schemas.HoldPlace || ev.RequestedBy != "legal" {
		t.Errorf("published %+v", ev)
	}
	if res := place(legal, holdRequest{ReasonCode: "litigation"}); res.StatusCode != http.StatusConflict {
		t.Errorf("second hold: %d, want 409", res.StatusCode)
	}
	for _, it := range decodeJSON[searchResponse](t, h.do(agent, "GET", "/api/v1/contacts", nil, false)).Items {
		if it.Held != (it.ContactID == contactA) {
			t.Errorf("search result %s: held %v", it.ContactID, it.Held)
		}
	}

	rec := decodeJSON[contactResponse](t, h.do(dpo, "GET", "/api/v1/contacts/"+contactA, nil, false))
	if rec.Hold == nil || rec.Hold.HoldID != got.HoldID || rec.CanHold || !rec.CanDelete {
		t.Errorf("record for the DPO: hold %+v can_hold %v can_delete %v", rec.Hold, rec.CanHold, rec.CanDelete)
	}
	if rec := decodeJSON[contactResponse](t, h.do(legal, "GET", "/api/v1/contacts/"+contactA, nil, false)); !rec.CanHold || rec.CanDelete {
		t.Errorf("record for legal: can_hold %v can_delete %v", rec.CanHold, rec.CanDelete)
	}

	// A request of the held contact only is refused; one mixing it with a
	// free contact goes ahead and says which one is held.
	res = h.do(dpo, "POST", "/api/v1/deletions", deletionRequest{ContactIDs: []string{contactA}, ReasonCode: "gdpr-art17"}, true)
	conflict := decodeJSON[submitConflict](t, res)
	if res.StatusCode != http.StatusConflict || conflict.Code != schemas.ErrCodeLegalHold || !slices.Equal(conflict.HeldContactIDs, []string{contactA}) {
		t.Fatalf("deleting a held contact: %d %+v", res.StatusCode, conflict)
	}
	if h.req.count() != 0 {
		t.Fatal("a request of a held contact was published")
	}
	res = h.do(dpo, "POST", "/api/v1/deletions", deletionRequest{ContactIDs: []string{contactA, contactB}, ReasonCode: "gdpr-art17",
		Ticket: "INC-20431"}, true)
	acc := decodeJSON[deletionAccepted](t, res)
	if res.StatusCode != http.StatusAccepted || !slices.Equal(acc.HeldContactIDs, []string{contactA}) {
		t.Fatalf("mixed request: %d %+v", res.StatusCode, acc)
	}
	if sub := h.req.last(); sub.Ticket != "INC-20431" || sub.ReasonCode != "gdpr-art17" || len(sub.ContactIDs) != 2 {
		t.Errorf("submitted %+v", sub)
	}

	lift := func(body holdRequest) *http.Response {
		return h.do(legal, "POST", "/api/v1/contacts/"+contactA+"/hold/lift", body, true)
	}
	if res := lift(holdRequest{ReasonCode: "litigation"}); res.StatusCode != http.StatusBadRequest {
		t.Errorf("lift for a placing reason: %d, want 400", res.StatusCode)
	}
	if got := decodeJSON[holdResponse](t, lift(holdRequest{ReasonCode: "matter-closed"})); got.Status != "lifted" {
		t.Fatalf("lift: %+v", got)
	}
	if res := lift(holdRequest{ReasonCode: "matter-closed"}); res.StatusCode != http.StatusConflict {
		t.Errorf("lifting what is not held: %d, want 409", res.StatusCode)
	}

	// With the aggregator down the change is published and answered 202.
	defer func(d time.Duration) { holdWait = d }(holdWait)
	holdWait = 300 * time.Millisecond
	holds.stopped = true
	res = place(legal, holdRequest{ReasonCode: "complaint"})
	if got := decodeJSON[holdResponse](t, res); res.StatusCode != http.StatusAccepted || got.Status != "pending" {
		t.Errorf("hold not applied in time: %d %+v", res.StatusCode, got)
	}
}

// Deletion reasons come from the configured list, and a ticket that could
// be personal data is refused, before anything is published.
func TestSubmitReasonAndTicket(t *testing.T) {
	h, _ := newHoldHarness(t)
	dpo := h.login("dpo")
	cfg := decodeJSON[configResponse](t, h.do(caller{}, "GET", "/api/v1/config", nil, false))
	if len(cfg.Reasons) != 2 || cfg.Reasons[0].Code != "gdpr-art17" || len(cfg.HoldReasons) == 0 || len(cfg.HoldLiftReasons) == 0 ||
		!slices.Contains(cfg.Functionalities, stores.FunctionalityLegalHold) {
		t.Fatalf("config %+v", cfg)
	}
	for _, c := range []struct {
		req  deletionRequest
		code string
	}{
		{deletionRequest{ContactIDs: []string{contactB}, ReasonCode: "consent-withdrawn"}, "unknown_reason_code"},
		{deletionRequest{ContactIDs: []string{contactB}, ReasonCode: "Art 17"}, schemas.CodeInvalidReasonCode},
		{deletionRequest{ContactIDs: []string{contactB}, ReasonCode: "retention", Ticket: "+447700900304"}, schemas.CodeInvalidTicket},
		{deletionRequest{ContactIDs: []string{contactB}, ReasonCode: "retention", Ticket: "CASE 12"}, schemas.CodeInvalidTicket},
		{deletionRequest{ContactIDs: []string{contactB}, ReasonCode: "retention", Ticket: "44-7700-900-304"}, schemas.CodeInvalidTicket},
	} {
		res := h.do(dpo, "POST", "/api/v1/deletions", c.req, true)
		if e := decodeError(t, res); res.StatusCode != http.StatusBadRequest || e.Code != c.code ||
			(c.req.Ticket != "" && strings.Contains(e.Error, c.req.Ticket)) {
			t.Errorf("%+v: %d %+v, want 400 %s", c.req, res.StatusCode, e, c.code)
		}
	}
	if h.req.count() != 0 {
		t.Fatalf("%d bad requests published", h.req.count())
	}
	res := h.do(dpo, "POST", "/api/v1/deletions", deletionRequest{ContactIDs: []string{contactB}, ReasonCode: "retention", Ticket: "JIRA:PRIV-7"}, true)
	if res.StatusCode != http.StatusAccepted || h.req.last().Ticket != "JIRA:PRIV-7" {
		t.Fatalf("good request: %d", res.StatusCode)
	}
}

// A contact whose deletion is still under way cannot be submitted again
// (a second tab), and a contact already deleted says by whom and when.
func TestStaleTabSubmissions(t *testing.T) {
	h, _ := newHoldHarness(t)
	dpo := h.login("dpo")
	now := time.Now().UTC()
	h.ledger.put(stores.RequestState{Request: schemas.DeletionRequested{RequestID: requestByDPO, ContactIDs: []string{contactB},
		RequestedBy: "dpo2", RequestedAt: now, Source: schemas.SourceUI, Channels: schemas.AllChannels}, Deadline: now.Add(30 * time.Second)})
	res := h.do(dpo, "POST", "/api/v1/deletions", deletionRequest{ContactIDs: []string{contactB}}, true)
	conflict := decodeJSON[submitConflict](t, res)
	if res.StatusCode != http.StatusConflict || conflict.Code != "deletion_in_progress" || !slices.Equal(conflict.PendingContactIDs, []string{contactB}) {
		t.Fatalf("second submission while one is under way: %d %+v", res.StatusCode, conflict)
	}

	done := now.Add(4 * time.Second)
	h.ledger.put(stores.RequestState{Request: schemas.DeletionRequested{RequestID: requestByDPO, ContactIDs: []string{contactB},
		RequestedBy: "dpo2", RequestedAt: now, Source: schemas.SourceUI, Channels: schemas.AllChannels},
		Outcome: &schemas.DeletionCompleted{RequestID: requestByDPO, Status: schemas.StatusSucceeded, CompletedAt: done, AuditSeq: 41}})
	h.index.mu.Lock()
	delete(h.index.docs, contactB)
	h.index.mu.Unlock()
	res = h.do(dpo, "GET", "/api/v1/contacts/"+contactB, nil, false)
	gone := decodeJSON[contactGone](t, res)
	if res.StatusCode != http.StatusNotFound || gone.Code != "deleted" || gone.Deleted == nil || gone.Deleted.RequestedBy != "dpo2" ||
		gone.Deleted.AuditSeq != 41 || !gone.Deleted.CompletedAt.Equal(done) {
		t.Fatalf("deleted contact: %d %+v %+v", res.StatusCode, gone, gone.Deleted)
	}
	inv := decodeJSON[inventoriesResponse](t, h.do(dpo, "POST", "/api/v1/contacts/inventory", inventoriesRequest{ContactIDs: []string{contactA, contactB}}, true))
	if len(inv.Contacts) != 2 || !inv.Contacts[0].Found || inv.Contacts[0].Total != 7 || inv.Contacts[1].Found ||
		inv.Contacts[1].Deleted == nil || inv.Contacts[1].Deleted.RequestID != requestByDPO {
		t.Fatalf("inventories %+v", inv)
	}
	// A repeat is still accepted: the pipeline finds nothing and audits it
	// as not found.
	if res := h.do(dpo, "POST", "/api/v1/deletions", deletionRequest{ContactIDs: []string{contactB}}, true); res.StatusCode != http.StatusAccepted {
		t.Fatalf("repeat of a finished deletion: %d", res.StatusCode)
	}
}

// A data subject's contacts are found by an exact phone number in any
// spelling, or an exact email address in any case, never by a part of one.
func TestSubjectContacts(t *testing.T) {
	h, _ := newHoldHarness(t)
	agent := h.login("agent")
	find := func(body any) (*http.Response, subjectResponse) {
		res := h.do(agent, "POST", "/api/v1/subjects/contacts", body, true)
		if res.StatusCode != http.StatusOK {
			return res, subjectResponse{}
		}
		return res, decodeJSON[subjectResponse](t, res)
	}
	for _, c := range []struct {
		body subjectRequest
		want []string
	}{
		{subjectRequest{Phone: "+447700900304"}, []string{contactA, contactB}},
		{subjectRequest{Phone: "07700 900304"}, []string{contactA, contactB}},
		{subjectRequest{Email: "PAT@example.com"}, []string{contactA, contactC}},
	} {
		res, got := find(c.body)
		if res.StatusCode != http.StatusOK || !slices.Equal(got.ContactIDs, c.want) {
			t.Errorf("%+v: %d %v, want %v", c.body, res.StatusCode, got.ContactIDs, c.want)
		}
	}
	for _, bad := range []subjectRequest{{}, {Phone: "+447700900304", Email: "pat@example.com"}, {Phone: "Pat"}, {Phone: "*"},
		{Email: "example.com"}, {Email: "Pat <pat@example.com>"}, {Email: "pat@example.com, sam@example.com"}} {
		res, _ := find(bad)
		e := decodeError(t, res)
		if res.StatusCode != http.StatusBadRequest || e.Code != "invalid_subject" || (bad.Phone != "" && strings.Contains(e.Error, bad.Phone)) {
			t.Errorf("%+v: %d %+v, want 400 invalid_subject", bad, res.StatusCode, e)
		}
	}
}

// The audit API and CSV filter on reason and ticket and export them.
func TestAuditReasonTicketFilters(t *testing.T) {
	h, _ := newHoldHarness(t)
	auditor := h.login("auditor")
	now := time.Now().UTC()
	h.ledger.audit = []stores.AuditEntry{{Seq: 1, RequestID: requestByDPO, Setting: stores.AuditSetting, Functionality: "Delete Contact",
		Actor: "dpo", ContactIDs: []string{contactA, contactB}, Status: schemas.StatusSucceeded, RequestedAt: now, CompletedAt: now,
		ReasonCode: "gdpr-art17", Ticket: "INC-20431", HeldContactIDs: []string{contactA}}}
	res := h.do(auditor, "GET", "/api/v1/audit?reason_code=gdpr-art17&ticket=INC-20431", nil, false)
	if res.StatusCode != http.StatusOK || h.ledger.last.ReasonCode != "gdpr-art17" || h.ledger.last.Ticket != "INC-20431" {
		t.Fatalf("audit filter: %d %+v", res.StatusCode, h.ledger.last)
	}
	res.Body.Close()
	for _, q := range []string{"reason_code=GDPR%20Art%2017", "ticket=07700900304"} {
		if res := h.do(auditor, "GET", "/api/v1/audit?"+q, nil, false); res.StatusCode != http.StatusBadRequest {
			t.Errorf("audit ?%s: %d, want 400", q, res.StatusCode)
		}
	}
	res = h.do(auditor, "GET", "/api/v1/audit.csv", nil, false)
	defer res.Body.Close()
	rows, err := csv.NewReader(res.Body).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("CSV: %v %d rows", err, len(rows))
	}
	col := func(name string) string { return rows[1][slices.Index(rows[0], name)] }
	if col("reason_code") != "gdpr-art17" || col("ticket") != "INC-20431" || col("held_contact_ids") != contactA {
		t.Errorf("CSV row %v", rows[1])
	}
}
