package schemas

import "time"

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
}

// FinalizeRequested starts phase 2: every artefact channel succeeded, so the
// contact's search and CTR index entries may now go.
type FinalizeRequested struct {
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schema_version"`
	RequestID     string    `json:"request_id"`
	ContactIDs    []string  `json:"contact_ids"`
	RequestedAt   time.Time `json:"requested_at"`
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
}

// ChannelOutcome is a channel's part of a final outcome.
type ChannelOutcome struct {
	Channel   Channel         `json:"channel"`
	Status    Status          `json:"status"`
	Artefacts []ArtefactCount `json:"artefacts,omitempty"`
	ErrorCode string          `json:"error_code,omitempty"`
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
)
