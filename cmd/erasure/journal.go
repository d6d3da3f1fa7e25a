package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/erasure-project/erasure/schemas"
)

// journal makes a bulk run resumable: before publishing, it records each
// request's ID and contacts; as outcomes arrive, it records them. A run
// over the same input with the same journal reuses the request IDs, so the
// pipeline recognises resubmissions and never audits a contact twice, and
// skips requests that already have their outcome.
type journal struct {
	f         *os.File
	submitted map[string]string // contact IDs joined by "," -> request ID
	outcomes  map[string][]schemas.DeletionCompleted
	earliest  time.Time
}

type journalLine struct {
	RequestID  string                     `json:"request_id"`
	ContactIDs []string                   `json:"contact_ids,omitempty"`
	At         time.Time                  `json:"submitted_at,omitzero"`
	Outcome    *schemas.DeletionCompleted `json:"outcome,omitempty"`
}

func openJournal(path string) (*journal, error) {
	j := &journal{submitted: map[string]string{}, outcomes: map[string][]schemas.DeletionCompleted{}}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for n := 1; sc.Scan(); n++ {
			var l journalLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				// A torn last line from a crash is expected; anything else is not.
				if !sc.Scan() {
					break
				}
				f.Close()
				return nil, fmt.Errorf("journal %s line %d: %w", path, n, err)
			}
			if l.Outcome != nil {
				j.outcomes[l.RequestID] = append(j.outcomes[l.RequestID], *l.Outcome)
				continue
			}
			j.submitted[strings.Join(l.ContactIDs, ",")] = l.RequestID
			if j.earliest.IsZero() || l.At.Before(j.earliest) {
				j.earliest = l.At
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("journal %s: %w", path, err)
		}
	}
	if j.f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, err
	}
	return j, nil
}

// requestID returns the ID a batch was submitted with before, if any.
func (j *journal) requestID(contactIDs []string) string {
	return j.submitted[strings.Join(contactIDs, ",")]
}

// outcome returns the recorded outcome of req's content under its ID, if
// any.
func (j *journal) outcome(req schemas.DeletionRequested) (schemas.DeletionCompleted, bool) {
	for _, out := range j.outcomes[req.RequestID] {
		if answers(out, req) {
			return out, true
		}
	}
	return schemas.DeletionCompleted{}, false
}

// recordSubmitted writes new requests and syncs before they are published.
func (j *journal) recordSubmitted(reqs []schemas.DeletionRequested) error {
	w := bufio.NewWriter(j.f)
	enc := json.NewEncoder(w)
	for _, r := range reqs {
		if err := enc.Encode(journalLine{RequestID: r.RequestID, ContactIDs: r.ContactIDs, At: r.RequestedAt}); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return j.f.Sync()
}

func (j *journal) recordOutcome(out schemas.DeletionCompleted) error {
	line, err := json.Marshal(journalLine{RequestID: out.RequestID, Outcome: &out})
	if err != nil {
		return err
	}
	_, err = j.f.Write(append(line, '\n'))
	return err
}

func (j *journal) Close() error {
	if err := j.f.Sync(); err != nil {
		j.f.Close()
		return err
	}
	return j.f.Close()
}
