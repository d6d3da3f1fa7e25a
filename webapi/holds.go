package webapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// holdWait is how long a hold request waits for the aggregator to apply the
// change before answering 202: it is usually done in well under a second.
// A variable so that tests can wait less.
var holdWait = 10 * time.Second

// holdView is a legal hold as the API shows it.
type holdView struct {
	ContactID   string    `json:"contact_id"`
	HoldID      string    `json:"hold_id"`
	PlacedBy    string    `json:"placed_by"`
	PlacedAt    time.Time `json:"placed_at"`
	ReasonCode  string    `json:"reason_code"`
	ReasonLabel string    `json:"reason_label"`
	Ticket      string    `json:"ticket,omitempty"`
	AuditSeq    int64     `json:"audit_seq"`
}

func (s *Server) viewHold(h stores.Hold) *holdView {
	label := h.ReasonCode
	for _, r := range s.cfg.HoldReasons {
		if r.Code == h.ReasonCode {
			label = r.Label
		}
	}
	return &holdView{ContactID: h.ContactID, HoldID: h.HoldID, PlacedBy: h.PlacedBy, PlacedAt: h.PlacedAt,
		ReasonCode: h.ReasonCode, ReasonLabel: label, Ticket: h.Ticket, AuditSeq: h.AuditSeq}
}

// holdsOf returns the holds in force among ids; none when holds are not
// wired (the pipeline still enforces them).
func (s *Server) holdsOf(ctx context.Context, ids ...string) (map[string]stores.Hold, error) {
	if s.deps.Holds == nil || len(ids) == 0 {
		return map[string]stores.Hold{}, nil
	}
	return s.deps.Holds.Held(ctx, ids...)
}

type holdRequest struct {
	ReasonCode string `json:"reason_code"`
	Ticket     string `json:"ticket,omitempty"`
}

type holdResponse struct {
	// Status is "placed", "lifted" or, when the change was published but
	// not yet applied within holdWait, "pending".
	Status string    `json:"status"`
	HoldID string    `json:"hold_id"`
	Hold   *holdView `json:"hold"`
}

func (s *Server) handlePlaceHold(w http.ResponseWriter, r *http.Request) {
	s.changeHold(w, r, schemas.HoldPlace)
}

func (s *Server) handleLiftHold(w http.ResponseWriter, r *http.Request) {
	s.changeHold(w, r, schemas.HoldLift)
}

// changeHold publishes a hold change and waits for the aggregator, the
// audit log's writer, to apply it and audit it.
func (s *Server) changeHold(w http.ResponseWriter, r *http.Request, action schemas.HoldAction) {
	p := principalFrom(r.Context())
	id := r.PathValue("id")
	if s.rule.Check(id) != nil {
		writeError(w, http.StatusBadRequest, "invalid_contact_id", "the contact ID is not valid")
		return
	}
	var req holdRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	reasons := s.cfg.HoldReasons
	if action == schemas.HoldLift {
		reasons = s.cfg.HoldLiftReasons
	}
	if !reasonIn(reasons, req.ReasonCode) {
		writeError(w, http.StatusBadRequest, "invalid_reason_code", "choose one of the configured reasons")
		return
	}
	if req.Ticket != "" && schemas.CheckTicket(req.Ticket) != nil {
		writeError(w, http.StatusBadRequest, schemas.CodeInvalidTicket,
			"the ticket must be a case reference of up to 64 letters, digits, '.', '_', ':', '/' or '-', without personal data such as a phone number")
		return
	}
	if s.deps.Holds == nil || s.deps.HoldRequests == nil {
		writeError(w, http.StatusServiceUnavailable, "holds_unavailable", "legal holds are not available on this server")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	if _, err := s.deps.Contacts.Get(ctx, s.cfg.ContactIndex, id); errors.Is(err, stores.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no contact with this ID (it may have been deleted)")
		return
	} else if err != nil {
		s.storeFailed(w, "contact get", err)
		return
	}
	cur, err := s.holdsOf(ctx, id)
	if err != nil {
		s.storeFailed(w, "holds", err)
		return
	}
	if h, held := cur[id]; held && action == schemas.HoldPlace {
		writeJSON(w, http.StatusConflict, struct {
			apiError
			Hold *holdView `json:"hold"`
		}{apiError{Error: "the contact is already under legal hold", Code: "already_held"}, s.viewHold(h)})
		return
	} else if !held && action == schemas.HoldLift {
		writeError(w, http.StatusConflict, "not_held", "the contact is not under legal hold")
		return
	}
	hid, err := uuid.NewV7()
	if err != nil {
		s.log.Error("hold ID", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	ev := schemas.HoldRequested{HoldID: hid.String(), ContactID: id, Action: action, RequestedBy: p.Name,
		RequestedAt: s.now().UTC(), ReasonCode: req.ReasonCode, Ticket: req.Ticket}
	if err := s.deps.HoldRequests.RequestHold(ctx, ev); err != nil {
		s.log.Error("hold request", "hold_id", ev.HoldID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "submit_failed", "the hold change could not be requested; nothing changed; try again")
		return
	}
	s.log.Info("legal hold change requested", "hold_id", ev.HoldID, "action", action, "user", p.Name)
	resp := holdResponse{Status: "pending", HoldID: ev.HoldID}
	for deadline := time.Now().Add(holdWait); time.Now().Before(deadline); {
		cur, err := s.holdsOf(ctx, id)
		if err == nil {
			h, held := cur[id]
			if action == schemas.HoldPlace && held {
				resp.Status, resp.Hold = "placed", s.viewHold(h)
				break
			}
			if action == schemas.HoldLift && !held {
				resp.Status = "lifted"
				break
			}
		}
		select {
		case <-ctx.Done():
			deadline = time.Time{}
		case <-time.After(100 * time.Millisecond):
		}
	}
	status := http.StatusOK
	if resp.Status == "pending" {
		status = http.StatusAccepted
	} else {
		s.notifyContacts([]string{id}, contactMsg{Hold: resp.Status})
	}
	writeJSON(w, status, resp)
}
