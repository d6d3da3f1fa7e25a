package webapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/erasure-project/erasure/schemas"
)

type wsMsg struct {
	Type      string          `json:"type"`
	RequestID string          `json:"request_id"`
	Channel   schemas.Channel `json:"channel"`
	Status    string          `json:"status"`
	Outcome   json.RawMessage `json:"outcome"`
}

func (h *harness) mustDial(c caller) *websocket.Conn {
	h.t.Helper()
	before := h.srv.hub.count()
	conn, res, err := h.dial(c)
	if err != nil {
		h.t.Fatalf("dial as %s: %v (%v)", c.name, err, res)
	}
	h.t.Cleanup(func() { conn.Close() })
	// The upgrade answers before the hub has the client; a message pushed
	// in between would never reach it, so wait until it is registered.
	for deadline := time.Now().Add(5 * time.Second); h.srv.hub.count() <= before && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	return conn
}

// read returns the next message, or ok=false if none comes within d.
func read(t *testing.T, conn *websocket.Conn, d time.Duration) (wsMsg, bool) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, raw, err := conn.ReadMessage()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return wsMsg{}, false
		}
		t.Fatalf("read: %v", err)
	}
	var m wsMsg
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("message %s: %v", raw, err)
	}
	return m, true
}

func (h *harness) submit(c caller, ids ...string) string {
	h.t.Helper()
	res := h.do(c, "POST", "/api/v1/deletions", map[string]any{"contact_ids": ids}, true)
	defer res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		h.t.Fatalf("submit: %d", res.StatusCode)
	}
	var acc deletionAccepted
	if err := json.NewDecoder(res.Body).Decode(&acc); err != nil {
		h.t.Fatal(err)
	}
	return acc.RequestID
}

func (h *harness) progress(rid string, ch schemas.Channel) {
	h.publish(h.topics.ChannelResults(), &schemas.ChannelCompleted{
		RequestID: rid, Channel: ch, Status: schemas.StatusSucceeded, CompletedAt: time.Now().UTC(),
		Artefacts: []schemas.ArtefactCount{{Artefact: "call_recordings", Before: 2, Deleted: 2}},
	}, rid)
}

func (h *harness) outcome(rid, by string, ids []string) {
	now := time.Now().UTC()
	h.publish(h.topics.Outcomes(), &schemas.DeletionCompleted{
		RequestID: rid, ContactIDs: ids, RequestedBy: by, RequestedAt: now, CompletedAt: now,
		Source: schemas.SourceUI, Status: schemas.StatusSucceeded, AuditSeq: 1, AuditHash: strings.Repeat("ab", 32),
		Channels: []schemas.ChannelOutcome{{Channel: schemas.ChannelVoice, Status: schemas.StatusSucceeded}},
	}, rid)
}

// TestProgressGoesOnlyToOwner: progress and outcome of a request reach the
// session that submitted it, and no other user's connection, nor another
// session that has not asked for it.
func TestProgressGoesOnlyToOwner(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	owner, other := h.login("dpo"), h.login("admin")
	ownerWS, otherWS := h.mustDial(owner), h.mustDial(other)
	sameUserOtherSession := h.mustDial(h.login("dpo"))
	tokenWS := h.mustDial(h.token())

	rid := h.submit(owner, contactA)
	h.progress(rid, schemas.ChannelVoice)
	h.outcome(rid, "dpo", []string{contactA})

	// Progress and outcomes come from two topics, so either may arrive first.
	got := map[string]bool{}
	for range 2 {
		m, ok := read(t, ownerWS, 5*time.Second)
		switch {
		case !ok || m.RequestID != rid || m.Status != "succeeded":
			t.Fatalf("owner: message %+v (ok=%v)", m, ok)
		case m.Type == "progress" && m.Channel == schemas.ChannelVoice, m.Type == "outcome":
			got[m.Type] = true
		default:
			t.Fatalf("owner: unexpected message %+v", m)
		}
	}
	if !got["progress"] || !got["outcome"] {
		t.Fatalf("owner received %v, want voice progress and the outcome", got)
	}
	for name, conn := range map[string]*websocket.Conn{"other user": otherWS, "same user, other session": sameUserOtherSession, "token": tokenWS} {
		if m, ok := read(t, conn, 300*time.Millisecond); ok {
			t.Errorf("%s received %+v", name, m)
		}
	}
}

