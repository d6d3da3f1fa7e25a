package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/kafka"
)

// requestsPublished counts the records on the requests topic.
func requestsPublished(t *testing.T, p *pipeline) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	n := 0
	if err := kafka.ReadSince(ctx, p.app.Kafka, p.app.Topics.Requests(), time.Unix(0, 0), func([]byte, map[string]string) { n++ }); err != nil {
		t.Fatal(err)
	}
	return n
}

// squash makes runs of white space one space, so tests do not depend on
// the summary's column widths.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// lastJSON decodes the last line of output.
func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("last line of %q: %v", out, err)
	}
}

// A bad line in a file, or in a CSV column, stops the run before anything
// is published, and the error names the line as an editor numbers it.
func TestDeleteBadLineSubmitsNothing(t *testing.T) {
	p := startPipeline(t, 4, nil)
	ids := []string{p.demo[0].ID, p.demo[1].ID}
	plain := writeFile(t, "ids.txt", "# list from the CRM\n\n"+ids[0]+"\n"+ids[1]+"\n\n"+ids[1]+"x\n")
	csv := writeFile(t, "ids.csv", "customer,contact_id\nalice,"+ids[0]+"\nbob,"+strings.ToUpper(ids[1])+"\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--file", plain}, plain + " line 6: invalid contact ID; nothing was submitted"},
		{[]string{"--file", csv, "--column", "contact_id"}, csv + " line 3: invalid contact ID; nothing was submitted"},
		{[]string{"--file", csv, "--column", "id"}, `no column "id" in the header row`},
	} {
		code, stdout, stderr := cli(t, "", append([]string{"delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "bad-line"}, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
		if strings.Contains(stderr, ids[1]) || strings.Contains(stderr, strings.ToUpper(ids[1])) {
			t.Errorf("the error repeats the input: %q", stderr)
		}
	}
	if n := requestsPublished(t, p); n != 0 {
		t.Fatalf("%d requests published for bad input", n)
	}
	// The count above can see a request: one good run publishes one.
	if code, _, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "bad-line", "--wait=false", ids[0]); code != 0 {
		t.Fatalf("good run: exit %d %s", code, stderr)
	}
	if n := requestsPublished(t, p); n != 1 {
		t.Fatalf("%d requests published by one good run", n)
	}
}

// A CSV export with repeats, unknown IDs and a row without an ID: repeats
// are dropped before anything is published, and the summary accounts for
// every row.
func TestDeleteCSVDropsDuplicatesAndSummarises(t *testing.T) {
	p := startPipeline(t, 6, nil)
	k := []string{p.demo[0].ID, p.demo[1].ID, p.demo[2].ID}
	u := []string{uuid.NewString(), uuid.NewString()}
	rows := []string{"customer,contact_id,channel", "a," + k[0] + ",voice", "b," + k[1] + ",chat", "a," + k[0] + ",voice",
		"c," + k[2] + ",email", "d," + u[0] + ",chat", "b," + k[1] + ",chat", "e,,voice", "f," + u[1] + ",chat"}
	f := writeFile(t, "export.csv", strings.Join(rows, "\r\n")+"\r\n")
	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "csv-run", "--file", f, "--column", "contact_id",
		"--batch", "1", "--timeout", "90s")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"5 contacts checked (7 read, 2 duplicates dropped): 5 requests of up to 1",
		"summary: 5 contacts in 5 requests (7 read, 2 duplicates dropped, 1 rows without an ID skipped)",
		"succeeded 3 requests 3 contacts",
		"not found 2 requests 2 contacts",
		"held 0 requests 0 contacts",
		"failed 0 requests 0 contacts",
	} {
		if !strings.Contains(squash(stderr), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, id := range append(k, u...) {
		if strings.Count(stdout, id) != 1 {
			t.Errorf("contact %s in %d outcome lines:\n%s", id, strings.Count(stdout, id), stdout)
		}
	}
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Actor: "csv-run"})
	if err != nil || len(entries) != 5 {
		t.Fatalf("%d audit entries (%v), want one per unique contact", len(entries), err)
	}
}

