package webapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

type deletionRequest struct {
	ContactIDs []string `json:"contact_ids"`
	ReasonCode string   `json:"reason_code,omitempty"`
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
	}
	// Checked in full before anything is registered or published, by the
	// rules the publisher applies, so a bad list submits nothing.
	if err := s.rule.ValidateSubmission(sub); err != nil {
		s.submitFailed(w, err)
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
	})
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
