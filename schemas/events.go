package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"
)

// Source says where a deletion request came from.
type Source string

const (
	SourceUI       Source = "ui"
	SourceCLI      Source = "cli"
	SourceUpstream Source = "upstream"
	SourceReplay   Source = "replay"
)

// Status of a channel or of a whole request.
type Status string

const (
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	// StatusSkipped marks a channel of a failed request that never ran:
	// contact-search is skipped when an artefact channel failed, so the
	// contact stays findable for a retry.
	StatusSkipped Status = "skipped"
	// StatusNotFound is a request's outcome when every channel succeeded and
	// none found anything of any of its contacts (every artefact count has
	// before = 0): the contacts do not exist or were deleted before. A
	// request naming several contacts of which only some were found is
	// succeeded: counts are summed per artefact type over the request's
	// contacts, so which of them held nothing is not known, and the outcome
	// does not list them. Channels never report it.
	StatusNotFound Status = "not_found"
	// StatusRefused is the outcome of a submission whose request ID is
	// already bound to other content (see ContentDigest): nothing was
	// deleted for it, and the request the ID belongs to is not affected.
	StatusRefused Status = "refused"
	// StatusHeld is the outcome of a request every one of whose contacts
	// is under legal hold: nothing was deleted. A request mixing held and
	// free contacts gets the status of what was done for the free ones and
	// lists the held ones in HeldContactIDs. Channels never report it.
	StatusHeld Status = "held"
)

// DeletionRequested asks for every artefact of the listed contacts to be
// erased. It carries identifiers only: no names, numbers or message bodies.
type DeletionRequested struct {
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schema_version"`
	RequestID     string    `json:"request_id"`
	ContactIDs    []string  `json:"contact_ids"`
	RequestedBy   string    `json:"requested_by"`
	RequestedAt   time.Time `json:"requested_at"`
	Source        Source    `json:"source"`
	// Channels the request expects results from, taken from the data map when
	// the request was made, so a data map change cannot leave it incomplete.
	Channels []Channel `json:"channels"`
	// ReasonCode is a short code such as "gdpr-art17"; never free text.
	ReasonCode string `json:"reason_code,omitempty"`
	// ReplayOf names the original request when this one re-runs it.
	ReplayOf string `json:"replay_of,omitempty"`
	// DeadlineSeconds overrides the aggregator's default deadline.
	DeadlineSeconds int `json:"deadline_seconds,omitempty"`
	// Ticket is an optional reference to the case the deletion answers,
	// such as "INC-20431": a short code, never personal data (see
	// CheckTicket).
	Ticket string `json:"ticket,omitempty"`
	// Producer is who published the request, as its signature proves it
	// (see consumers.Producers): set by the consumer that verified it, never taken
	// from the payload, whose schema refuses the field.
	Producer string `json:"producer,omitempty"`
}