// TestWatch: after a reconnect a client gets the state of its own requests,
// by the owner map or else by the ledger; someone else's requests yield
// nothing at all.
func TestWatch(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	dpo, admin := h.login("dpo"), h.login("admin")
	rid := h.submit(dpo, contactA) // tracked in memory, not in the ledger

	// Another of dpo's sessions (a reload) may watch it: same user.
	reloaded := h.mustDial(h.login("dpo"))
	watch(t, reloaded, rid)
	if m, ok := read(t, reloaded, 5*time.Second); !ok || m.Type != "state" || m.RequestID != rid {
		t.Fatalf("watch own tracked request: %+v (ok=%v)", m, ok)
	}
	// Once watched, live events come too.
	h.progress(rid, schemas.ChannelSocial)
	if m, ok := read(t, reloaded, 5*time.Second); !ok || m.Type != "progress" || m.Channel != schemas.ChannelSocial {
		t.Fatalf("after watch: %+v (ok=%v)", m, ok)
	}

	// Not in the owner map, only in the ledger: requested_by decides.
	dpoWS := h.mustDial(dpo)
	watch(t, dpoWS, requestByDPO)
	if m, ok := read(t, dpoWS, 5*time.Second); !ok || m.Type != "state" || m.RequestID != requestByDPO {
		t.Fatalf("watch own ledger request: %+v (ok=%v)", m, ok)
	}

	// Someone else's requests, tracked or not, and unknown or malformed IDs:
	// nothing comes back, and nothing is delivered later either.
	adminWS := h.mustDial(admin)
	tokenWS := h.mustDial(h.token())
	for _, conn := range []*websocket.Conn{adminWS, tokenWS} {
		watch(t, conn, rid, requestByDPO, "01900000-0000-7000-8000-0000000000ff", "not-an-id")
	}
	h.progress(rid, schemas.ChannelMessaging)
	for name, conn := range map[string]*websocket.Conn{"admin": adminWS, "token": tokenWS} {
		if m, ok := read(t, conn, 300*time.Millisecond); ok {
			t.Errorf("%s watching others' requests received %+v", name, m)
		}
	}
}

func watch(t *testing.T, conn *websocket.Conn, ids ...string) {
	t.Helper()
	raw, _ := json.Marshal(clientMsg{Type: "watch", RequestIDs: ids})
	if err := conn.WriteMessage(websocket.TextMessage, raw); err != nil {
		t.Fatal(err)
	}
}

// TestSlowClientDropped: a connection that never reads is dropped once its
// buffer is full, and the owner's other connection (same session, another
// tab) keeps receiving everything meanwhile.
func TestSlowClientDropped(t *testing.T) {
	h := newHarness(t, 4)
	owner := h.login("dpo")
	fast := h.mustDial(owner)
	slow := h.dialSmallBuffer(owner) // never read
	waitClients(t, h, 2)
	rid := h.submit(owner, contactA)
	o, _ := h.srv.owners.get(rid)

	// Large messages fill the slow connection's socket buffers quickly, so
	// its write pump blocks and its send buffer fills. They go straight to
	// the hub: the feed's decoding is covered elsewhere.
	pad := strings.Repeat("x", 256<<10)
	// Send until the slow client is dropped, then a few more: the fast one
	// must get every message throughout.
	const maxEvents = 400
	after := -1
	for i := 0; i < maxEvents && after != 0; i++ {
		msg := fmt.Sprintf(`{"type":"progress","request_id":%q,"seq":%d,"pad":%q}`, rid, i, pad)
		h.srv.hub.publish(delivery{requestID: rid, scope: o.scope, msg: []byte(msg)})
		// Paced by the fast reader, so only the slow client can fall behind.
		if m, ok := read(t, fast, 10*time.Second); !ok || m.RequestID != rid {
			t.Fatalf("fast client: event %d missing (%+v)", i, m)
		}
		switch {
		case after > 0:
			after--
		case after < 0 && h.srv.hub.count() == 1:
			after = 5
		}
	}
	if after != 0 {
		t.Fatalf("slow client not dropped after %d large events", maxEvents)
	}
	_ = slow
}

