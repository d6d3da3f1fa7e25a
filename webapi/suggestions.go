package webapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/erasure-project/erasure/stores"
)

// suggestionsLimit bounds one answer: enough to pick from while typing,
// little enough that the list stays readable and the query cheap.
const suggestionsLimit = 10

type suggestionsResponse struct {
	Field  string   `json:"field"`
	Values []string `json:"values"`
}

// handleSuggestions answers the values that exist for a filter, by prefix
// and ignoring ASCII case, as the filters match them: agents and queues
// from the contact index (contacts.read), users from the audit log
// (audit.read; with audit.read_own only the caller, who may see no other
// principal).
func (s *Server) handleSuggestions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	field, prefix := q.Get("field"), strings.TrimSpace(q.Get("prefix"))
	p := principalFrom(r.Context())
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	var values []string
	var err error
	switch field {
	case "agent", "queue":
		if !p.can(permContactsRead) {
			writeError(w, http.StatusForbidden, "forbidden", "you do not have permission to do this")
			return
		}
		if prefix != "" && !filterRE.MatchString(prefix) {
			writeError(w, http.StatusBadRequest, "invalid_prefix", "Use letters, digits, spaces and . _ @ : / + - only (at most 128).")
			return
		}
		values, err = s.deps.Contacts.FieldValues(ctx, s.cfg.ContactIndex, field, prefix, suggestionsLimit)
	case "user":
		if prefix != "" && !principalRE.MatchString(prefix) {
			writeError(w, http.StatusBadRequest, "invalid_prefix", "A user name holds only letters, digits and . _ @ : + - (at most 128).")
			return
		}
		switch {
		case p.can(permAuditRead):
			values, err = s.deps.Ledger.AuditActors(ctx, prefix, suggestionsLimit)
		case p.can(permAuditReadOwn):
			if stores.HasPrefixFold(p.Name, prefix) {
				values = []string{p.Name}
			}
		default:
			writeError(w, http.StatusForbidden, "forbidden", "you do not have permission to do this")
			return
		}
	default:
		writeError(w, http.StatusBadRequest, "invalid_field", "field must be agent, queue or user")
		return
	}
	if err != nil {
		s.storeFailed(w, "suggestions", err)
		return
	}
	if values == nil {
		values = []string{}
	}
	writeJSON(w, http.StatusOK, suggestionsResponse{Field: field, Values: values})
}
