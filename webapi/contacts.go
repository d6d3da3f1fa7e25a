package webapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/erasure-project/erasure/consumers/aggregator"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
)

const (
	defaultPageSize = 25
	maxPageSize     = 100
	// historyLimit is how many deletion requests a contact record shows.
	historyLimit = 20
	// storeTimeout bounds each store call made for one API request.
	storeTimeout = 15 * time.Second
)

// filterRE is what a channel, agent or queue filter may hold. The index
// matches a channel exactly and an agent or queue as a prefix ignoring
// ASCII case; the pattern keeps junk out of queries and logs.
var filterRE = regexp.MustCompile(`^[\p{L}\p{N} ._@:/+-]{1,128}$`)

// badRequest is a validation failure with a message safe to show: a
// sentence for the person who typed the value, since the UI shows it at the
// field the code names.
type badRequest struct{ code, msg string }

// msgInvalidContactID explains a contact ID that fails the configured rule
// without repeating it.
const msgInvalidContactID = "This is not a valid contact ID. Check it for a missing or mistyped character; copy it from the contact record if you can."

func (e *badRequest) Error() string { return e.msg }

// pageParams reads page (from 1) and page_size.
func pageParams(q url.Values) (page, size int, err error) {
	page, size = 1, defaultPageSize
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 || page > 100000 {
			return 0, 0, &badRequest{"invalid_page", "page must be a whole number from 1"}
		}
	}
	if v := q.Get("page_size"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > maxPageSize {
			return 0, 0, &badRequest{"invalid_page_size", "page_size must be from 1 to " + strconv.Itoa(maxPageSize)}
		}
	}
	return page, size, nil
}

// parseTime accepts RFC 3339 or a date; a date as the end of a range means
// the whole of that day (UTC).
func parseTime(v string, end bool) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		if end {
			t = t.Add(24*time.Hour - time.Nanosecond)
		}
		return t, true
	}
	return time.Time{}, false
}

// timeRange reads from and to.
func timeRange(q url.Values) (from, to time.Time, err error) {
	var ok bool
	if v := q.Get("from"); v != "" {
		if from, ok = parseTime(v, false); !ok {
			return from, to, &badRequest{"invalid_from", "The start date is not a date. Enter it as YYYY-MM-DD."}
		}
	}
	if v := q.Get("to"); v != "" {
		if to, ok = parseTime(v, true); !ok {
			return from, to, &badRequest{"invalid_to", "The end date is not a date. Enter it as YYYY-MM-DD."}
		}
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return from, to, &badRequest{"invalid_range", "The end date is before the start date. Choose an end date on or after the start date."}
	}
	return from, to, nil
}

func writeBadRequest(w http.ResponseWriter, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		writeError(w, http.StatusBadRequest, br.code, br.msg)
		return
	}
	writeError(w, http.StatusBadRequest, "bad_request", "bad request")
}

// contactSummary is one row of a search.
type contactSummary struct {
	ContactID string         `json:"contact_id"`
	Fields    map[string]any `json:"fields"`
	// Held is true while the contact is under legal hold.
	Held bool `json:"held,omitempty"`
}

type searchResponse struct {
	Total    int64            `json:"total"`
	Page     int              `json:"page"`
	PageSize int              `json:"page_size"`
	Items    []contactSummary `json:"items"`
}