// A file run waits by default and keeps at most --in-flight requests in
// the pipeline: no request is stamped (just before it is published)
// before the outcome of one of those outstanding was out, when --in-flight
// are outstanding. Progress goes to stderr as plain lines, and --json ends
// it with the summary as one object.
func TestDeletePacesInFlightRequests(t *testing.T) {
	p := startPipeline(t, 10, nil)
	var ids []string
	for _, c := range p.demo {
		ids = append(ids, c.ID)
	}
	f := writeFile(t, "ids.txt", strings.Join(ids, "\n")+"\n")
	const inFlight = 2
	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "paced", "--file", f, "--batch", "1",
		"--in-flight", "2", "--json", "--progress-interval", "1ns", "--timeout", "120s")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	outs := decodeOutcomes(t, stdout)
	if len(outs) != len(ids) {
		t.Fatalf("%d outcomes for %d contacts", len(outs), len(ids))
	}
	most := 0
	for _, o := range outs {
		// Requests outstanding when o was stamped, o included.
		n := 0
		for _, x := range outs {
			if !x.RequestedAt.After(o.RequestedAt) && x.CompletedAt.After(o.RequestedAt) {
				n++
			}
		}
		most = max(most, n)
	}
	if most != inFlight {
		t.Fatalf("at most %d requests outstanding at once, want %d", most, inFlight)
	}
	if n := strings.Count(stderr, " contacts done ("); n < len(ids) {
		t.Errorf("%d progress lines, want one per outcome:\n%s", n, stderr)
	}
	var sum struct {
		Summary bulkSummary `json:"summary"`
	}
	lastJSON(t, stderr, &sum)
	s := sum.Summary
	if s.Requests != len(ids) || s.Submitted.Requests != len(ids) || s.Succeeded.Contacts != len(ids) || s.Failed.Requests != 0 ||
		!s.Waited || s.Wall <= 0 || s.Rate <= 0 {
		t.Fatalf("summary %+v", s)
	}
}

