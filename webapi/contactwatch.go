package webapi

import (
	"encoding/json"

	"github.com/erasure-project/erasure/schemas"
)

// Contact watches keep open record pages current: a browser says which
// contacts it shows, and when a deletion of one of them is decided, or its
// legal hold changes on this instance, it is told to read the record again.
// The message names the contact, the request and the status only; the page
// reads the rest through the API with the user's own permissions.

// maxContactWatches bounds the contacts one connection follows: a page
// shows one record, a confirmation a subject's contacts.
const maxContactWatches = schemas.MaxContactsPerRequest

// contactMsg tells a browser that a contact it shows changed.
type contactMsg struct {
	Type      string         `json:"type"` // "contact"
	ContactID string         `json:"contact_id"`
	RequestID string         `json:"request_id,omitempty"`
	Status    schemas.Status `json:"status,omitempty"`
	// Hold is "placed" or "lifted" for a legal hold change.
	Hold string `json:"hold,omitempty"`
}

// contactWatch replaces the contacts a client follows.
type contactWatch struct {
	c   *client
	ids []string
}

// contactDelivery is one change for the watchers of each of its contacts.
type contactDelivery struct {
	msgs map[string][]byte // contact ID → message
}

// watchContacts replaces what c follows. Called by run only.
func (h *hub) watchContacts(w contactWatch) {
	if _, ok := h.clients[w.c]; !ok {
		return
	}
	h.unwatchContacts(w.c)
	for _, id := range w.ids[:min(len(w.ids), maxContactWatches)] {
		w.c.contacts[id] = struct{}{}
		if h.contactWatchers[id] == nil {
			h.contactWatchers[id] = map[*client]struct{}{}
		}
		h.contactWatchers[id][w.c] = struct{}{}
	}
}

// unwatchContacts forgets what c follows. Called by run only.
func (h *hub) unwatchContacts(c *client) {
	for id := range c.contacts {
		if set := h.contactWatchers[id]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(h.contactWatchers, id)
			}
		}
		delete(c.contacts, id)
	}
}

// deliverContacts pushes each message to the watchers of its contact.
// Called by run only.
func (h *hub) deliverContacts(d contactDelivery) {
	for id, msg := range d.msgs {
		var targets []*client
		for c := range h.contactWatchers[id] {
			targets = append(targets, c)
		}
		for _, c := range targets {
			if _, ok := h.clients[c]; ok {
				h.push(c, msg)
			}
		}
	}
}

// notifyContacts tells the browsers showing any of ids that it changed.
func (s *Server) notifyContacts(ids []string, m contactMsg) {
	d := contactDelivery{msgs: map[string][]byte{}}
	for _, id := range ids {
		m.Type, m.ContactID = "contact", id
		raw, err := json.Marshal(m)
		if err != nil {
			s.log.Error("contact watch: encode", "err", err)
			return
		}
		d.msgs[id] = raw
	}
	send(s.hub, s.hub.contactD, d)
}