// ContentDigest identifies what a request asks for, so that its request ID
// can be bound to it: the first content seen with an ID is the only one
// acted on under that ID. Resubmitting the same content (a resumed bulk run,
// a redelivery) gives the same digest whatever its requested_at, channels or
// deadline; other contacts, another requester, reason, source, replay_of or
// ticket give another.
//
// It is the lowercase hex SHA-256 of this JSON, without whitespace, keys in
// this order, absent strings as "" except the ticket, which is left out
// when there is none (so requests without one keep the digest they had
// before tickets existed):
//
//	{"contact_ids":[sorted, each once],"reason_code":"…","replay_of":"…","requested_by":"…","source":"…","ticket":"…","v":1}
func (r DeletionRequested) ContentDigest() string {
	ids := slices.Clone(r.ContactIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if ids == nil {
		ids = []string{}
	}
	canon := struct {
		ContactIDs  []string `json:"contact_ids"`
		ReasonCode  string   `json:"reason_code"`
		ReplayOf    string   `json:"replay_of"`
		RequestedBy string   `json:"requested_by"`
		Source      Source   `json:"source"`
		Ticket      string   `json:"ticket,omitempty"`
		V           int      `json:"v"`
	}{ids, r.ReasonCode, r.ReplayOf, r.RequestedBy, r.Source, r.Ticket, 1}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(canon) // strings and a slice of strings always encode
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return hex.EncodeToString(sum[:])
}

// FinalizeRequested starts phase 2: every artefact channel succeeded, so the
// contact's search and CTR index entries may now go.
type FinalizeRequested struct {
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schema_version"`
	RequestID     string    `json:"request_id"`
	ContactIDs    []string  `json:"contact_ids"`
	RequestedAt   time.Time `json:"requested_at"`
	// RequestDigest is the ContentDigest of the request being finalized; the
	// contact-search channel acts only when the request ID is bound to it.
	RequestDigest string `json:"request_digest,omitempty"`
}

// ArtefactCount is what one artefact type held before the deletion, how much
// was removed, and what the verification query found afterwards; and, for
// what was removed, when the store physically purged it. Some stores only
// hide deleted data until a merge or a cleanup runs: for those PurgeBy and
// PurgeJob say by when and by what it will be gone.
type ArtefactCount struct {
	Artefact string     `json:"artefact"`
	Before   int64      `json:"before"`
	Deleted  int64      `json:"deleted"`
	After    int64      `json:"after"`
	Store    string     `json:"store,omitempty"`
	PurgedAt *time.Time `json:"purged_at,omitempty"`
	PurgeBy  *time.Time `json:"purge_by,omitempty"`
	PurgeJob string     `json:"purge_job,omitempty"`
}

// ChannelCompleted is one channel's result for one request.
type ChannelCompleted struct {
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	RequestID     string          `json:"request_id"`
	Channel       Channel         `json:"channel"`
	Status        Status          `json:"status"`
	Artefacts     []ArtefactCount `json:"artefacts"`
	ErrorCode     string          `json:"error_code,omitempty"`
	CompletedAt   time.Time       `json:"completed_at"`
	// RequestDigest is the ContentDigest of the request the channel acted
	// on, so a result is never joined to other content under the same ID.
	RequestDigest string `json:"request_digest,omitempty"`
	// HeldContactIDs are the request's contacts the channel left alone
	// because they were under legal hold when it looked.
	HeldContactIDs []string `json:"held_contact_ids,omitempty"`
	// Interrupted says that an earlier run of this channel for the request
	// ended without a result (its process was killed, or its partition
	// moved mid-request): what that run deleted is gone but not in these
	// counts, so the counts are a lower bound.
	Interrupted bool `json:"interrupted,omitempty"`
}

// ChannelOutcome is a channel's part of a final outcome.
type ChannelOutcome struct {
	Channel   Channel         `json:"channel"`
	Status    Status          `json:"status"`
	Artefacts []ArtefactCount `json:"artefacts,omitempty"`
	ErrorCode string          `json:"error_code,omitempty"`
	// Interrupted is the channel result's (see ChannelCompleted).
	Interrupted bool `json:"interrupted,omitempty"`
}

// DeletionCompleted is the final outcome of a request, published once the
// audit entry is written.
type DeletionCompleted struct {
	Type          string           `json:"type"`
	SchemaVersion int              `json:"schema_version"`
	RequestID     string           `json:"request_id"`
	ContactIDs    []string         `json:"contact_ids"`
	RequestedBy   string           `json:"requested_by"`
	RequestedAt   time.Time        `json:"requested_at"`
	CompletedAt   time.Time        `json:"completed_at"`
	Source        Source           `json:"source"`
	Status        Status           `json:"status"`
	ErrorCode     string           `json:"error_code,omitempty"`
	Channels      []ChannelOutcome `json:"channels"`
	ReplayOf      string           `json:"replay_of,omitempty"`
	AuditSeq      int64            `json:"audit_seq"`
	AuditHash     string           `json:"audit_hash"`
	// RequestDigest is the ContentDigest of the request this outcome
	// answers: with the request ID it says whose outcome it is, since a
	// refused submission shares its ID with the request it collided with.
	RequestDigest string `json:"request_digest,omitempty"`
	// ReasonCode and Ticket are the request's, so the outcome and its
	// audit entry say why the deletion was made.
	ReasonCode string `json:"reason_code,omitempty"`
	Ticket     string `json:"ticket,omitempty"`
	// HeldContactIDs are the request's contacts that were under legal hold
	// and so not deleted; the status is about the others (held when there
	// are none).
	HeldContactIDs []string `json:"held_contact_ids,omitempty"`
	// Producer is the verified producer of the request (see
	// DeletionRequested.Producer), beside what it claims in RequestedBy
	// and Source.
	Producer string `json:"producer,omitempty"`
}

// Error codes carried in results and outcomes. They name a class of failure,
// never the data involved.
const (
	ErrCodeStoreUnavailable = "store_unavailable"
	ErrCodeStoreRejected    = "store_rejected"
	ErrCodeVerifyFailed     = "verification_failed"
	ErrCodeDeadline         = "deadline_exceeded"
	ErrCodeChannelFailed    = "channel_failed"
	ErrCodeInvalidRequest   = "invalid_request"
	ErrCodeInternal         = "internal_error"
	// ErrCodeRequestIDConflict: the request ID is bound to other content.
	ErrCodeRequestIDConflict = "request_id_conflict"
	// ErrCodeLegalHold: every contact of the request is under legal hold.
	ErrCodeLegalHold = "legal_hold"
)

// HoldAction says whether a HoldRequested places or lifts a hold.
type HoldAction string

const (
	HoldPlace HoldAction = "place"
	HoldLift  HoldAction = "lift"
)

// HoldRequested places or lifts a legal hold on one contact. A held contact
// is never erased: every channel checks the ledger's holds before it
// deletes. It is an internal event (signed), published by the web API and
// applied, with its audit entry, by the aggregator, the audit log's one
// writer.
type HoldRequested struct {
	Type          string     `json:"type"`
	SchemaVersion int        `json:"schema_version"`
	HoldID        string     `json:"hold_id"`
	ContactID     string     `json:"contact_id"`
	Action        HoldAction `json:"action"`
	RequestedBy   string     `json:"requested_by"`
	RequestedAt   time.Time  `json:"requested_at"`
	// ReasonCode is a short code such as "litigation"; never free text.
	ReasonCode string `json:"reason_code"`
	Ticket     string `json:"ticket,omitempty"`
}
