package webapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

type deletionRequest struct {
	ContactIDs []string `json:"contact_ids"`
	// ReasonCode, when given, must be one of the configured reasons.
	ReasonCode string `json:"reason_code,omitempty"`
	Ticket     string `json:"ticket,omitempty"`
}

type deletionAccepted struct {
	RequestID string `json:"request_id"`
	// RequestDigest is the request's content digest: with the request ID it
	// identifies the request's outcome (another submission reusing the ID
	// has another digest).
	RequestDigest   string            `json:"request_digest"`
	ContactIDs      []string          `json:"contact_ids"`
	Channels        []schemas.Channel `json:"channels"`
	DeadlineSeconds int               `json:"deadline_seconds"`
	RequestedAt     time.Time         `json:"requested_at"`
	// HeldContactIDs are contacts under legal hold when the request was
	// made: the pipeline will leave them alone and report them.
	HeldContactIDs []string `json:"held_contact_ids,omitempty"`
}

// writeSubmissionError answers a submission that schemas.ValidateSubmission
// refused. Messages name positions, never the input; parts the caller did
// not type, such as their own name, get the answer the event encoder's
// refusal always got.
func writeSubmissionError(w http.ResponseWriter, e *schemas.SubmissionError) {
	switch e.Code {
	case schemas.CodeNoContacts:
		writeError(w, http.StatusBadRequest, e.Code, "give at least one contact ID")
	case schemas.CodeTooManyContacts:
		writeError(w, http.StatusBadRequest, e.Code, fmt.Sprintf("at most %d contact IDs per request", schemas.MaxContactsPerRequest))
	case schemas.CodeInvalidContactID:
		writeError(w, http.StatusBadRequest, e.Code, fmt.Sprintf("contact ID #%d is not a valid contact ID", e.Position))
	case schemas.CodeInvalidReasonCode:
		writeError(w, http.StatusBadRequest, e.Code, "reason_code must be a short code of a-z, 0-9, '.', '_' or '-'")
	case schemas.CodeInvalidTicket:
		writeError(w, http.StatusBadRequest, e.Code,
			"the ticket must be a case reference of up to 64 letters, digits, '.', '_', ':', '/' or '-', without personal data such as a phone number")
	default:
		writeError(w, http.StatusBadRequest, "invalid_request", "the request was refused as invalid")
	}
}

