package webapi

import (
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Websocket timing, as in gorilla/websocket's chat example.
const (
	writeWait         = 10 * time.Second
	pongWait          = 60 * time.Second
	pingPeriod        = pongWait * 9 / 10
	maxClientMessage  = 16 << 10
	defaultSendBuffer = 64
	// maxWatchesPerClient bounds what one connection can make the hub track.
	maxWatchesPerClient = 256
)

// client is one websocket connection. Its send channel is written only by
// the hub and drained by its write pump; the hub closes it to drop the
// client. watched is touched only by the hub goroutine.
type client struct {
	conn    *websocket.Conn
	send    chan []byte
	who     string // principal identity, for owner checks
	scope   string // session or token; progress of its requests comes here
	watched map[string]struct{}
	// contacts are the contacts whose records it shows (see contactwatch.go).
	contacts map[string]struct{}
}

type delivery struct {
	requestID string
	scope     string // the owner's scope, "" when this instance does not know it
	msg       []byte
}

type directMsg struct {
	c   *client
	msg []byte
}

type watchReq struct {
	c         *client
	requestID string
}

// hub owns the set of connected clients: one goroutine registers and drops
// them and routes each event to the clients entitled to it. It never waits
// for a client: one whose buffer is full is dropped.
type hub struct {
	sendBuffer int
	log        *slog.Logger

	register   chan *client
	unregister chan *client
	deliver    chan delivery
	direct     chan directMsg
	watch      chan watchReq
	dropScopeC chan string
	countC     chan chan int
	contactW   chan contactWatch
	contactD   chan contactDelivery
	done       chan struct{}
	stopOnce   sync.Once

	// Owned by run.
	clients  map[*client]struct{}
	byScope  map[string]map[*client]struct{}
	watchers map[string]map[*client]struct{}
	// contactWatchers are, per contact ID, the clients showing its record.
	contactWatchers map[string]map[*client]struct{}
}

func newHub(sendBuffer int, log *slog.Logger) *hub {
	return &hub{
		sendBuffer: sendBuffer,
		log:        log,
		register:   make(chan *client),
		unregister: make(chan *client),
		deliver:    make(chan delivery, 256),
		direct:     make(chan directMsg, 64),
		watch:      make(chan watchReq, 64),
		dropScopeC: make(chan string),
		countC:     make(chan chan int),
		contactW:   make(chan contactWatch, 64),
		contactD:   make(chan contactDelivery, 256),
		done:       make(chan struct{}),
		clients:    map[*client]struct{}{},
		byScope:    map[string]map[*client]struct{}{},
		watchers:   map[string]map[*client]struct{}{},

		contactWatchers: map[string]map[*client]struct{}{},
	}
}

// send hands v to the hub unless it has stopped.
func send[T any](h *hub, ch chan T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-h.done:
		return false
	}
}

func (h *hub) newClient(conn *websocket.Conn, who, scope string) *client {
	return &client{conn: conn, send: make(chan []byte, h.sendBuffer), who: who, scope: scope, watched: map[string]struct{}{},
		contacts: map[string]struct{}{}}
}

func (h *hub) add(c *client) bool            { return send(h, h.register, c) }
func (h *hub) remove(c *client)              { send(h, h.unregister, c) }
func (h *hub) dropScope(scope string)        { send(h, h.dropScopeC, scope) }
func (h *hub) addWatch(c *client, id string) { send(h, h.watch, watchReq{c, id}) }
func (h *hub) sendTo(c *client, msg []byte)  { send(h, h.direct, directMsg{c, msg}) }
func (h *hub) publish(d delivery)            { send(h, h.deliver, d) }

// count returns the number of connected clients (for tests and metrics).
func (h *hub) count() int {
	reply := make(chan int, 1)
	if !send(h, h.countC, reply) {
		return 0
	}
	return <-reply
}

func (h *hub) stop() { h.stopOnce.Do(func() { close(h.done) }) }

func (h *hub) run() {
	for {
		select {
		case <-h.done:
			for c := range h.clients {
				h.drop(c)
			}
			return
		case c := <-h.register:
			h.clients[c] = struct{}{}
			if h.byScope[c.scope] == nil {
				h.byScope[c.scope] = map[*client]struct{}{}
			}
			h.byScope[c.scope][c] = struct{}{}
		case c := <-h.unregister:
			h.drop(c)
		case scope := <-h.dropScopeC:
			for c := range h.byScope[scope] {
				h.drop(c)
			}
		case w := <-h.watch:
			if _, ok := h.clients[w.c]; !ok || len(w.c.watched) >= maxWatchesPerClient {
				continue
			}
			w.c.watched[w.requestID] = struct{}{}
			if h.watchers[w.requestID] == nil {
				h.watchers[w.requestID] = map[*client]struct{}{}
			}
			h.watchers[w.requestID][w.c] = struct{}{}
		case m := <-h.direct:
			if _, ok := h.clients[m.c]; ok {
				h.push(m.c, m.msg)
			}
		case d := <-h.deliver:
			// Collect first: push may drop a client and edit these maps.
			var targets []*client
			if d.scope != "" {
				for c := range h.byScope[d.scope] {
					targets = append(targets, c)
				}
			}
			for c := range h.watchers[d.requestID] {
				if c.scope != d.scope || d.scope == "" {
					targets = append(targets, c)
				}
			}
			for _, c := range targets {
				if _, ok := h.clients[c]; ok {
					h.push(c, d.msg)
				}
			}
		case reply := <-h.countC:
			reply <- len(h.clients)
		case w := <-h.contactW:
			h.watchContacts(w)
		case d := <-h.contactD:
			h.deliverContacts(d)
		}
	}
}

// push queues msg for c, dropping c when its buffer is full: a client that
// does not read must not hold up anyone else.
func (h *hub) push(c *client, msg []byte) {
	select {
	case c.send <- msg:
	default:
		h.log.Info("websocket client dropped: not reading fast enough")
		h.drop(c)
	}
}

// drop forgets c and closes its send channel, which makes its write pump
// send a close frame and end the connection.
func (h *hub) drop(c *client) {
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	if set := h.byScope[c.scope]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.byScope, c.scope)
		}
	}
	for id := range c.watched {
		if set := h.watchers[id]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(h.watchers, id)
			}
		}
	}
	h.unwatchContacts(c)
	close(c.send)
}