// A journaled run whose request failed: the rerun retries it under a new
// request ID (the pipeline would answer its old ID with the old failure),
// does not resubmit the requests that succeeded, and a third run
// publishes nothing.
func TestDeleteJournalRetriesFailedRequests(t *testing.T) {
	p := startPipeline(t, 12, nil)
	broken := &brokenObjects{Objects: p.app.Stores.Objects, bucket: "erasure-connect"}
	broken.broken.Store(true)
	p.app.Stores.Locator.Objects = broken
	voice := firstOfKind(t, p.demo, "voice")
	// Email contacts hold nothing in the broken bucket.
	email := firstOfKind(t, p.demo, "email")
	others := []string{email.ID, firstOfKind(t, p.demo, "email", email.ID).ID}
	j := filepath.Join(t.TempDir(), "run.journal")
	f := writeFile(t, "ids.txt", voice.ID+"\n"+others[0]+"\n"+others[1]+"\n")
	args := []string{"delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "retry-run", "--file", f, "--batch", "1", "--journal", j, "--timeout", "90s"}

	// lines maps each contact to its request ID and status.
	lines := func(stdout string) map[string][2]string {
		m := map[string][2]string{}
		for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
			fs := strings.Fields(l)
			if len(fs) >= 3 {
				m[fs[2]] = [2]string{fs[0], fs[1]}
			}
		}
		return m
	}
	code, stdout, stderr := cli(t, "", args...)
	first := lines(stdout)
	if code != 1 || first[voice.ID][1] != "failed" || first[others[0]][1] != "succeeded" || first[others[1]][1] != "succeeded" {
		t.Fatalf("first run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(squash(stderr), "channel_failed 1 requests 1 contacts") {
		t.Errorf("the summary does not give the failure's reason:\n%s", stderr)
	}
	published := requestsPublished(t, p)

	broken.broken.Store(false)
	code, stdout, stderr = cli(t, "", args...)
	second := lines(stdout)
	if code != 0 || !strings.Contains(stderr, "journal: 2 requests already have their outcome, 0 resubmitted, 0 new, 1 retried under a new request ID after failing") {
		t.Fatalf("second run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if second[voice.ID][1] != "succeeded" || second[voice.ID][0] == first[voice.ID][0] {
		t.Fatalf("retry of the failed request: %v, first %v", second[voice.ID], first[voice.ID])
	}
	for _, id := range others {
		if second[id] != first[id] {
			t.Errorf("finished request of %s: %v, first %v", id, second[id], first[id])
		}
	}
	if n := requestsPublished(t, p) - published; n != 1 {
		t.Fatalf("the rerun published %d requests, want the one retry", n)
	}
	journalText, err := os.ReadFile(j)
	if err != nil || !strings.Contains(string(journalText), `"retry_of":"`+first[voice.ID][0]+`"`) {
		t.Fatalf("the journal does not record the retry (%v):\n%s", err, journalText)
	}
	if rem, err := p.app.Stores.Locator.Remaining(t.Context(), voice.ID); err != nil || rem.Total() != 0 {
		t.Fatalf("after the retry: %v %v", err, rem)
	}

	published = requestsPublished(t, p)
	code, stdout, stderr = cli(t, "", args...)
	if code != 0 || !strings.Contains(stderr, "journal: 3 requests already have their outcome, 0 resubmitted, 0 new, 0 retried") ||
		!maps.Equal(lines(stdout), second) {
		t.Fatalf("third run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := requestsPublished(t, p) - published; n != 0 {
		t.Fatalf("the third run published %d requests", n)
	}
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Actor: "retry-run"})
	if err != nil || len(entries) != 4 {
		t.Fatalf("%d audit entries (%v): the failure, its retry and two successes", len(entries), err)
	}
	var statuses []string
	for _, e := range entries {
		if slices.Contains(e.ContactIDs, voice.ID) {
			statuses = append(statuses, string(e.Status))
		}
	}
	slices.Sort(statuses)
	if !slices.Equal(statuses, []string{string(schemas.StatusFailed), string(schemas.StatusSucceeded)}) {
		t.Fatalf("audit of the voice contact: %v", statuses)
	}
}

// Contacts under legal hold are reported held, which is not a failure; a
// journaled rerun after the hold is lifted retries the held request under
// a new request ID and deletes the contact. A request mixing held and free
// contacts names the held ones and counts them as held.
func TestDeleteReportsHeldContacts(t *testing.T) {
	p := startPipeline(t, 12, nil)
	held := firstOfKind(t, p.demo, "voice")
	held2 := firstOfKind(t, p.demo, "voice", held.ID)
	free := firstOfKind(t, p.demo, "email")
	free2 := firstOfKind(t, p.demo, "email", free.ID)
	placeHold(t, p, held.ID, schemas.HoldPlace)
	placeHold(t, p, held2.ID, schemas.HoldPlace)

	j := filepath.Join(t.TempDir(), "run.journal")
	f := writeFile(t, "ids.txt", held.ID+"\n"+free.ID+"\n")
	args := []string{"delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "held-run", "--file", f, "--batch", "1", "--journal", j, "--timeout", "90s"}
	code, stdout, stderr := cli(t, "", args...)
	if code != 0 || !strings.Contains(stdout, " held "+held.ID+" ("+schemas.ErrCodeLegalHold+")") || !strings.Contains(stdout, " succeeded "+free.ID) {
		t.Fatalf("run with a held contact: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"succeeded 1 requests 1 contacts", "held 1 requests 1 contacts", "failed 0 requests 0 contacts"} {
		if !strings.Contains(squash(stderr), want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
	if rem, err := p.app.Stores.Locator.Remaining(t.Context(), held.ID); err != nil || rem.Total() == 0 {
		t.Fatalf("the held contact lost its data: %v %v", err, rem)
	}

	placeHold(t, p, held.ID, schemas.HoldLift)
	code, stdout, stderr = cli(t, "", args...)
	if code != 0 || !strings.Contains(stderr, "journal: 1 requests already have their outcome, 0 resubmitted, 0 new, 1 retried") ||
		!strings.Contains(stdout, " succeeded "+held.ID) {
		t.Fatalf("rerun after the lift: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if rem, err := p.app.Stores.Locator.Remaining(t.Context(), held.ID); err != nil || rem.Total() != 0 {
		t.Fatalf("after the lift and the rerun: %v %v", err, rem)
	}

	code, stdout, stderr = cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "held-run", "--batch", "2", "--wait", "--timeout", "90s",
		held2.ID, free2.ID)
	if code != 0 || !strings.Contains(stdout, " succeeded "+held2.ID+","+free2.ID+" (held: "+held2.ID+")") {
		t.Fatalf("mixed request: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"succeeded 1 requests 1 contacts", "held 0 requests 1 contacts"} {
		if !strings.Contains(squash(stderr), want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
}
