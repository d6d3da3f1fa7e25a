package schemas

import (
	"errors"
	"fmt"
	"time"
)

// ErrNoContacts is returned for an empty list of contact IDs.
var ErrNoContacts = errors.New("no contact IDs given")

// Submission is what a person or system supplies when asking for a
// deletion: the parts of a DeletionRequested that come from outside.
type Submission struct {
	// RequestID is set when resubmitting a request: the same ID never gets a
	// second outcome. Empty means a new time-ordered ID.
	RequestID string
	// ContactIDs may repeat an ID; the event carries each once.
	ContactIDs  []string
	RequestedBy string
	Source      Source
	ReasonCode  string
	// Ticket is an optional case reference; see CheckTicket.
	Ticket   string
	ReplayOf string
	// Deadline, when positive, overrides the aggregator's default.
	Deadline time.Duration
}

// DeadlineSeconds is the event's deadline_seconds for s: the deadline
// rounded up to whole seconds, or 0 for none.
func (s Submission) DeadlineSeconds() int {
	if s.Deadline <= 0 {
		return 0
	}
	return int((s.Deadline + time.Second - 1) / time.Second)
}

// Machine-readable codes of a SubmissionError. The web API returns the
// contact ID and reason codes as they are, so codes never change meaning.
const (
	CodeNoContacts         = "no_contacts"
	CodeTooManyContacts    = "too_many_contacts"
	CodeInvalidContactID   = "invalid_contact_id"
	CodeInvalidReasonCode  = "invalid_reason_code"
	CodeInvalidRequestedBy = "invalid_requested_by"
	CodeInvalidSource      = "invalid_source"
	CodeInvalidRequestID   = "invalid_request_id"
	CodeInvalidReplayOf    = "invalid_replay_of"
	CodeInvalidDeadline    = "invalid_deadline"
	CodeInvalidTicket      = "invalid_ticket"
)

// Limits of the event schema, which schemas' tests hold to the files.
const (
	maxContactIDLen    = 128
	maxPrincipalLen    = 128
	maxReasonCodeLen   = 64
	maxDeadlineSeconds = 86400
	maxTicketLen       = 64
	// ticketMaxDigitRun is one more than the longest run of digits a
	// ticket may hold: phone numbers have 9 digits or more.
	ticketMaxDigitRun = 9
)

// SubmissionError says which part of a submission is invalid without
// repeating it, since it could be anything someone typed.
type SubmissionError struct {
	Code string
	// Field is the DeletionRequested field at fault, e.g. "contact_ids".
	Field string
	// Position is the 1-based index into ContactIDs of an invalid contact
	// ID, and 0 for every other error.
	Position int
}

func (e *SubmissionError) Error() string {
	switch e.Code {
	case CodeNoContacts:
		return ErrNoContacts.Error()
	case CodeTooManyContacts:
		return fmt.Sprintf("more than %d contact IDs in one request", MaxContactsPerRequest)
	case CodeInvalidContactID:
		return fmt.Sprintf("contact ID #%d: %v", e.Position, ErrInvalidContactID)
	case CodeInvalidReasonCode:
		return "reason_code: not a short code of a-z, 0-9, '.', '_' or '-'"
	case CodeInvalidRequestedBy:
		return "requested_by: not a user or service name"
	case CodeInvalidDeadline:
		return fmt.Sprintf("deadline: more than %d seconds", maxDeadlineSeconds)
	case CodeInvalidTicket:
		return ErrInvalidTicket.Error()
	}
	return e.Field + ": invalid"
}

// Unwrap keeps the sentinels callers test for: ErrInvalidContactID and
// ErrNoContacts, and ErrInvalidEvent for the rest, which the event schema
// refuses too.
func (e *SubmissionError) Unwrap() error {
	switch e.Code {
	case CodeInvalidContactID:
		return ErrInvalidContactID
	case CodeNoContacts:
		return ErrNoContacts
	}
	return ErrInvalidEvent
}

