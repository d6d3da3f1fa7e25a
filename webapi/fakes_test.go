package webapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
)

// Contact and request IDs the fakes hold.
const (
	contactA = "0a1b2c3d-0000-4000-8000-00000000000a"
	contactB = "0a1b2c3d-0000-4000-8000-00000000000b"
	// requestByDPO is in the ledger, submitted by user "dpo" from the UI.
	requestByDPO = "01900000-0000-7000-8000-000000000001"
	apiToken     = "test-token-for-the-bulk-script"
)

type fakeIndex struct {
	mu       sync.Mutex
	docs     map[string]stores.Doc
	searches int
}

func (f *fakeIndex) Search(_ context.Context, _ string, q stores.Query) (stores.SearchResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searches++
	var res stores.SearchResult
	ids := make([]string, 0, len(f.docs))
	for id := range f.docs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if q.ContactID != "" && q.ContactID != id {
			continue
		}
		agent, _ := f.docs[id].Fields["agent"].(string)
		queue, _ := f.docs[id].Fields["queue"].(string)
		if q.Agent != "" && !stores.HasPrefixFold(agent, q.Agent) || q.Queue != "" && !stores.HasPrefixFold(queue, q.Queue) {
			continue
		}
		res.Docs = append(res.Docs, f.docs[id])
	}
	res.Total = int64(len(res.Docs))
	return res, nil
}

func (f *fakeIndex) FieldValues(_ context.Context, _, field, prefix string, limit int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range f.docs {
		if v, ok := d.Fields[field].(string); ok && stores.HasPrefixFold(v, prefix) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), limit)], nil
}

func (f *fakeIndex) searchCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.searches
}

func (f *fakeIndex) Get(_ context.Context, _ string, id string) (stores.Doc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.docs[id]
	if !ok {
		return stores.Doc{}, stores.ErrNotFound
	}
	return d, nil
}

type fakeInventory struct{}

func (fakeInventory) Inventory(context.Context, string) (locate.Remaining, error) {
	return locate.Remaining{
		schemas.ChannelVoice:         {"call_recordings": 2, "transcripts": 1},
		schemas.ChannelContactSearch: {"contact_index": 1, "ctr_index": 3},
	}, nil
}

type fakeLedger struct {
	mu     sync.Mutex
	states map[string]stores.RequestState
	audit  []stores.AuditEntry
	last   stores.AuditFilter
}

func (f *fakeLedger) State(_ context.Context, id string) (stores.RequestState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.states[id]
	if !ok {
		return stores.RequestState{}, stores.ErrNotFound
	}
	return st, nil
}

func (f *fakeLedger) ByContact(_ context.Context, id string, _ int) ([]stores.RequestState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []stores.RequestState
	for _, st := range f.states {
		if slices.Contains(st.Request.ContactIDs, id) {
			out = append(out, st)
		}
	}
	return out, nil
}

func (f *fakeLedger) Audit(_ context.Context, flt stores.AuditFilter) ([]stores.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = flt
	out := f.matching(flt)
	if flt.Offset >= len(out) {
		return nil, nil
	}
	out = out[flt.Offset:]
	if flt.Limit > 0 && len(out) > flt.Limit {
		out = out[:flt.Limit]
	}
	return out, nil
}

func (f *fakeLedger) matching(flt stores.AuditFilter) []stores.AuditEntry {
	var out []stores.AuditEntry
	for _, e := range f.audit {
		if flt.Actor != "" && e.Actor != flt.Actor || flt.RequestID != "" && e.RequestID != flt.RequestID ||
			flt.ActorPrefix != "" && !stores.HasPrefixFold(e.Actor, flt.ActorPrefix) {
			continue
		}
		out = append(out, e)
	}
	return out
}

func (f *fakeLedger) AuditCount(_ context.Context, flt stores.AuditFilter) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.matching(flt))), nil
}

func (f *fakeLedger) AuditActors(_ context.Context, prefix string, limit int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.matching(stores.AuditFilter{ActorPrefix: prefix}) {
		if !slices.Contains(out, e.Actor) {
			out = append(out, e.Actor)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), limit)], nil
}

func (f *fakeLedger) put(st stores.RequestState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[st.Request.RequestID] = st
}

// fakeRequester builds events as the real one does, without publishing.
type fakeRequester struct {
	mu    sync.Mutex
	calls []producers.Request
}

func (f *fakeRequester) Submit(_ context.Context, r producers.Request) (schemas.DeletionRequested, error) {
	f.mu.Lock()
	f.calls = append(f.calls, r)
	f.mu.Unlock()
	q := producers.Requester{Channels: schemas.AllChannels, Rule: schemas.DefaultContactIDRule}
	return q.Build(r)
}

func (f *fakeRequester) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeRequester) last() producers.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

