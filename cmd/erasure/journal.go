package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/erasure-project/erasure/schemas"
)

// journal makes a bulk run resumable. Before a request is published its
// ID, contacts and content digest are written and synced; outcomes are
// appended as they arrive. A rerun over the same input with the same
// journal
//   - skips a request whose outcome was succeeded or not found;
//   - resubmits one without an outcome under its ID, so the pipeline
//     recognises the resubmission and never audits a contact twice;
//   - retries a failed or held one under a new ID: the pipeline keeps the
//     first final outcome of a request ID and would answer a resubmission
//     under it with the same outcome, without deleting anything more.
//
// In memory it keeps, per request, its ID, digest and where its outcomes
// start in the file, not the contacts, so a journal of a million contacts
// in a thousand requests costs about as little as a thousand requests.
type journal struct {
	f   *os.File
	end int64 // where the next line starts
	// latest maps a batch's contacts, in order, to the request ID last
	// submitted for them.
	latest   map[[32]byte]string
	requests map[string]*journalRequest
}

type journalRequest struct {
	submitted bool   // by a line of this journal, not only answered in it
	digest    string // empty in journals written before digests, and hand-written lines
	at        time.Time
	outcomes  []journalOutcome
}

// journalOutcome is an outcome as the journal keeps it in memory; the
// whole outcome is read from offset when it is printed.
type journalOutcome struct {
	status schemas.Status
	code   string
	held   int // contacts a legal hold kept
	digest string
	// legacy identifies an outcome without a digest by its requester and
	// contacts, as answers does.
	legacy [32]byte
	offset int64
}

type journalLine struct {
	RequestID  string    `json:"request_id"`
	ContactIDs []string  `json:"contact_ids,omitempty"`
	Digest     string    `json:"request_digest,omitempty"`
	At         time.Time `json:"submitted_at,omitzero"`
	// RetryOf names the failed request this one retries.
	RetryOf string                     `json:"retry_of,omitempty"`
	Outcome *schemas.DeletionCompleted `json:"outcome,omitempty"`
}

// journalLineIn is what loading needs of a line: an outcome's channels and
// counts are left in the file.
type journalLineIn struct {
	RequestID  string    `json:"request_id"`
	ContactIDs []string  `json:"contact_ids"`
	Digest     string    `json:"request_digest"`
	At         time.Time `json:"submitted_at"`
	Outcome    *struct {
		Status        schemas.Status `json:"status"`
		ErrorCode     string         `json:"error_code"`
		RequestDigest string         `json:"request_digest"`
		RequestedBy   string         `json:"requested_by"`
		ContactIDs    []string       `json:"contact_ids"`
		Held          []string       `json:"held_contact_ids"`
	} `json:"outcome"`
}

// maxJournalLine bounds one line: an outcome of 1,000 contacts is about
// 60 KB.
const maxJournalLine = 16 << 20

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &journal{f: f, latest: map[[32]byte]string{}, requests: map[string]*journalRequest{}}
	if err := j.load(path); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

func (j *journal) load(path string) error {
	br := bufio.NewReaderSize(j.f, 256<<10)
	for n := 1; ; n++ {
		line, rerr := readLine(br)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return fmt.Errorf("journal %s line %d: %w", path, n, rerr)
		}
		if len(line) > 0 {
			complete := line[len(line)-1] == '\n'
			if err := j.loadLine(line, j.end); err != nil {
				if !complete {
					// A torn last line from a crash. A request line is synced
					// before its request is published, so that request never
					// was; a lost outcome is read again by the rerun. Lines
					// written from now on must not be glued to it.
					if err := j.f.Truncate(j.end); err != nil {
						return fmt.Errorf("journal %s: drop torn last line: %w", path, err)
					}
					return nil
				}
				return fmt.Errorf("journal %s line %d: %w", path, n, err)
			}
			j.end += int64(len(line))
			if !complete {
				if _, err := j.f.Write([]byte{'\n'}); err != nil {
					return fmt.Errorf("journal %s: %w", path, err)
				}
				j.end++
			}
		}
		if rerr != nil {
			return nil
		}
	}
}

// readLine reads a line with its newline, at most maxJournalLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxJournalLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxJournalLine)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

func (j *journal) loadLine(line []byte, offset int64) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	var l journalLineIn
	if err := json.Unmarshal(line, &l); err != nil {
		return err
	}
	if !schemas.IsRequestID(l.RequestID) {
		return errors.New("request_id is not a request ID")
	}
	r := j.requests[l.RequestID]
	if r == nil {
		r = &journalRequest{}
		j.requests[l.RequestID] = r
	}
	if o := l.Outcome; o != nil {
		jo := journalOutcome{status: o.Status, code: o.ErrorCode, held: len(o.Held), digest: o.RequestDigest, offset: offset}
		if jo.digest == "" {
			jo.legacy = legacyKey(o.RequestedBy, o.ContactIDs)
		}
		r.outcomes = append(r.outcomes, jo)
		return nil
	}
	j.latest[batchKey(l.ContactIDs)] = l.RequestID
	r.submitted, r.digest, r.at = true, l.Digest, l.At
	return nil
}

// batchKey identifies a batch by its contacts in order.
func batchKey(ids []string) [32]byte {
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{','})
	}
	return [32]byte(h.Sum(nil))
}