func (s *Server) searchQuery(q url.Values) (stores.Query, int, int, error) {
	var sq stores.Query
	page, size, err := pageParams(q)
	if err != nil {
		return sq, 0, 0, err
	}
	if v := strings.TrimSpace(q.Get("contact_id")); v != "" {
		if s.rule.Check(v) != nil {
			return sq, 0, 0, &badRequest{"invalid_contact_id", msgInvalidContactID}
		}
		sq.ContactID = v
	}
	if v := strings.TrimSpace(q.Get("q")); v != "" {
		if len(v) > 256 || strings.ContainsFunc(v, isControl) {
			return sq, 0, 0, &badRequest{"invalid_q", "Search for at most 256 characters of a name, phone number or email address."}
		}
		sq.Text = v
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"channel", &sq.Channel}, {"agent", &sq.Agent}, {"queue", &sq.Queue}} {
		if v := strings.TrimSpace(q.Get(f.name)); v != "" {
			if !filterRE.MatchString(v) {
				return sq, 0, 0, &badRequest{"invalid_" + f.name, "Use letters, digits, spaces and . _ @ : / + - only (at most 128)."}
			}
			*f.dst = v
		}
	}
	if sq.From, sq.To, err = timeRange(q); err != nil {
		return sq, 0, 0, err
	}
	sq.Offset, sq.Limit = (page-1)*size, size
	return sq, page, size, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// handleSearch pages through the contact index.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	sq, page, size, err := s.searchQuery(r.URL.Query())
	if err != nil {
		writeBadRequest(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	res, err := s.deps.Contacts.Search(ctx, s.cfg.ContactIndex, sq)
	if err != nil {
		s.storeFailed(w, "contact search", err)
		return
	}
	out := searchResponse{Total: res.Total, Page: page, PageSize: size, Items: make([]contactSummary, 0, len(res.Docs))}
	ids := make([]string, 0, len(res.Docs))
	for _, d := range res.Docs {
		ids = append(ids, d.ID)
	}
	holds, err := s.holdsOf(ctx, ids...)
	if err != nil {
		s.storeFailed(w, "holds", err)
		return
	}
	for _, d := range res.Docs {
		_, held := holds[d.ID]
		out.Items = append(out.Items, contactSummary{ContactID: d.ID, Fields: d.Fields, Held: held})
	}
	writeJSON(w, http.StatusOK, out)
}

// storeFailed answers 503 for a store error and logs it without the request.
func (s *Server) storeFailed(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, context.Canceled) {
		return // the browser went away
	}
	s.log.Warn("store call failed", "op", what, "err", err)
	writeError(w, http.StatusServiceUnavailable, "store_unavailable", "a data store did not answer; try again")
}

// channelArtefacts is what one channel holds of a contact.
type channelArtefacts struct {
	Channel   schemas.Channel `json:"channel"`
	Last      bool            `json:"last"` // deleted only after every other channel
	Total     int64           `json:"total"`
	Artefacts []artefactCount `json:"artefacts"`
}

type artefactCount struct {
	Artefact string `json:"artefact"`
	Count    int64  `json:"count"`
}

// deletionSummary is one deletion request of a contact, as the UI shows it.
type deletionSummary struct {
	RequestID     string                   `json:"request_id"`
	RequestedBy   string                   `json:"requested_by"`
	RequestedAt   time.Time                `json:"requested_at"`
	Source        schemas.Source           `json:"source"`
	Functionality string                   `json:"functionality"`
	ContactIDs    []string                 `json:"contact_ids"`
	Status        string                   `json:"status"` // pending, succeeded, not_found or failed
	ErrorCode     string                   `json:"error_code,omitempty"`
	CompletedAt   *time.Time               `json:"completed_at,omitempty"`
	Channels      []schemas.ChannelOutcome `json:"channels"`
	ReasonCode    string                   `json:"reason_code,omitempty"`
	Ticket        string                   `json:"ticket,omitempty"`
	// HeldContactIDs were left alone under legal hold; AuditSeq is the
	// decision's audit entry.
	HeldContactIDs []string `json:"held_contact_ids,omitempty"`
	AuditSeq       int64    `json:"audit_seq,omitempty"`
}

type contactResponse struct {
	ContactID string         `json:"contact_id"`
	Fields    map[string]any `json:"fields"`
	// Artefacts is nil when the inventory could not be taken;
	// InventoryError then says so.
	Artefacts      []channelArtefacts `json:"artefacts"`
	InventoryError string             `json:"inventory_error,omitempty"`
	Deletions      []deletionSummary  `json:"deletions"`
	CanDelete      bool               `json:"can_delete"`
	// Hold is the legal hold in force, if any: while it is, the contact
	// cannot be deleted. CanHold says the caller may place and lift holds.
	Hold    *holdView `json:"hold"`
	CanHold bool      `json:"can_hold"`
}

// contactGone answers for a contact no longer in the index, naming the
// deletion that removed it (who, when, its audit entry) when the ledger
// knows it, so a page open since before it was deleted can say so.
type contactGone struct {
	apiError
	Deleted *deletionRef `json:"deleted,omitempty"`
}