// harness is a running server over the fakes, with a feed to push events.
type harness struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	index  *fakeIndex
	ledger *fakeLedger
	req    *fakeRequester
	feed   *gochannel.GoChannel
	topics schemas.Topics
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func hashFor(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func newHarness(t *testing.T, sendBuffer int) *harness {
	t.Helper()
	users := []User{}
	for _, u := range []struct{ name, role string }{
		{"agent", "agent"}, {"dpo", "dpo"}, {"auditor", "auditor"}, {"admin", "admin"}, {"dpo2", "dpo"},
	} {
		users = append(users, User{Name: u.name, PasswordHash: hashFor(t, u.name+"-password"), Roles: []string{u.role}})
	}
	h := &harness{
		t: t,
		index: &fakeIndex{docs: map[string]stores.Doc{
			contactA: {ID: contactA, Fields: map[string]any{"contact_id": contactA, "customer_name": "Pat Example", "channel": "VOICE"}},
			contactB: {ID: contactB, Fields: map[string]any{"contact_id": contactB, "customer_name": "Sam Sample", "channel": "CHAT"}},
		}},
		ledger: &fakeLedger{states: map[string]stores.RequestState{}},
		req:    &fakeRequester{},
		feed:   gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 16, Persistent: true}, watermill.NopLogger{}),
		topics: schemas.Topics{Prefix: "test."},
	}
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	h.ledger.put(stores.RequestState{Request: schemas.DeletionRequested{
		RequestID: requestByDPO, ContactIDs: []string{contactB}, RequestedBy: "dpo", RequestedAt: now,
		Source: schemas.SourceUI, Channels: schemas.AllChannels,
	}})
	h.ledger.audit = []stores.AuditEntry{{
		Seq: 1, RequestID: requestByDPO, Setting: stores.AuditSetting, Functionality: "Delete Contact", Actor: "dpo",
		ContactIDs: []string{contactB}, Status: schemas.StatusSucceeded, RequestedAt: now, CompletedAt: now.Add(3 * time.Second),
		Channels: []schemas.ChannelOutcome{{Channel: schemas.ChannelVoice, Status: schemas.StatusSucceeded,
			Artefacts: []schemas.ArtefactCount{{Artefact: "call_recordings", Before: 2, Deleted: 2}}}},
	}}
	dm, err := locate.DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256Hex(apiToken)
	_, receiptKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(Config{
		Users:      users,
		APITokens:  []APIToken{{Name: "bulk-script", TokenSHA256: sum, Roles: []string{"dpo"}}},
		ReceiptKey: receiptKey,
	}, Deps{Contacts: h.index, Inventory: fakeInventory{}, Ledger: h.ledger, Requests: h.req, DataMap: dm}, sendBuffer)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	h.ts = httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.RunFeed(ctx, h.feed, h.topics) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunFeed: %v", err)
		}
		srv.Close()
		h.ts.Close()
		_ = h.feed.Close()
	})
	return h
}

// caller is one way of calling the API: anonymous, a session or a token.
type caller struct {
	name   string
	cookie *http.Cookie
	csrf   string
	bearer string
}

func (h *harness) login(name string) caller {
	h.t.Helper()
	res := h.do(caller{}, "POST", "/api/v1/login", map[string]string{"name": name, "password": name + "-password"}, true)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		h.t.Fatalf("login %s: %d", name, res.StatusCode)
	}
	var me meResponse
	if err := json.NewDecoder(res.Body).Decode(&me); err != nil {
		h.t.Fatal(err)
	}
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			return caller{name: name, cookie: c, csrf: me.CSRFToken}
		}
	}
	h.t.Fatalf("login %s: no session cookie", name)
	return caller{}
}

func (h *harness) token() caller { return caller{name: "bulk-script", bearer: apiToken} }

// do calls the API. body may be nil, a []byte (sent as is) or a value to
// encode as JSON. withCSRF adds the caller's CSRF token.
func (h *harness) do(c caller, method, path string, body any, withCSRF bool) *http.Response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	if withCSRF && c.csrf != "" {
		req.Header.Set(csrfHeader, c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

// dial opens the websocket as c, with the page's own Origin.
func (h *harness) dial(c caller) (*websocket.Conn, *http.Response, error) {
	hdr := http.Header{}
	hdr.Set("Origin", h.ts.URL)
	if c.cookie != nil {
		hdr.Set("Cookie", c.cookie.String())
	}
	if c.bearer != "" {
		hdr.Set("Authorization", "Bearer "+c.bearer)
	}
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.ts.URL, "http")+"/api/v1/ws", hdr)
}

// publish sends an event to the feed as a pipeline component would.
func (h *harness) publish(topic string, ev schemas.Event, key string) {
	h.t.Helper()
	if err := producers.Publish(h.feed, topic, ev, key); err != nil {
		h.t.Fatal(err)
	}
}

func decodeError(t *testing.T, res *http.Response) apiError {
	t.Helper()
	defer res.Body.Close()
	var e apiError
	if err := json.NewDecoder(res.Body).Decode(&e); err != nil {
		t.Fatalf("error body: %v", err)
	}
	return e
}

func websocketDial(h *harness, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.ts.URL, "http")+"/api/v1/ws", hdr)
}

func newRawMessage(payload []byte) *message.Message {
	return message.NewMessage(watermill.NewUUID(), payload)
}
