package webapi

import (
	"sync"
	"time"

	"github.com/erasure-project/erasure/schemas"
)

// Owners are remembered for ownerTTL after submission: long enough for any
// deletion to finish and a browser to reconnect and ask again. After that
// (or after a restart) the ledger's requested_by is the fallback.
const (
	ownerTTL        = time.Hour
	ownerMaxTracked = 100_000
)

// owner is who submitted a request through this instance.
type owner struct {
	who   string // principal identity: "user:<name>" or "token:<name>"
	scope string // the session or token whose connections get its progress
	req   schemas.DeletionRequested
	at    time.Time
}

// ownerMap tracks request ID → owner, so progress goes only to the browser
// session that asked.
type ownerMap struct {
	mu  sync.Mutex
	m   map[string]owner
	now func() time.Time
}

func newOwnerMap() *ownerMap {
	return &ownerMap{m: map[string]owner{}, now: time.Now}
}

func (o *ownerMap) add(requestID string, ow owner) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	ow.at = now
	if len(o.m) >= ownerMaxTracked {
		for id, e := range o.m {
			if now.Sub(e.at) > ownerTTL {
				delete(o.m, id)
			}
		}
	}
	o.m[requestID] = ow
}

// setRequest records the event once it was built.
func (o *ownerMap) setRequest(requestID string, req schemas.DeletionRequested) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e, ok := o.m[requestID]; ok {
		e.req = req
		o.m[requestID] = e
	}
}

func (o *ownerMap) remove(requestID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, requestID)
}

func (o *ownerMap) get(requestID string) (owner, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.m[requestID]
	if ok && o.now().Sub(e.at) > ownerTTL {
		delete(o.m, requestID)
		return owner{}, false
	}
	return e, ok
}

// identity is how a principal is matched against owners: users and API
// tokens live in different namespaces even if their names collide.
func (p *principal) identity() string {
	if p.Session != nil {
		return "user:" + p.Name
	}
	return "token:" + p.Name
}

// sourceOf is the request source of what a principal submits: the UI for
// browser sessions, the CLI for API tokens (the bulk script).
func (p *principal) sourceOf() schemas.Source {
	if p.Session != nil {
		return schemas.SourceUI
	}
	return schemas.SourceCLI
}

// ownsByLedger is the fallback owner check when the in-memory map has lost
// a request: the ledger's requested_by and source must match the principal.
func ownsByLedger(who string, req schemas.DeletionRequested) bool {
	switch req.Source {
	case schemas.SourceUI:
		return who == "user:"+req.RequestedBy
	case schemas.SourceCLI:
		return who == "token:"+req.RequestedBy
	}
	return false
}