func waitClients(t *testing.T, h *harness, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.srv.hub.count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("hub has %d clients, want %d", h.srv.hub.count(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHubNeverWaits: with a full buffer the hub drops the client at once
// and goes on delivering to the others.
func TestHubNeverWaits(t *testing.T) {
	hb := newHub(1, slog.New(slog.DiscardHandler))
	go hb.run()
	defer hb.stop()
	slow := hb.newClient(nil, "user:a", "session:x")
	fast := hb.newClient(nil, "user:a", "session:x")
	hb.add(slow)
	hb.add(fast)
	got := make(chan []byte, 100)
	go func() {
		for m := range fast.send {
			got <- m
		}
		close(got)
	}()
	const n = 50
	done := make(chan struct{})
	go func() {
		for i := range n {
			hb.publish(delivery{requestID: "r", scope: "session:x", msg: []byte{byte(i)}})
			// Let the fast reader keep up; the slow one never reads.
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				t.Errorf("fast client: message %d not delivered", i)
				return
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("delivery blocked behind the slow client")
	}
	if hb.count() != 1 {
		t.Fatalf("hub has %d clients, want 1 (slow dropped)", hb.count())
	}
	// The slow client's channel is closed after what it had buffered.
	<-slow.send
	if _, open := <-slow.send; open {
		t.Fatal("slow client's send channel not closed")
	}
}

// dialSmallBuffer connects with a tiny socket receive buffer, so a client
// that does not read backs up sooner.
func (h *harness) dialSmallBuffer(c caller) *websocket.Conn {
	h.t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4 << 10)
		}
		return conn, err
	}}
	hdr := http.Header{}
	hdr.Set("Origin", h.ts.URL)
	hdr.Set("Cookie", c.cookie.String())
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(h.ts.URL, "http")+"/api/v1/ws", hdr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return conn
}

// A socket ends with its session's idle timeout: the socket's own traffic
// does not keep the sign-in alive, but HTTP use of the session does.
func TestSocketClosesWhenSessionIdlesOut(t *testing.T) {
	h := newHarness(t, 16)
	h.srv.sessions.idle = 600 * time.Millisecond
	idle, busy := h.login("dpo"), h.login("dpo2")
	idleConn, busyConn := h.mustDial(idle), h.mustDial(busy)

	closed := make(chan time.Time, 1)
	go func() {
		for {
			if _, _, err := idleConn.ReadMessage(); err != nil {
				closed <- time.Now()
				return
			}
		}
	}()
	start := time.Now()
	// The busy session is used every 100 ms for 1.5 s, well past the idle
	// timeout, and its socket stays open meanwhile.
	for time.Since(start) < 1500*time.Millisecond {
		res := h.do(busy, "GET", "/api/v1/me", nil, false)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("busy session: %d", res.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case at := <-closed:
		if d := at.Sub(start); d < 500*time.Millisecond {
			t.Fatalf("idle socket closed after %v, before the idle timeout", d)
		}
	default:
		t.Fatal("the idle session's socket is still open 1.5 s after a 600 ms idle timeout")
	}
	_ = busyConn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := busyConn.ReadMessage(); err != nil && !isTimeout(err) {
		t.Fatalf("the busy session's socket was closed: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
