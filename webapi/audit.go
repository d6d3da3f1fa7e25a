package webapi

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

const (
	auditPageSize = 50
	// auditCSVMaxRows bounds one export; narrow the filters for more.
	auditCSVMaxRows = 100_000
	auditCSVBatch   = 500
)

type auditResponse struct {
	Setting  string `json:"setting"`
	Page     int    `json:"page"`
	PageSize int    `json:"page_size"`
	HasMore  bool   `json:"has_more"`
	// Total counts every entry matching the filters, on all pages.
	Total int64 `json:"total"`
	// Own is true when the caller sees only the entries of its own requests.
	Own     bool                `json:"own"`
	Entries []stores.AuditEntry `json:"entries"`
}

// auditFilter reads user (the start of a principal, in any case),
// functionality, from, to and contact_id, and narrows the filter to the
// caller's own requests unless it may read the whole log.
func (s *Server) auditFilter(r *http.Request) (stores.AuditFilter, error) {
	q := r.URL.Query()
	var f stores.AuditFilter
	if p := principalFrom(r.Context()); !p.can(permAuditRead) {
		f.Actor = p.Name
	}
	if v := strings.TrimSpace(q.Get("user")); v != "" {
		if !principalRE.MatchString(v) {
			return f, &badRequest{"invalid_user", "A user name holds only letters, digits and . _ @ : + - (at most 128)."}
		}
		f.ActorPrefix = v
	}
	if v := q.Get("functionality"); v != "" {
		if !slices.Contains(functionalities, v) {
			return f, &badRequest{"invalid_functionality", "functionality must be one of: " + strings.Join(functionalities, ", ")}
		}
		f.Functionality = v
	}
	if v := strings.TrimSpace(q.Get("contact_id")); v != "" {
		if s.rule.Check(v) != nil {
			return f, &badRequest{"invalid_contact_id", msgInvalidContactID}
		}
		f.ContactID = v
	}
	if v := strings.TrimSpace(q.Get("request_id")); v != "" {
		if !schemas.IsRequestID(v) {
			return f, &badRequest{"invalid_request_id", "the request ID is not valid"}
		}
		f.RequestID = v
	}
	if v := strings.TrimSpace(q.Get("reason_code")); v != "" {
		if !schemas.CheckReasonCode(v) {
			return f, &badRequest{"invalid_reason_code", "A reason code holds only a-z, 0-9 and . _ - (at most 64)."}
		}
		f.ReasonCode = v
	}
	if v := strings.TrimSpace(q.Get("ticket")); v != "" {
		if schemas.CheckTicket(v) != nil {
			return f, &badRequest{"invalid_ticket", "A ticket is a case reference of letters, digits and . _ : / - (at most 64)."}
		}
		f.Ticket = v
	}
	var err error
	f.From, f.To, err = timeRange(q)
	return f, err
}

// handleAudit pages through the audit log, newest first. One more entry than
// a page is read to tell whether another page follows.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := s.auditFilter(r)
	if err != nil {
		writeBadRequest(w, err)
		return
	}
	page, size := 1, auditPageSize
	if v := q.Get("page_size"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > maxPageSize {
			writeError(w, http.StatusBadRequest, "invalid_page_size", "page_size must be from 1 to "+strconv.Itoa(maxPageSize))
			return
		}
	}
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 || page > 100000 {
			writeError(w, http.StatusBadRequest, "invalid_page", "page must be a whole number from 1")
			return
		}
	}
	f.Offset, f.Limit = (page-1)*size, size+1
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	entries, err := s.deps.Ledger.Audit(ctx, f)
	if err != nil {
		s.storeFailed(w, "audit", err)
		return
	}
	total, err := s.deps.Ledger.AuditCount(ctx, f)
	if err != nil {
		s.storeFailed(w, "audit count", err)
		return
	}
	resp := auditResponse{Setting: stores.AuditSetting, Page: page, PageSize: size, Total: total,
		Own: f.Actor != "", Entries: entries}
	if len(entries) > size {
		resp.HasMore, resp.Entries = true, entries[:size]
	}
	if resp.Entries == nil {
		resp.Entries = []stores.AuditEntry{}
	}
	for i := range resp.Entries {
		resp.Entries[i].Setting = stores.AuditSetting
	}
	writeJSON(w, http.StatusOK, resp)
}

// auditCSVHeader: a late entry has amends (the seq of the decision it
// completes) and its one channel; a refused one has outcome "refused".
// Columns after hash were added later, so earlier readers still work.
// user is the principal; account says whether it is an "sso" or a "local"
// one. SSO display names are not exported: the log holds principals only.
// producer is who published the request as its signature proves it
// (erasure:<key>, upstream:<key>, unsigned), beside the user it claims.
var auditCSVHeader = []string{
	"setting", "seq", "completed_at", "requested_at", "user", "functionality", "request_id",
	"contact_ids", "outcome", "error_code", "channels", "replay_of", "hash", "amends", "request_digest",
	"account", "reason_code", "ticket", "held_contact_ids", "producer",
}

// handleAuditCSV exports the filtered audit log, streamed in batches.
func (s *Server) handleAuditCSV(w http.ResponseWriter, r *http.Request) {
	f, err := s.auditFilter(r)
	if err != nil {
		writeBadRequest(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	// Read the first batch before answering, so a store failure is a 503
	// rather than a truncated file.
	f.Offset, f.Limit = 0, auditCSVBatch
	batch, err := s.deps.Ledger.Audit(ctx, f)
	if err != nil {
		s.storeFailed(w, "audit export", err)
		return
	}
	name := "audit-data-deletion-" + time.Now().UTC().Format("20060102-150405") + ".csv"
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write(auditCSVHeader)
	rows := 0
	for {
		for _, e := range batch {
			_ = cw.Write(auditCSVRow(e))
			rows++
		}
		if len(batch) < auditCSVBatch || rows >= auditCSVMaxRows {
			break
		}
		f.Offset += len(batch)
		if batch, err = s.deps.Ledger.Audit(ctx, f); err != nil {
			// Headers are sent; mark the file as incomplete in-band.
			s.log.Warn("audit export: store failed mid-stream", "rows", rows, "err", err)
			_ = cw.Write([]string{"# export incomplete: a store failed; export again"})
			break
		}
	}
	cw.Flush()
}

func auditCSVRow(e stores.AuditEntry) []string {
	var chans []string
	for _, c := range e.Channels {
		var deleted int64
		for _, a := range c.Artefacts {
			deleted += a.Deleted
		}
		part := fmt.Sprintf("%s:%s:deleted=%d", c.Channel, c.Status, deleted)
		if c.ErrorCode != "" {
			part += ":" + c.ErrorCode
		}
		chans = append(chans, part)
	}
	row := []string{
		stores.AuditSetting,
		strconv.FormatInt(e.Seq, 10),
		formatCSVTime(e.CompletedAt),
		formatCSVTime(e.RequestedAt),
		e.Actor,
		e.Functionality,
		e.RequestID,
		strings.Join(e.ContactIDs, " "),
		string(e.Status),
		e.ErrorCode,
		strings.Join(chans, "; "),
		e.ReplayOf,
		e.Hash,
		amendsCell(e.Amends),
		e.RequestDigest,
		accountKind(e.Actor),
		e.ReasonCode,
		e.Ticket,
		strings.Join(e.HeldContactIDs, " "),
		e.Producer,
	}
	for i, v := range row {
		row[i] = csvSafe(v)
	}
	return row
}

func amendsCell(seq int64) string {
	if seq == 0 {
		return ""
	}
	return strconv.FormatInt(seq, 10)
}

func formatCSVTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
