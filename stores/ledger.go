package stores

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/erasure-project/erasure/schemas"
)

// Limits of the audit log's list queries.
const (
	AuditDefaultLimit = 100
	AuditMaxLimit     = 1000
)

// AuditSetting is the Setting name of every deletion audit entry.
const AuditSetting = "Data Deletion"

// AuditEntry is one append-only, hash-chained audit record of a final outcome.
type AuditEntry struct {
	Seq           int64                    `json:"seq"`
	RequestID     string                   `json:"request_id"`
	Setting       string                   `json:"setting"`
	Functionality string                   `json:"functionality"`
	Actor         string                   `json:"actor"`
	ContactIDs    []string                 `json:"contact_ids"`
	Status        schemas.Status           `json:"status"`
	ErrorCode     string                   `json:"error_code,omitempty"`
	Channels      []schemas.ChannelOutcome `json:"channels"`
	RequestedAt   time.Time                `json:"requested_at"`
	CompletedAt   time.Time                `json:"completed_at"`
	ReplayOf      string                   `json:"replay_of,omitempty"`
	PrevHash      string                   `json:"prev_hash"`
	Hash          string                   `json:"hash"`
}

// AuditFilter selects audit entries; zero fields do not filter.
type AuditFilter struct {
	Actor         string
	Functionality string
	ContactID     string
	RequestID     string
	From, To      time.Time // on CompletedAt
	Offset, Limit int
}

// RequestState is the join state of one request, as the aggregator sees it.
type RequestState struct {
	Request    schemas.DeletionRequested
	Results    map[schemas.Channel]schemas.ChannelCompleted
	Finalizing bool      // FinalizeRequested was published
	Deadline   time.Time // when it fails if still incomplete
	Outcome    *schemas.DeletionCompleted
	Published  bool // the outcome event was published
}

// Ledger keeps the aggregator's join state and the audit log, so in-flight
// joins survive a restart and the audit log can be queried and verified.
type Ledger interface {
	// PutRequest records a request; recording it again changes nothing.
	PutRequest(ctx context.Context, r schemas.DeletionRequested, deadline time.Time) error
	// PutResult upserts a channel result on (request, channel). Results for
	// requests not seen yet are kept and joined when the request arrives.
	PutResult(ctx context.Context, r schemas.ChannelCompleted) error
	// State returns the join state of a request, or ErrNotFound.
	State(ctx context.Context, requestID string) (RequestState, error)
	// MarkFinalizing records that phase 2 was started.
	MarkFinalizing(ctx context.Context, requestID string) error
	// Overdue lists unfinished requests whose deadline is before now.
	Overdue(ctx context.Context, now time.Time, limit int) ([]string, error)
	// Complete stores the outcome and appends its audit entry in one step.
	// For a request that already has an outcome it changes nothing and returns
	// the stored one with created=false, so a redelivery never writes twice.
	Complete(ctx context.Context, out schemas.DeletionCompleted, functionality string) (stored schemas.DeletionCompleted, created bool, err error)
	// MarkPublished records that the outcome event was published, so a
	// redelivery does not publish it again.
	MarkPublished(ctx context.Context, requestID string) error
	// ByContact returns the latest request states for a contact, newest first.
	ByContact(ctx context.Context, contactID string, limit int) ([]RequestState, error)
	// Audit queries the audit log, newest first.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// VerifyChain recomputes every hash and reports the first broken link.
	VerifyChain(ctx context.Context) (entries int64, err error)
}

// NewAuditEntry is the audit entry of an outcome, chained after prevHash as
// entry seq, normalised and hashed.
func NewAuditEntry(out schemas.DeletionCompleted, functionality string, seq int64, prevHash string) (AuditEntry, error) {
	e := NormalizeAudit(AuditEntry{
		Seq:           seq,
		RequestID:     out.RequestID,
		Setting:       AuditSetting,
		Functionality: functionality,
		Actor:         out.RequestedBy,
		ContactIDs:    out.ContactIDs,
		Status:        out.Status,
		ErrorCode:     out.ErrorCode,
		Channels:      out.Channels,
		RequestedAt:   out.RequestedAt,
		CompletedAt:   out.CompletedAt,
		ReplayOf:      out.ReplayOf,
		PrevHash:      prevHash,
	})
	var err error
	e.Hash, err = AuditHash(e)
	return e, err
}

// NormalizeAudit puts an entry in the form it has after a round trip through
// storage (UTC times, empty rather than nil lists), so its hash can be
// recomputed from the stored columns.
func NormalizeAudit(e AuditEntry) AuditEntry {
	e.RequestedAt = e.RequestedAt.UTC()
	e.CompletedAt = e.CompletedAt.UTC()
	if e.ContactIDs == nil {
		e.ContactIDs = []string{}
	}
	if e.Channels == nil {
		e.Channels = []schemas.ChannelOutcome{}
	}
	return e
}

// AuditHash computes an audit entry's hash: hex(SHA-256(prev_hash ||
// canonical JSON of the entry without its "hash" member)). Canonical JSON is
// the entry's JSON form (times in UTC RFC 3339, empty lists as []) with every
// object's keys sorted, no whitespace and no HTML escaping, so an external
// verifier can reproduce it; the first entry's prev_hash is "". Every Ledger
// implementation uses this function so that their chains are
// interchangeable.
func AuditHash(e AuditEntry) (string, error) {
	e = NormalizeAudit(e)
	e.Hash = ""
	raw, err := json.Marshal(e)
	if err != nil {
		return "", Permanent(fmt.Errorf("audit: encode entry: %w", err))
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return "", Permanent(fmt.Errorf("audit: canonicalise entry: %w", err))
	}
	delete(m, "hash")
	var canon bytes.Buffer
	enc := json.NewEncoder(&canon)
	// Maps encode with sorted keys; "<", ">" and "&" stay as themselves, as
	// other JSON encoders write them.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return "", Permanent(fmt.Errorf("audit: canonicalise entry: %w", err))
	}
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write(bytes.TrimSuffix(canon.Bytes(), []byte("\n")))
	return hex.EncodeToString(h.Sum(nil)), nil
}

// VerifyAuditLink checks that e is entry n+1 of the chain and follows prev.
func VerifyAuditLink(e AuditEntry, n int64, prev string) error {
	if e.Seq != n+1 {
		return Permanent(fmt.Errorf("audit chain broken at seq %d: expected seq %d", e.Seq, n+1))
	}
	if e.PrevHash != prev {
		return Permanent(fmt.Errorf("audit chain broken at seq %d: prev_hash does not match the hash of seq %d", e.Seq, n))
	}
	h, err := AuditHash(e)
	if err != nil {
		return err
	}
	if h != e.Hash {
		return Permanent(fmt.Errorf("audit chain broken at seq %d: entry does not match its hash", e.Seq))
	}
	return nil
}

// RequestFromOutcome rebuilds the request an outcome answers, for an outcome
// whose request was never recorded (a deadline sweep after the request row
// was lost, say): State and ByContact still need it.
func RequestFromOutcome(out schemas.DeletionCompleted) schemas.DeletionRequested {
	r := schemas.DeletionRequested{
		Type:          schemas.TypeDeletionRequested,
		SchemaVersion: schemas.Version,
		RequestID:     out.RequestID,
		ContactIDs:    out.ContactIDs,
		RequestedBy:   out.RequestedBy,
		RequestedAt:   out.RequestedAt,
		Source:        out.Source,
		ReplayOf:      out.ReplayOf,
	}
	for _, c := range out.Channels {
		r.Channels = append(r.Channels, c.Channel)
	}
	return r
}
