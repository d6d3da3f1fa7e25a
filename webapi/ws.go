package webapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 4096,
	// handleWS checks the origin itself, to answer in JSON.
	CheckOrigin: func(*http.Request) bool { return true },
	Error: func(w http.ResponseWriter, _ *http.Request, status int, _ error) {
		writeError(w, status, "websocket_upgrade", http.StatusText(status))
	},
}

// sameOrigin reports whether the Origin header names this host. Browsers
// always send it on websocket handshakes, and they attach the session cookie
// whichever site opens the socket, so for a cookie session it is required.
// Scripts with an API token may omit it.
func sameOrigin(r *http.Request, cookie bool) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return !cookie
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// Messages pushed to browsers.
type progressMsg struct {
	Type      string                  `json:"type"` // "progress"
	RequestID string                  `json:"request_id"`
	Channel   schemas.Channel         `json:"channel"`
	Status    schemas.Status          `json:"status"`
	Artefacts []schemas.ArtefactCount `json:"artefacts"`
	ErrorCode string                  `json:"error_code,omitempty"`
	// RequestDigest is the content the channel acted on.
	RequestDigest string `json:"request_digest,omitempty"`
}

type outcomeMsg struct {
	Type string `json:"type"` // "outcome"; shadows the event's own type field
	schemas.DeletionCompleted
}

type stateMsg struct {
	Type string `json:"type"` // "state"
	deletionState
}

// clientMsg is what browsers send: {"type":"watch","request_ids":[...]}
// after a reconnect, to get the current state of their requests.
//
// {"type":"watch_contacts","contact_ids":[...]} replaces the contacts whose
// records the page shows (see contactwatch.go).
type clientMsg struct {
	Type       string   `json:"type"`
	RequestIDs []string `json:"request_ids"`
	ContactIDs []string `json:"contact_ids"`
}

func progressOf(ev schemas.ChannelCompleted) progressMsg {
	arts := ev.Artefacts
	if arts == nil {
		arts = []schemas.ArtefactCount{}
	}
	return progressMsg{Type: "progress", RequestID: ev.RequestID, Channel: ev.Channel, Status: ev.Status, Artefacts: arts,
		ErrorCode: ev.ErrorCode, RequestDigest: ev.RequestDigest}
}

// handleWS upgrades to a websocket that carries the caller's deletion
// progress. The read pump runs here, so the request context lives as long
// as the connection; the write pump runs beside it.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if !sameOrigin(r, p.Session != nil) {
		writeError(w, http.StatusForbidden, "bad_origin", "websocket origin does not match this site")
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := s.hub.newClient(conn, p.identity(), p.key())
	if !s.hub.add(c) {
		_ = conn.Close()
		return
	}
	if p.Session != nil {
		stop := make(chan struct{})
		defer close(stop)
		go s.closeWithSession(c, p.Session, stop)
	}
	go writePump(c)
	s.readPump(r.Context(), c)
}

// closeWithSession closes c when its session ends: at its absolute end,
// at its idle timeout (the socket's own traffic does not keep a session
// alive), at a sign-out here, or at a sign-out everywhere on any replica
// (checked every revocationCheck), so a socket never outlives its sign-in.
func (s *Server) closeWithSession(c *client, sess *session, stop <-chan struct{}) {
	for {
		end, ok := s.sessions.endOf(sess.id)
		if ok {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			revoked, err := s.revoked.revoked(ctx, sess, s.now())
			cancel()
			ok = !revoked && err == nil
		}
		if !ok {
			s.hub.remove(c)
			return
		}
		if next := time.Now().Add(s.revoked.every); s.revoked.store != nil && next.Before(end) {
			end = next
		}
		t := time.NewTimer(time.Until(end) + time.Millisecond)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *Server) readPump(ctx context.Context, c *client) {
	defer func() {
		s.hub.remove(c)
		_ = c.conn.Close()
	}()
	c.conn.SetReadLimit(maxClientMessage)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		var m clientMsg
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Type {
		case "watch":
			s.watch(ctx, c, m.RequestIDs)
		case "watch_contacts":
			var ids []string
			for _, id := range m.ContactIDs {
				if s.rule.Check(id) == nil {
					ids = append(ids, id)
				}
			}
			send(s.hub, s.hub.contactW, contactWatch{c: c, ids: ids})
		}
	}
}

// watch subscribes c to requests its principal submitted and sends each one's
// current state. Requests of anyone else are ignored without a word, so a
// client cannot learn whether they exist.
func (s *Server) watch(ctx context.Context, c *client, ids []string) {
	if len(ids) > maxWatchesPerClient {
		ids = ids[:maxWatchesPerClient]
	}
	for _, id := range ids {
		if !schemas.IsRequestID(id) {
			continue
		}
		st, ok := s.ownedState(ctx, c.who, id)
		if !ok {
			continue
		}
		s.hub.addWatch(c, id)
		msg, err := json.Marshal(stateMsg{Type: "state", deletionState: stateOf(st)})
		if err != nil {
			continue
		}
		s.hub.sendTo(c, msg)
	}
}

// ownedState returns a request's state when who submitted it: by the
// in-memory owner map, or else by the ledger's requested_by.
func (s *Server) ownedState(ctx context.Context, who, id string) (stores.RequestState, bool) {
	o, tracked := s.owners.get(id)
	if tracked && o.who != who {
		return stores.RequestState{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	st, err := s.deps.Ledger.State(ctx, id)
	switch {
	case errors.Is(err, stores.ErrNotFound):
		if tracked && o.req.RequestID != "" {
			return stores.RequestState{Request: o.req}, true
		}
		return stores.RequestState{}, false
	case err != nil:
		s.log.Warn("watch: ledger state", "request_id", id, "err", err)
		if tracked && o.req.RequestID != "" {
			return stores.RequestState{Request: o.req}, true
		}
		return stores.RequestState{}, false
	}
	if !tracked && !ownsByLedger(who, st.Request) {
		return stores.RequestState{}, false
	}
	return st, true
}

// writePump sends queued messages and pings; it ends the connection when the
// hub closes the send channel or a write fails.
func writePump(c *client) {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		_ = c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				_ = c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ticker.C:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}
