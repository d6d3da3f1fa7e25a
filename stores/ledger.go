package stores

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
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

// AuditEntry is one append-only, hash-chained audit record. A request has
// one decision entry (its final outcome) and may have two other kinds under
// the same request ID, chained like every entry:
//   - a late entry (Amends > 0) for a channel result that arrived after the
//     decision: its one channel, that channel's status and counts, so every
//     deletion performed is in the log;
//   - a refused entry (Status refused, error code request_id_conflict) for
//     a submission that reused the request ID with other content, naming that
//     submission's contacts and requester; nothing was deleted for it.
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
	// Amends is, on a late entry, the seq of the decision entry it completes.
	Amends int64 `json:"amends,omitempty"`
	// RequestDigest is the content digest of the submission the entry is
	// about (schemas.DeletionRequested.ContentDigest); empty on entries
	// written before digests existed. Both fields are omitted when empty, so
	// the hashes of older entries do not change.
	RequestDigest string `json:"request_digest,omitempty"`
	// ReasonCode and Ticket say why (a deletion's or a hold's reason code
	// and case reference); HeldContactIDs are a deletion's contacts left
	// alone under legal hold. Omitted when empty, like RequestDigest.
	ReasonCode     string   `json:"reason_code,omitempty"`
	Ticket         string   `json:"ticket,omitempty"`
	HeldContactIDs []string `json:"held_contact_ids,omitempty"`
	// Producer is who published the request, as its signature proves it
	// (erasure:<key>, upstream:<key> or unsigned), beside the Actor and
	// Functionality it claims. Omitted when empty, like RequestDigest.
	Producer string `json:"producer,omitempty"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
	// Signature is the base64 Ed25519 signature of the writer's audit key
	// over Hash (see SignAudit). Like Hash it is not hashed, and it is
	// omitted when empty: entries written without a key stay unsigned.
	Signature string `json:"signature,omitempty"`
}

// AuditFilter selects audit entries; zero fields do not filter.
type AuditFilter struct {
	// Actor is the principal exactly; ActorPrefix the start of it, ignoring
	// ASCII case (principals are ASCII), for people typing a name.
	Actor         string
	ActorPrefix   string
	Functionality string
	ContactID     string
	RequestID     string
	ReasonCode    string
	Ticket        string
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

// IsDecision reports whether e is a request's decision entry, the one its
// outcome names, rather than a late or refused entry.
func (e AuditEntry) IsDecision() bool {
	return e.Amends == 0 && e.Status != schemas.StatusRefused && !e.IsHold()
}

// Ledger keeps the aggregator's join state and the audit log, so in-flight
// joins survive a restart and the audit log can be queried and verified.
type Ledger interface {
	// BindRequest binds requestID to a content digest unless it is bound
	// already, and returns the digest it is bound to: the first binding wins,
	// and a request recorded before bindings existed is bound to its recorded
	// content. Callers act on a request only when the returned digest is
	// their own.
	BindRequest(ctx context.Context, requestID, digest string) (bound string, err error)
	// MarkRun records that channel ch begins erasing for requestID and
	// reports whether it is the channel's first run of the request. A later
	// one follows a run that ended without a result (a crash, a partition
	// moved mid-request), whose deletions its own counts cannot include.
	// Two runs at once may both be told they are not the first.
	MarkRun(ctx context.Context, requestID string, ch schemas.Channel) (first bool, err error)
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
	// Unpublished lists requests with an outcome not yet marked published,
	// earliest completion first, so a publish that failed is retried.
	Unpublished(ctx context.Context, limit int) ([]string, error)
	// Amend appends the late entry of a channel result that arrived after
	// its request was decided (see LateAuditEntry). The same result (request,
	// channel, status and completion time) is appended once: again, it
	// returns the stored entry with created=false. A request without an
	// outcome is a permanent error: its results belong in the decision.
	Amend(ctx context.Context, res schemas.ChannelCompleted) (entry AuditEntry, created bool, err error)
	// Refuse appends the entry of a submission refused because its request
	// ID is bound to other content: out describes the submission (status
	// refused, its digest in RequestDigest) and is returned with its audit
	// seq and hash. It touches nothing else, so the request the ID belongs
	// to keeps its state and outcome. One entry per request ID and digest:
	// again, it returns the stored one with created=false.
	Refuse(ctx context.Context, out schemas.DeletionCompleted, functionality string) (stored schemas.DeletionCompleted, created bool, err error)
	// ByContact returns the latest request states for a contact, newest first.
	ByContact(ctx context.Context, contactID string, limit int) ([]RequestState, error)
	// Audit queries the audit log, newest first. A request ID or contact
	// filter returns every entry of the matching requests: decision, late and
	// refused entries.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// AuditCount counts the entries Audit would return without Offset and
	// Limit, so the UI can say how many there are.
	AuditCount(ctx context.Context, f AuditFilter) (int64, error)
	// AuditActors returns up to limit distinct principals of the audit log
	// that start with prefix (as AuditFilter.ActorPrefix), ascending, for
	// the UI's suggestions; limit is capped at FieldValuesMaxLimit.
	AuditActors(ctx context.Context, prefix string, limit int) ([]string, error)
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
		RequestDigest: out.RequestDigest,
		ReasonCode:    out.ReasonCode,
		Ticket:        out.Ticket,
		// A copy: the entry is hashed, and must not change with the outcome.
		HeldContactIDs: slices.Clone(out.HeldContactIDs),
		Producer:       out.Producer,
		PrevHash:       prevHash,
	})
	var err error
	e.Hash, err = AuditHash(e)
	return e, err
}

// LateAuditEntry is the entry of a channel result that arrived after its
// request was decided by the entry decision: the decision's request,
// requester and functionality, the one channel with its own status, error
// code and counts, and the channel's completion time. It names the decision
// in Amends and is chained after prevHash as entry seq.
func LateAuditEntry(decision AuditEntry, res schemas.ChannelCompleted, seq int64, prevHash string) (AuditEntry, error) {
	if decision.Seq <= 0 {
		return AuditEntry{}, Permanent(fmt.Errorf("audit: late entry for request %s without its decision entry", res.RequestID))
	}
	arts := res.Artefacts
	if arts == nil {
		arts = []schemas.ArtefactCount{}
	}
	e := NormalizeAudit(AuditEntry{
		Seq:           seq,
		RequestID:     decision.RequestID,
		Setting:       AuditSetting,
		Functionality: decision.Functionality,
		Actor:         decision.Actor,
		ContactIDs:    decision.ContactIDs,
		Status:        res.Status,
		ErrorCode:     res.ErrorCode,
		Channels:      []schemas.ChannelOutcome{{Channel: res.Channel, Status: res.Status, Artefacts: arts, ErrorCode: res.ErrorCode}},
		RequestedAt:   decision.RequestedAt,
		CompletedAt:   res.CompletedAt,
		ReplayOf:      decision.ReplayOf,
		Amends:        decision.Seq,
		RequestDigest: decision.RequestDigest,
		ReasonCode:    decision.ReasonCode,
		Ticket:        decision.Ticket,
		Producer:      decision.Producer,
		PrevHash:      prevHash,
	})
	var err error
	e.Hash, err = AuditHash(e)
	return e, err
}

// SameLateResult reports whether late entry e records res, so a
// redelivered result is not appended twice.
func SameLateResult(e AuditEntry, res schemas.ChannelCompleted) bool {
	return e.Amends > 0 && len(e.Channels) == 1 && e.Channels[0].Channel == res.Channel &&
		e.Status == res.Status && e.CompletedAt.Equal(res.CompletedAt.UTC())
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
// canonical JSON of the entry without its "hash" and "signature" members)). Canonical JSON is
// the entry's JSON form (times in UTC RFC 3339, empty lists as []) with every
// object's keys sorted, no whitespace and no HTML escaping, so an external
// verifier can reproduce it; the first entry's prev_hash is "". Every Ledger
// implementation uses this function so that their chains are
// interchangeable.
func AuditHash(e AuditEntry) (string, error) {
	e = NormalizeAudit(e)
	e.Hash, e.Signature = "", ""
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
		ReasonCode:    out.ReasonCode,
		Ticket:        out.Ticket,
		Producer:      out.Producer,
	}
	for _, c := range out.Channels {
		r.Channels = append(r.Channels, c.Channel)
	}
	return r
}

// OutcomeEntry builds the audit entry of an outcome at a given link of the
// chain: what a ledger's one chaining function calls with the head it read.
func OutcomeEntry(out schemas.DeletionCompleted, functionality string) func(seq int64, prevHash string) (AuditEntry, error) {
	return func(seq int64, prevHash string) (AuditEntry, error) {
		return NewAuditEntry(out, functionality, seq, prevHash)
	}
}
