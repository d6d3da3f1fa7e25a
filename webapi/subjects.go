package webapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// subjectRequest names one data subject by an exact phone number or email
// address: never both, never a pattern.
type subjectRequest struct {
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

// subjectContact is one contact of a data subject, as the selection lists
// it.
type subjectContact struct {
	ContactID string         `json:"contact_id"`
	Fields    map[string]any `json:"fields"`
	Held      bool           `json:"held,omitempty"`
}

type subjectResponse struct {
	ContactIDs []string         `json:"contact_ids"`
	Contacts   []subjectContact `json:"contacts"`
	// Truncated is true when the subject has more contacts than one
	// request may carry; the first MaxContactsPerRequest are listed.
	Truncated bool `json:"truncated"`
}

// handleSubjectContacts finds every contact of one data subject. The phone
// number or address comes in the body and goes nowhere else: not into the
// URL, logs, events or the audit log.
func (s *Server) handleSubjectContacts(w http.ResponseWriter, r *http.Request) {
	var req subjectRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	q, err := stores.SubjectQuery(req.Phone, req.Email)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_subject", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	docs, truncated, err := stores.FindSubject(ctx, s.deps.Contacts, s.cfg.ContactIndex, q)
	if errors.Is(err, stores.ErrNotAPhoneNumber) {
		writeError(w, http.StatusBadRequest, "invalid_subject", "the phone number is not a phone number")
		return
	}
	if err != nil {
		s.storeFailed(w, "subject search", err)
		return
	}
	out := subjectResponse{ContactIDs: []string{}, Contacts: []subjectContact{}, Truncated: truncated}
	for _, d := range docs {
		out.ContactIDs = append(out.ContactIDs, d.ID)
	}
	holds, err := s.holdsOf(ctx, out.ContactIDs...)
	if err != nil {
		s.storeFailed(w, "holds", err)
		return
	}
	for _, d := range docs {
		_, held := holds[d.ID]
		out.Contacts = append(out.Contacts, subjectContact{ContactID: d.ID, Fields: d.Fields, Held: held})
	}
	writeJSON(w, http.StatusOK, out)
}

// contactInventory is one contact of a confirmation: what each channel
// holds of it, and whatever would stop or change its deletion.
type contactInventory struct {
	ContactID string         `json:"contact_id"`
	Found     bool           `json:"found"`
	Fields    map[string]any `json:"fields,omitempty"`
	// Artefacts is nil when the inventory could not be taken.
	Artefacts      []channelArtefacts `json:"artefacts"`
	Total          int64              `json:"total"`
	InventoryError string             `json:"inventory_error,omitempty"`
	Hold           *holdView          `json:"hold,omitempty"`
	// Deleted is the deletion that removed a contact no longer in the
	// index; Pending a deletion of it still under way.
	Deleted *deletionRef `json:"deleted,omitempty"`
	Pending *deletionRef `json:"pending,omitempty"`
}

// deletionRef points at a deletion and its audit entry.
type deletionRef struct {
	RequestID   string         `json:"request_id"`
	RequestedBy string         `json:"requested_by"`
	RequestedAt time.Time      `json:"requested_at"`
	CompletedAt *time.Time     `json:"completed_at,omitempty"`
	Status      schemas.Status `json:"status,omitempty"`
	AuditSeq    int64          `json:"audit_seq,omitempty"`
}

type inventoriesRequest struct {
	ContactIDs []string `json:"contact_ids"`
}

type inventoriesResponse struct {
	Contacts []contactInventory `json:"contacts"`
}

// inventoryParallel bounds the contacts counted at once: each count is a
// query per artefact type.
const inventoryParallel = 4

// handleInventories reads, for a confirmation, every listed contact afresh:
// whether it is still there, what each channel holds of it, its hold, and
// the deletion that removed it or is removing it.
func (s *Server) handleInventories(w http.ResponseWriter, r *http.Request) {
	var req inventoriesRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	if len(req.ContactIDs) == 0 || len(req.ContactIDs) > schemas.MaxContactsPerRequest {
		writeError(w, http.StatusBadRequest, "invalid_contact_ids", "give 1 to 1,000 contact IDs")
		return
	}
	for i, id := range req.ContactIDs {
		if s.rule.Check(id) != nil {
			writeSubmissionError(w, &schemas.SubmissionError{Code: schemas.CodeInvalidContactID, Field: "contact_ids", Position: i + 1})
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	holds, err := s.holdsOf(ctx, req.ContactIDs...)
	if err != nil {
		s.storeFailed(w, "holds", err)
		return
	}
	out := make([]contactInventory, len(req.ContactIDs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inventoryParallel)
	for i, id := range req.ContactIDs {
		g.Go(func() error {
			inv, err := s.inventoryOf(gctx, id)
			if h, ok := holds[id]; ok {
				inv.Hold = s.viewHold(h)
			}
			out[i] = inv
			return err
		})
	}
	if err := g.Wait(); err != nil {
		s.storeFailed(w, "inventories", err)
		return
	}
	writeJSON(w, http.StatusOK, inventoriesResponse{Contacts: out})
}

// inventoryOf reads one contact for a confirmation. Only the index and the
// ledger failing is an error; counts that cannot be taken are reported.
func (s *Server) inventoryOf(ctx context.Context, id string) (contactInventory, error) {
	inv := contactInventory{ContactID: id}
	doc, err := s.deps.Contacts.Get(ctx, s.cfg.ContactIndex, id)
	switch {
	case errors.Is(err, stores.ErrNotFound):
	case err != nil:
		return inv, err
	default:
		inv.Found, inv.Fields = true, doc.Fields
	}
	deleted, pending, err := s.deletionsOf(ctx, id)
	if err != nil {
		return inv, err
	}
	inv.Pending = pending
	if !inv.Found {
		inv.Deleted = deleted
		inv.Artefacts = []channelArtefacts{}
		return inv, nil
	}
	counts, err := s.deps.Inventory.Inventory(ctx, id)
	if err != nil {
		s.log.Warn("inventory failed", "err", err)
		inv.InventoryError = "the artefact counts could not be read from every store"
		return inv, nil
	}
	inv.Artefacts = s.artefactsOf(counts)
	for _, ch := range inv.Artefacts {
		inv.Total += ch.Total
	}
	return inv, nil
}

// deletionsLookBack is how many of a contact's latest requests are read to
// find the one that deleted it or is deleting it.
const deletionsLookBack = 5

// deletionsOf returns a contact's latest completed deletion that removed
// it (succeeded), and a deletion of it still under way, if any.
func (s *Server) deletionsOf(ctx context.Context, id string) (deleted, pending *deletionRef, err error) {
	states, err := s.deps.Ledger.ByContact(ctx, id, deletionsLookBack)
	if err != nil {
		return nil, nil, err
	}
	for _, st := range states { // newest first
		req := st.Request
		ref := &deletionRef{RequestID: req.RequestID, RequestedBy: req.RequestedBy, RequestedAt: req.RequestedAt}
		if st.Outcome == nil {
			if pending == nil {
				pending = ref
			}
			continue
		}
		if deleted == nil && st.Outcome.Status == schemas.StatusSucceeded && !heldIn(st.Outcome.HeldContactIDs, id) {
			t := st.Outcome.CompletedAt
			ref.CompletedAt, ref.Status, ref.AuditSeq = &t, st.Outcome.Status, st.Outcome.AuditSeq
			deleted = ref
		}
	}
	return deleted, pending, nil
}

func heldIn(ids []string, id string) bool {
	for _, h := range ids {
		if h == id {
			return true
		}
	}
	return false
}