// handleSubmit publishes a deletion request and remembers who asked, so its
// progress goes to that session only.
func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	var req deletionRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	sub := producers.Request{
		ContactIDs:  req.ContactIDs,
		RequestedBy: p.Name,
		Source:      p.sourceOf(),
		ReasonCode:  req.ReasonCode,
		Ticket:      req.Ticket,
	}
	// Checked in full before anything is registered or published, by the
	// rules the publisher applies, so a bad list submits nothing.
	if err := s.rule.ValidateSubmission(sub); err != nil {
		s.submitFailed(w, err)
		return
	}
	if sub.ReasonCode != "" && !reasonIn(s.cfg.Reasons, sub.ReasonCode) {
		writeError(w, http.StatusBadRequest, "unknown_reason_code", "choose one of the configured reasons")
		return
	}
	held, stop := s.checkSubmittable(w, r, sub.ContactIDs)
	if stop {
		return
	}
	rid, err := uuid.NewV7()
	if err != nil {
		s.log.Error("request ID", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	sub.RequestID = rid.String()
	// Registered before publishing: the first progress event may arrive
	// before Submit returns.
	s.owners.add(sub.RequestID, owner{who: p.identity(), scope: p.key()})
	ev, err := s.deps.Requests.Submit(r.Context(), sub)
	if err != nil {
		s.owners.remove(sub.RequestID)
		s.submitFailed(w, err)
		return
	}
	s.owners.setRequest(ev.RequestID, ev)
	s.log.Info("deletion requested", "request_id", ev.RequestID, "contacts", len(ev.ContactIDs),
		"user", p.Name, "source", ev.Source)
	writeJSON(w, http.StatusAccepted, deletionAccepted{
		RequestID:       ev.RequestID,
		RequestDigest:   ev.ContentDigest(),
		ContactIDs:      ev.ContactIDs,
		Channels:        ev.Channels,
		DeadlineSeconds: s.deadlineOf(ev),
		RequestedAt:     ev.RequestedAt,
		HeldContactIDs:  held,
	})
}

// pendingCheckMax is the most contacts a submission is checked for a
// deletion still under way.
const pendingCheckMax = 100

// submitConflict is the answer to a submission that would delete nothing
// or race another deletion; it names contacts (by ID) and no one's data.
type submitConflict struct {
	apiError
	HeldContactIDs    []string `json:"held_contact_ids,omitempty"`
	PendingContactIDs []string `json:"pending_contact_ids,omitempty"`
}

// checkSubmittable refuses, before anything is published, a request every
// contact of which is under legal hold (nothing could be deleted) and one
// naming a contact whose deletion is still under way (a second tab or a
// double click: the two would race and both report success). It returns
// the held contacts of a request that may go ahead; the pipeline checks
// holds again when it erases.
func (s *Server) checkSubmittable(w http.ResponseWriter, r *http.Request, ids []string) (held []string, stop bool) {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	holds, err := s.holdsOf(ctx, ids...)
	if err != nil {
		s.storeFailed(w, "holds", err)
		return nil, true
	}
	var unique []string
	for _, id := range ids {
		if slices.Contains(unique, id) {
			continue
		}
		unique = append(unique, id)
		if _, ok := holds[id]; ok {
			held = append(held, id)
		}
	}
	if len(held) == len(unique) {
		writeJSON(w, http.StatusConflict, submitConflict{apiError: apiError{Code: schemas.ErrCodeLegalHold,
			Error: "every contact of the request is under legal hold: nothing can be deleted until the hold is lifted"},
			HeldContactIDs: held})
		return nil, true
	}
	// The race this guards against is a person's (a second tab, a double
	// click), over a few contacts; a script's large request is not read
	// contact by contact.
	if len(unique) > pendingCheckMax {
		return held, false
	}
	inProgress := make([]bool, len(unique))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inventoryParallel)
	for i, id := range unique {
		g.Go(func() error {
			states, err := s.deps.Ledger.ByContact(gctx, id, 1)
			// Past its deadline (and phase 2's extra one) the aggregator
			// decides it any moment; a request the ledger lost track of
			// must not block.
			inProgress[i] = err == nil && len(states) > 0 && states[0].Outcome == nil &&
				s.now().Before(states[0].Deadline.Add(2*s.cfg.Deadline))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		s.storeFailed(w, "ledger by contact", err)
		return nil, true
	}
	var pending []string
	for i, id := range unique {
		if inProgress[i] {
			pending = append(pending, id)
		}
	}
	if len(pending) > 0 {
		writeJSON(w, http.StatusConflict, submitConflict{apiError: apiError{Code: "deletion_in_progress",
			Error: "a deletion of this contact is already under way; wait for its outcome"}, PendingContactIDs: pending})
		return nil, true
	}
	return held, false
}

func (s *Server) deadlineOf(ev schemas.DeletionRequested) int {
	if ev.DeadlineSeconds > 0 {
		return ev.DeadlineSeconds
	}
	return s.deadlineSeconds()
}

func (s *Server) submitFailed(w http.ResponseWriter, err error) {
	var se *schemas.SubmissionError
	switch {
	case errors.As(err, &se):
		writeSubmissionError(w, se)
	case errors.Is(err, schemas.ErrNoContacts):
		// Another Requester may return the bare sentinel.
		writeSubmissionError(w, &schemas.SubmissionError{Code: schemas.CodeNoContacts, Field: "contact_ids"})
	case errors.Is(err, schemas.ErrInvalidEvent):
		writeError(w, http.StatusBadRequest, "invalid_request", "the request was refused as invalid")
	case errors.Is(err, context.Canceled):
	default:
		s.log.Error("submit deletion", "err", err)
		writeError(w, http.StatusServiceUnavailable, "submit_failed", "the deletion could not be requested; nothing was deleted; try again")
	}
}

// deletionState is a request as the API returns it.
type deletionState struct {
	RequestID string `json:"request_id"`
	// RequestDigest is the content digest of the request the ID is bound to.
	RequestDigest string                     `json:"request_digest"`
	Status        string                     `json:"status"` // pending, succeeded, not_found or failed
	Request       schemas.DeletionRequested  `json:"request"`
	Results       []schemas.ChannelCompleted `json:"results"`
	Outcome       *schemas.DeletionCompleted `json:"outcome"`
	Deadline      *time.Time                 `json:"deadline,omitempty"`
}

func stateOf(st stores.RequestState) deletionState {
	out := deletionState{
		RequestID: st.Request.RequestID,
		Status:    "pending",
		Request:   st.Request,
		Results:   []schemas.ChannelCompleted{},
		Outcome:   st.Outcome,
	}
	// The outcome's digest is the one decided on; a request rebuilt from an
	// outcome lacks its reason code.
	out.RequestDigest = st.Request.ContentDigest()
	if st.Outcome != nil && st.Outcome.RequestDigest != "" {
		out.RequestDigest = st.Outcome.RequestDigest
	}
	if !st.Deadline.IsZero() {
		d := st.Deadline
		out.Deadline = &d
	}
	for _, ch := range orderedChannels(channelsOf(st)) {
		if res, ok := st.Results[ch]; ok {
			out.Results = append(out.Results, res)
		}
	}
	if st.Outcome != nil {
		out.Status = string(st.Outcome.Status)
	}
	return out
}

// channelsOf lists the channels a request expects plus any that reported.
func channelsOf(st stores.RequestState) []schemas.Channel {
	chans := append([]schemas.Channel{}, st.Request.Channels...)
	for ch := range st.Results {
		found := false
		for _, c := range chans {
			found = found || c == ch
		}
		if !found {
			chans = append(chans, ch)
		}
	}
	return chans
}

// handleDeletion returns a request's state to its requester, to anyone who
// may delete contacts (the same deletions show on contact records) and to
// auditors.
func (s *Server) handleDeletion(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	id := r.PathValue("id")
	if !schemas.IsRequestID(id) {
		writeError(w, http.StatusBadRequest, "invalid_request_id", "the request ID is not valid")
		return
	}
	o, tracked := s.owners.get(id)
	allowed := p.can(permContactsDelete) || p.can(permAuditRead) || (tracked && o.who == p.identity())
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	st, err := s.deps.Ledger.State(ctx, id)
	switch {
	case errors.Is(err, stores.ErrNotFound):
		if !allowed {
			writeError(w, http.StatusForbidden, "forbidden", "you do not have permission to do this")
			return
		}
		if tracked && o.req.RequestID != "" {
			// Published, not yet seen by the aggregator.
			writeJSON(w, http.StatusOK, stateOf(stores.RequestState{Request: o.req}))
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "no deletion request with this ID")
		return
	case err != nil:
		s.storeFailed(w, "ledger state", err)
		return
	}
	if !allowed && !ownsByLedger(p.identity(), st.Request) {
		// The same answer whether or not it exists, for those without access.
		writeError(w, http.StatusForbidden, "forbidden", "you do not have permission to do this")
		return
	}
	writeJSON(w, http.StatusOK, stateOf(st))
}