// ValidateSubmission checks a whole submission against the event schema and
// the deployment's contact ID rule, so that nothing is published for a
// submission with any bad part. It returns nil or a *SubmissionError for
// the first problem, contact IDs first in list order.
//
// The list is counted as submitted, before repeats are dropped, so the
// limit is the schema's maxItems whatever the input.
func (r ContactIDRule) ValidateSubmission(s Submission) error {
	if len(s.ContactIDs) == 0 {
		return &SubmissionError{Code: CodeNoContacts, Field: "contact_ids"}
	}
	if len(s.ContactIDs) > MaxContactsPerRequest {
		return &SubmissionError{Code: CodeTooManyContacts, Field: "contact_ids"}
	}
	for i, id := range s.ContactIDs {
		if r.Check(id) != nil {
			return &SubmissionError{Code: CodeInvalidContactID, Field: "contact_ids", Position: i + 1}
		}
	}
	if s.ReasonCode != "" && !charset(s.ReasonCode, maxReasonCodeLen, reasonCodeByte) {
		return &SubmissionError{Code: CodeInvalidReasonCode, Field: "reason_code"}
	}
	if !charset(s.RequestedBy, maxPrincipalLen, principalByte) {
		return &SubmissionError{Code: CodeInvalidRequestedBy, Field: "requested_by"}
	}
	switch s.Source {
	case SourceUI, SourceCLI, SourceUpstream, SourceReplay:
	default:
		return &SubmissionError{Code: CodeInvalidSource, Field: "source"}
	}
	if s.RequestID != "" && !IsRequestID(s.RequestID) {
		return &SubmissionError{Code: CodeInvalidRequestID, Field: "request_id"}
	}
	if s.ReplayOf != "" && !IsRequestID(s.ReplayOf) {
		return &SubmissionError{Code: CodeInvalidReplayOf, Field: "replay_of"}
	}
	if s.Deadline > maxDeadlineSeconds*time.Second {
		return &SubmissionError{Code: CodeInvalidDeadline, Field: "deadline_seconds"}
	}
	if s.Ticket != "" && CheckTicket(s.Ticket) != nil {
		return &SubmissionError{Code: CodeInvalidTicket, Field: "ticket"}
	}
	return nil
}

// ErrInvalidTicket is the error of a ticket reference CheckTicket refuses.
var ErrInvalidTicket = errors.New("ticket: not a case reference of 1 to 64 letters, digits, '.', '_', ':', '/' or '-' without a run of 9 or more digits")

// CheckTicket accepts a case reference such as "INC-20431" or
// "JIRA:PRIV-7": 1 to 64 bytes of A-Z, a-z, 0-9, '.', '_', ':', '/' and '-'
// (so no spaces, '@' or '+', which names, email addresses and phone
// numbers need) and no run of 9 or more digits, separators between digits
// included, which could be a phone number. It is the schema's ticket rule,
// checked byte by byte; the error never repeats the ticket.
func CheckTicket(t string) error {
	if !charset(t, maxTicketLen, ticketByte) {
		return ErrInvalidTicket
	}
	run := 0
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= '0' && c <= '9':
			run++
			if run >= ticketMaxDigitRun {
				return ErrInvalidTicket
			}
		case ticketSeparator(c) && run > 0:
			// Digits split by separators still spell a number.
		default:
			run = 0
		}
	}
	return nil
}

// ticketByte is the schema's ticket class, [A-Za-z0-9._:/-].
func ticketByte(c byte) bool { return alnum(c) || ticketSeparator(c) }

func ticketSeparator(c byte) bool {
	switch c {
	case '.', '_', ':', '/', '-':
		return true
	}
	return false
}

// CheckReasonCode accepts the schema's reason_code: 1 to 64 bytes of a-z,
// 0-9, '.', '_' and '-'.
func CheckReasonCode(code string) bool { return charset(code, maxReasonCodeLen, reasonCodeByte) }

// charset reports whether s is 1 to max bytes, each accepted by ok. The
// schema patterns are checked byte by byte rather than by regexp, so no
// difference between regexp dialects (such as whether $ matches before a
// final newline) can let a value through here that the schema refuses.
func charset(s string, max int, ok func(byte) bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// contactIDByte is the schema's contact_id class, [A-Za-z0-9-].
func contactIDByte(c byte) bool { return alnum(c) || c == '-' }

// principalByte is the schema's principal class, [A-Za-z0-9._@:+-].
func principalByte(c byte) bool {
	switch c {
	case '.', '_', '@', ':', '+', '-':
		return true
	}
	return alnum(c)
}

// reasonCodeByte is the schema's reason_code class, [a-z0-9._-].
func reasonCodeByte(c byte) bool {
	switch c {
	case '.', '_', '-':
		return true
	}
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// IsRequestID reports whether s is the schema's request_id: a UUID in
// lower-case hex. It is the one request ID rule: the web API and the CLI
// check IDs they are given with it too.
func IsRequestID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}
