package webapi

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/receipt"
)

// handleReceipt answers the signed receipt of one request as a file to
// save: every audit entry of the request (its decision and any late
// result), signed with the deployment's receipt key.
func (s *Server) handleReceipt(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("request_id")
	if !schemas.IsRequestID(id) {
		writeError(w, http.StatusBadRequest, "invalid_request_id", "the request ID is not valid")
		return
	}
	if s.cfg.ReceiptKey == nil {
		writeError(w, http.StatusServiceUnavailable, "receipts_unavailable", "no receipt signing key is configured")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	if p := principalFrom(r.Context()); !p.can(permAuditRead) {
		mine, err := s.ownRequest(ctx, p.Name, id)
		if err != nil {
			s.storeFailed(w, "receipt owner", err)
			return
		}
		if !mine {
			// The same answer as for an unknown request: whether someone
			// else's request exists is not the caller's to learn.
			writeError(w, http.StatusNotFound, "not_found", "no audit entry for this request: it is unknown or not decided yet")
			return
		}
	}
	rec, err := receipt.Issue(ctx, s.deps.Ledger, id, s.cfg.ReceiptKey, s.now())
	switch {
	case errors.Is(err, receipt.ErrNoEntries):
		writeError(w, http.StatusNotFound, "not_found", "no audit entry for this request: it is unknown or not decided yet")
		return
	case err != nil:
		s.storeFailed(w, "receipt", err)
		return
	}
	raw, err := receipt.Marshal(rec)
	if err != nil {
		s.log.Error("receipt: encode", "request_id", id, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "the receipt could not be encoded")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="deletion-receipt-`+id+`.json"`)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(raw)
}

// ownRequest reports whether the request's receipt is the caller's: an
// entry of it other than a refusal names the caller. A refused entry names
// whoever reused the ID, who has no claim on the request it belongs to.
func (s *Server) ownRequest(ctx context.Context, principal, requestID string) (bool, error) {
	entries, err := s.deps.Ledger.Audit(ctx, stores.AuditFilter{RequestID: requestID, Actor: principal, Limit: 20})
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Status != schemas.StatusRefused {
			return true, nil
		}
	}
	return false, nil
}

// handlePublicKey publishes the key receipts are verified with, PEM
// encoded, with its key ID in X-Receipt-Key-ID.
func (s *Server) handlePublicKey(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.ReceiptKey == nil {
		writeError(w, http.StatusServiceUnavailable, "receipts_unavailable", "no receipt signing key is configured")
		return
	}
	pub := s.cfg.ReceiptKey.Public().(ed25519.PublicKey)
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `inline; filename="erasure-receipt-key-`+receipt.KeyID(pub)+`.pem"`)
	w.Header().Set("X-Receipt-Key-ID", receipt.KeyID(pub))
	// A short cache: the key changes only on rotation.
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(receipt.EncodePublicKey(pub))
}
