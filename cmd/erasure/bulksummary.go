package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/erasure-project/erasure/schemas"
)

// tally counts requests and the contacts in them. Outcomes are per
// request: a request is succeeded when anything of any of its contacts
// was found and deleted, so "contacts" of a status means contacts in
// requests with that status.
type tally struct {
	Requests int `json:"requests"`
	Contacts int `json:"contacts"`
}

func (t *tally) add(contacts int) {
	t.Requests++
	t.Contacts += contacts
}

// Error codes of the requests without an outcome in the summary: none came
// in time, or the run was interrupted before it came. They are the CLI's,
// not the pipeline's; a rerun with the journal picks those requests up.
const (
	codeNoOutcome   = "wait_timeout"
	codeInterrupted = "interrupted"
)

// bulkSummary is the account of a bulk run that ends it.
type bulkSummary struct {
	ContactsRead int   `json:"contacts_read"`
	Duplicates   int   `json:"duplicates_dropped"`
	BlankCells   int   `json:"blank_cells_skipped,omitempty"`
	Requests     int   `json:"requests"`
	Contacts     int   `json:"contacts"`
	Submitted    tally `json:"submitted"`
	AlreadyDone  tally `json:"already_done"`
	Retried      tally `json:"retried"`
	Succeeded    tally `json:"succeeded"`
	NotFound     tally `json:"not_found"`
	// Held counts the requests decided held (every contact under legal
	// hold) and every contact a hold kept, in those and in others.
	Held        tally            `json:"held"`
	Failed      tally            `json:"failed"`
	FailedBy    map[string]tally `json:"failed_by_error_code"`
	NoOutcome   tally            `json:"no_outcome"`
	NotSent     tally            `json:"not_submitted"`
	Waited      bool             `json:"waited"`
	Interrupted bool             `json:"interrupted,omitempty"`
	Wall        float64          `json:"wall_seconds"`
	Rate        float64          `json:"contacts_per_second"`
}

func newBulkSummary(in *bulkInput, requests int, wait bool) *bulkSummary {
	return &bulkSummary{ContactsRead: in.Read, Duplicates: in.Duplicates, BlankCells: in.BlankCells,
		Requests: requests, Contacts: in.Unique, FailedBy: map[string]tally{}, Waited: wait}
}

// outcome counts one request's outcome. Requests count by status;
// contacts by what became of them, so the held contacts of a request whose
// status is about its other contacts count as held.
func (s *bulkSummary) outcome(status schemas.Status, code string, contacts, held int) {
	if status != schemas.StatusHeld && held > 0 {
		s.Held.Contacts += held
		contacts -= held
	}
	switch status {
	case schemas.StatusSucceeded:
		s.Succeeded.add(contacts)
	case schemas.StatusNotFound:
		s.NotFound.add(contacts)
	case schemas.StatusHeld:
		s.Held.add(contacts)
	default:
		s.fail(code, contacts)
	}
}

func (s *bulkSummary) fail(code string, contacts int) {
	if code == "" {
		code = "unknown"
	}
	s.Failed.add(contacts)
	t := s.FailedBy[code]
	t.add(contacts)
	s.FailedBy[code] = t
}

// failed reports whether the run should exit 1: anything failed, went
// unanswered or was never submitted.
func (s *bulkSummary) failed() bool {
	return s.Failed.Requests > 0 || s.NotSent.Requests > 0
}

// end sets the wall time and the rate of the contacts handled in this
// run: answered, or published when not waiting.
func (s *bulkSummary) end(wall time.Duration, handled int) {
	s.Wall = wall.Seconds()
	if s.Wall > 0 {
		s.Rate = float64(handled) / s.Wall
	}
}

func (s *bulkSummary) print(w io.Writer, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.Encode(map[string]*bulkSummary{"summary": s})
		return
	}
	fmt.Fprintf(w, "summary: %d contacts in %d requests (%d read, %d duplicates dropped", s.Contacts, s.Requests, s.ContactsRead, s.Duplicates)
	if s.BlankCells > 0 {
		fmt.Fprintf(w, ", %d rows without an ID skipped", s.BlankCells)
	}
	fmt.Fprintf(w, ") in %s, %.0f contacts/s\n", time.Duration(s.Wall*float64(time.Second)).Round(time.Millisecond), s.Rate)
	row := func(name string, t tally) {
		fmt.Fprintf(w, "  %-24s %8d requests %10d contacts\n", name, t.Requests, t.Contacts)
	}
	row("submitted", s.Submitted)
	if s.AlreadyDone.Requests > 0 {
		row("done in an earlier run", s.AlreadyDone)
	}
	if s.Retried.Requests > 0 {
		row("retried after failing", s.Retried)
	}
	if !s.Waited {
		fmt.Fprintln(w, "  outcomes not awaited (--wait=false)")
	} else {
		row("succeeded", s.Succeeded)
		row("not found", s.NotFound)
		row("held", s.Held)
		row("failed", s.Failed)
		for _, code := range slices.Sorted(maps.Keys(s.FailedBy)) {
			row("  "+code, s.FailedBy[code])
		}
	}
	if s.NotSent.Requests > 0 {
		row("not submitted", s.NotSent)
	}
	if s.Interrupted {
		fmt.Fprintln(w, "  interrupted")
	}
}