// legacyKey identifies an outcome without a digest as answers does: by
// requester and the set of contacts.
func legacyKey(requestedBy string, ids []string) [32]byte {
	s := slices.Clone(ids)
	slices.Sort(s)
	s = slices.Compact(s)
	h := sha256.New()
	h.Write([]byte(requestedBy))
	h.Write([]byte{0})
	for _, id := range s {
		h.Write([]byte(id))
		h.Write([]byte{','})
	}
	return [32]byte(h.Sum(nil))
}

// requestFor returns the request ID last submitted for a batch of these
// contacts, in this order, with this content digest. A journal line
// without a digest matches any content.
func (j *journal) requestFor(ids []string, digest string) (string, bool) {
	id, ok := j.latest[batchKey(ids)]
	if !ok {
		return "", false
	}
	if d := j.requests[id].digest; d != "" && d != digest {
		return "", false // another requester or reason: another request
	}
	return id, true
}

// outcome returns the last recorded outcome of req's content under its ID.
func (j *journal) outcome(req schemas.DeletionRequested) (journalOutcome, bool) {
	r := j.requests[req.RequestID]
	if r == nil {
		return journalOutcome{}, false
	}
	digest := req.ContentDigest()
	var legacy *[32]byte
	for i := len(r.outcomes) - 1; i >= 0; i-- {
		o := r.outcomes[i]
		if o.digest != "" {
			if o.digest == digest {
				return o, true
			}
			continue
		}
		if legacy == nil {
			k := legacyKey(req.RequestedBy, req.ContactIDs)
			legacy = &k
		}
		if o.legacy == *legacy {
			return o, true
		}
	}
	return journalOutcome{}, false
}

// unfinishedSince is when the earliest request without any outcome was
// submitted: outcomes published since then may have reached no one.
func (j *journal) unfinishedSince() time.Time {
	var t time.Time
	for _, r := range j.requests {
		if r.submitted && len(r.outcomes) == 0 && !r.at.IsZero() && (t.IsZero() || r.at.Before(t)) {
			t = r.at
		}
	}
	return t
}

// awaiting says whether out may answer a request this journal submitted
// and holds no outcome of: surely, when the digests match, or possibly,
// when the request's line has no digest and only its batch can tell.
func (j *journal) awaiting(out schemas.DeletionCompleted) (surely, possibly bool) {
	r := j.requests[out.RequestID]
	switch {
	case r == nil || !r.submitted:
		return false, false
	case r.digest == "":
		return false, true
	}
	answered := slices.ContainsFunc(r.outcomes, func(o journalOutcome) bool { return o.digest == r.digest })
	return out.RequestDigest == r.digest && !answered, false
}

// recordSubmitted writes new requests and syncs before they are published.
// retryOf, when set, names the failed request each retries.
func (j *journal) recordSubmitted(reqs []schemas.DeletionRequested, retryOf []string) error {
	var buf []byte
	for i, r := range reqs {
		l := journalLine{RequestID: r.RequestID, ContactIDs: r.ContactIDs, Digest: r.ContentDigest(), At: r.RequestedAt}
		if retryOf != nil {
			l.RetryOf = retryOf[i]
		}
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	if _, err := j.f.Write(buf); err != nil {
		return err
	}
	if err := j.f.Sync(); err != nil {
		return err
	}
	j.end += int64(len(buf))
	for _, r := range reqs {
		j.latest[batchKey(r.ContactIDs)] = r.RequestID
		j.requests[r.RequestID] = &journalRequest{submitted: true, digest: r.ContentDigest(), at: r.RequestedAt}
	}
	return nil
}

// recordOutcome appends an outcome. It is not synced: a lost outcome only
// makes a rerun resubmit the request under its ID and read the outcome
// again.
func (j *journal) recordOutcome(out schemas.DeletionCompleted) error {
	line, err := json.Marshal(journalLine{RequestID: out.RequestID, Outcome: &out})
	if err != nil {
		return err
	}
	line = append(line, '\n')
	if _, err := j.f.Write(line); err != nil {
		return err
	}
	r := j.requests[out.RequestID]
	if r == nil {
		r = &journalRequest{}
		j.requests[out.RequestID] = r
	}
	jo := journalOutcome{status: out.Status, code: out.ErrorCode, held: len(out.HeldContactIDs), digest: out.RequestDigest, offset: j.end}
	if jo.digest == "" {
		jo.legacy = legacyKey(out.RequestedBy, out.ContactIDs)
	}
	r.outcomes = append(r.outcomes, jo)
	j.end += int64(len(line))
	return nil
}

// readOutcome reads a recorded outcome back from the file.
func (j *journal) readOutcome(o journalOutcome) (schemas.DeletionCompleted, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(j.f, o.offset, maxJournalLine), 64<<10)
	line, err := readLine(br)
	if err != nil && !errors.Is(err, io.EOF) {
		return schemas.DeletionCompleted{}, err
	}
	var l journalLine
	if err := json.Unmarshal(line, &l); err != nil {
		return schemas.DeletionCompleted{}, err
	}
	if l.Outcome == nil {
		return schemas.DeletionCompleted{}, errors.New("not an outcome line")
	}
	return *l.Outcome, nil
}

func (j *journal) Close() error {
	if err := j.f.Sync(); err != nil {
		j.f.Close()
		return err
	}
	return j.f.Close()
}