// handleContact shows one contact: its index fields, what every channel
// holds of it, and its deletion history, so a failed deletion shows as such.
func (s *Server) handleContact(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.rule.Check(id) != nil {
		writeError(w, http.StatusBadRequest, "invalid_contact_id", msgInvalidContactID)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	doc, err := s.deps.Contacts.Get(ctx, s.cfg.ContactIndex, id)
	if errors.Is(err, stores.ErrNotFound) {
		gone := contactGone{apiError: apiError{Code: "not_found", Error: "no contact with this ID (it may have been deleted)"}}
		if deleted, _, err := s.deletionsOf(ctx, id); err == nil && deleted != nil {
			gone.Code, gone.Deleted = "deleted", deleted
			gone.Error = "this contact was deleted"
		}
		writeJSON(w, http.StatusNotFound, gone)
		return
	}
	if err != nil {
		s.storeFailed(w, "contact get", err)
		return
	}
	resp := contactResponse{
		ContactID: id,
		Fields:    doc.Fields,
		CanDelete: principalFrom(r.Context()).can(permContactsDelete),
		CanHold:   principalFrom(r.Context()).can(permContactsHold),
		Deletions: []deletionSummary{},
	}
	holds, err := s.holdsOf(ctx, id)
	if err != nil {
		s.storeFailed(w, "holds", err)
		return
	}
	if h, ok := holds[id]; ok {
		resp.Hold = s.viewHold(h)
	}
	if resp.Fields == nil {
		resp.Fields = map[string]any{}
	}
	inv, err := s.deps.Inventory.Inventory(ctx, id)
	if err != nil {
		s.log.Warn("inventory failed", "err", err)
		resp.InventoryError = "the artefact counts could not be read from every store"
	} else {
		resp.Artefacts = s.artefactsOf(inv)
	}
	states, err := s.deps.Ledger.ByContact(ctx, id, historyLimit)
	if err != nil {
		s.storeFailed(w, "ledger by contact", err)
		return
	}
	for _, st := range states {
		resp.Deletions = append(resp.Deletions, summarize(st))
	}
	writeJSON(w, http.StatusOK, resp)
}

// artefactsOf orders an inventory by channel (contact-search last) and by
// the data map's artefact order.
func (s *Server) artefactsOf(inv locate.Remaining) []channelArtefacts {
	out := []channelArtefacts{}
	chans := s.channels()
	for ch := range inv {
		if !slices.Contains(chans, ch) {
			chans = append(chans, ch)
		}
	}
	for _, ch := range chans {
		counts, ok := inv[ch]
		if !ok {
			continue
		}
		ca := channelArtefacts{Channel: ch, Last: ch == schemas.ChannelContactSearch, Artefacts: []artefactCount{}}
		var names []string
		if s.deps.DataMap != nil {
			for _, a := range s.deps.DataMap.Artefacts(ch) {
				names = append(names, a.Artefact)
			}
		}
		var rest []string
		for name := range counts {
			if !slices.Contains(names, name) {
				rest = append(rest, name)
			}
		}
		slices.Sort(rest)
		for _, name := range append(names, rest...) {
			n := counts[name]
			ca.Artefacts = append(ca.Artefacts, artefactCount{Artefact: name, Count: n})
			ca.Total += n
		}
		out = append(out, ca)
	}
	return out
}

// summarize turns a ledger state into what the UI shows.
func summarize(st stores.RequestState) deletionSummary {
	req := st.Request
	d := deletionSummary{
		RequestID:     req.RequestID,
		RequestedBy:   req.RequestedBy,
		RequestedAt:   req.RequestedAt,
		Source:        req.Source,
		Functionality: functionalityOf(req.Source),
		ContactIDs:    req.ContactIDs,
		Status:        "pending",
		Channels:      []schemas.ChannelOutcome{},
		ReasonCode:    req.ReasonCode,
		Ticket:        req.Ticket,
	}
	if o := st.Outcome; o != nil {
		d.Status, d.ErrorCode = string(o.Status), o.ErrorCode
		d.HeldContactIDs, d.AuditSeq = o.HeldContactIDs, o.AuditSeq
		t := o.CompletedAt
		d.CompletedAt = &t
		d.Channels = append(d.Channels, o.Channels...)
		return d
	}
	for _, ch := range orderedChannels(req.Channels) {
		if res, ok := st.Results[ch]; ok {
			d.Channels = append(d.Channels, schemas.ChannelOutcome{
				Channel: ch, Status: res.Status, Artefacts: res.Artefacts, ErrorCode: res.ErrorCode,
			})
		}
	}
	return d
}

func functionalityOf(src schemas.Source) string {
	if f, ok := aggregator.Functionality[src]; ok {
		return f
	}
	return string(src)
}

// orderedChannels sorts channels as AllChannels does, contact-search last.
func orderedChannels(chans []schemas.Channel) []schemas.Channel {
	out := slices.Clone(chans)
	slices.SortStableFunc(out, func(a, b schemas.Channel) int {
		return slices.Index(schemas.AllChannels, a) - slices.Index(schemas.AllChannels, b)
	})
	return out
}
