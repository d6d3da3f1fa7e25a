package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// schemaValue reads one value from an embedded schema file, so the tests
// below compare the Go rules with the published contract itself.
func schemaValue(t *testing.T, file string, path ...string) any {
	t.Helper()
	raw, err := schemaFS.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok || m[p] == nil {
			t.Fatalf("%s: no %s", file, strings.Join(path, "/"))
		}
		v = m[p]
	}
	return v
}

// schemaPattern compiles a pattern from an embedded schema file. Go's $
// without the m flag matches only at the end of the text, as ECMA-262's $
// does without it; the corpus holds trailing newlines to prove it.
func schemaPattern(t *testing.T, file string, path ...string) *regexp.Regexp {
	t.Helper()
	p, ok := schemaValue(t, file, append(path, "pattern")...).(string)
	if !ok {
		t.Fatalf("%s: pattern is not a string", file)
	}
	return regexp.MustCompile(p)
}

const (
	defsFile      = "v1/defs.schema.json"
	requestedFile = "v1/deletion-requested.schema.json"
)

// corpus is tried in every field of a submission: valid values of each
// field, lengths around every limit, wildcards and query syntax, look-alike
// characters, whitespace and invalid UTF-8.
func corpus() []string {
	c := []string{
		cid1, cid2, reqID, "019ac4a0-1111-7000-8000-00000000000f",
		strings.ToUpper(cid1), "0B0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b", strings.ReplaceAll(cid1, "-", ""),
		cid1[:35], cid1 + "0", "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6g", "0b0e6d3c_4a77_4e53_9d5e_1c2d3e4f5a6b",
		"a", "A", "0", "-", "--", ".", "_", "@", ":", "+",
		"dpo", "bulk-script", "jane.doe@example.com", "svc:erasure+ops", "e2e-test", "Jane_Doe",
		"gdpr-art17", "gdpr_art.17", "gdpr", "GDPR-ART17",
		// Tickets, and phone numbers spelt as tickets.
		"INC-20431", "JIRA:PRIV-7", "https://t/1", "2026-11-27", "INC0012345", "12345678", "123456789",
		"07700900304", "44-7700-900304", "CASE-447700900304", "1.2.3.4.5.6.7.8.9", "a1b2c3d4e5f6g7h8i9",
		"", " ", "\t", "\n", "\r\n", "\x00",
		"*", "%", "?", "a*", "*a", "a?", "a%", "%25", "%2A",
		cid1[:35] + "*", cid1[:35] + "%", cid1[:35] + "?", cid1[:35] + "_",
		"a OR b", "a AND b", "contact_id:*", "contact_id:" + cid1, "contact_id:x", "[a TO z]", "{a TO z}",
		"' OR ''='", "1=1", `"` + cid1 + `"`, "(" + cid1 + ")", "a|b", "a&b", "!a", "~a", "a^2", "a\\b", "a/b",
		"../" + cid1, cid1 + "/", "a,b", "a;b", "a#b", "<script>", "${jndi:x}",
		"customer asked nicely", "Jane Doe (customer)", "asked by phone +44 7700",
		// Look-alikes: Cyrillic a and o, fullwidth digit and letter, Unicode
		// hyphens and minus, Kelvin sign, dotless i, zero-width space, BOM.
		strings.Replace(cid1, "a", "\u0430", 1), "dp\u043e", "\uff10", "\uff41",
		strings.Replace(cid1, "-", "\u2010", 1), strings.Replace(cid1, "-", "\u2011", 1),
		strings.Replace(cid1, "-", "\u2212", 1), strings.Replace(cid1, "-", "\u2013", 1),
		"\u212a", "\u0131", cid1 + "\u200b", "\ufeff" + cid1, "e\u0301",
		// Whitespace and line ends around valid values.
		" " + cid1, cid1 + " ", cid1 + "\t", "\t" + cid1, "\n" + cid1, cid1 + "\r", cid1 + "\x00",
		cid1 + "\u2028", cid1 + "\u0085", cid1 + "\u00a0", "a\nb", "a b",
		// Invalid UTF-8.
		cid1 + "\xff", "\xc0\xaf", "a\xe2\x80",
	}
	for _, n := range []int{63, 64, 65, 127, 128, 129, 1000} {
		c = append(c, strings.Repeat("a", n), strings.Repeat("A", n), strings.Repeat("-", n), strings.Repeat("a", n-1)+".")
	}
	// Go's $ versus a $ that also matches before a final newline (Perl,
	// Python): every value above, followed by a newline.
	for _, v := range slices.Clone(c) {
		c = append(c, v+"\n")
	}
	return c
}

func baseSubmission() Submission {
	return Submission{RequestID: reqID, ContactIDs: []string{cid1}, RequestedBy: "dpo", Source: SourceUI, ReasonCode: "gdpr-art17"}
}

// permissiveRule accepts anything of the schema's class however long, so
// only the length and character guard in Check stands between it and the
// schema.
func permissiveRule(t *testing.T) ContactIDRule {
	t.Helper()
	r, err := NewContactIDRule(`^[A-Za-z0-9-]+$`)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSubmissionRulesMatchSchemaPatterns: for every corpus value in every
// field, ValidateSubmission accepts exactly when the schema's pattern (read
// from the embedded files) and, for contact IDs, the deployment's pattern
// accept.
func TestSubmissionRulesMatchSchemaPatterns(t *testing.T) {
	contactRE := schemaPattern(t, defsFile, "$defs", "contact_id")
	principalRE := schemaPattern(t, defsFile, "$defs", "principal")
	requestRE := schemaPattern(t, defsFile, "$defs", "request_id")
	reasonRE := schemaPattern(t, defsFile, "$defs", "reason_code")
	ticketRE := schemaPattern(t, defsFile, "$defs", "ticket")
	ticketNotRE := schemaPattern(t, defsFile, "$defs", "ticket", "not")
	defaultRE := regexp.MustCompile(DefaultContactIDPattern)
	permissive := permissiveRule(t)
	optional := func(re *regexp.Regexp) func(string) bool {
		return func(s string) bool { return s == "" || re.MatchString(s) }
	}
	fields := []struct {
		name string
		rule ContactIDRule
		set  func(*Submission, string)
		want func(string) bool
	}{
		{"contact_id/default", DefaultContactIDRule, func(s *Submission, v string) { s.ContactIDs = []string{v} },
			func(v string) bool { return contactRE.MatchString(v) && defaultRE.MatchString(v) }},
		{"contact_id/zero rule", ContactIDRule{}, func(s *Submission, v string) { s.ContactIDs = []string{cid2, v} },
			func(v string) bool { return contactRE.MatchString(v) && defaultRE.MatchString(v) }},
		{"contact_id/permissive", permissive, func(s *Submission, v string) { s.ContactIDs = []string{v} }, contactRE.MatchString},
		{"requested_by", DefaultContactIDRule, func(s *Submission, v string) { s.RequestedBy = v }, principalRE.MatchString},
		{"reason_code", DefaultContactIDRule, func(s *Submission, v string) { s.ReasonCode = v }, optional(reasonRE)},
		{"request_id", DefaultContactIDRule, func(s *Submission, v string) { s.RequestID = v }, optional(requestRE)},
		{"replay_of", DefaultContactIDRule, func(s *Submission, v string) { s.ReplayOf = v }, optional(requestRE)},
		{"ticket", DefaultContactIDRule, func(s *Submission, v string) { s.Ticket = v },
			func(v string) bool { return v == "" || ticketRE.MatchString(v) && !ticketNotRE.MatchString(v) }},
	}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			accepted := 0
			for _, v := range corpus() {
				s := baseSubmission()
				f.set(&s, v)
				err := f.rule.ValidateSubmission(s)
				if got, want := err == nil, f.want(v); got != want {
					t.Errorf("%q: Go accepts %v, schema and deployment patterns %v (err %v)", v, got, want, err)
				}
				if strings.HasSuffix(v, "\n") && err == nil {
					t.Errorf("%q: a trailing newline was accepted", v)
				}
				if err == nil {
					accepted++
				}
			}
			if accepted == 0 {
				t.Error("the corpus holds no valid value for this field")
			}
		})
	}
}

// eventOf builds the event a submission becomes, as producers.Requester
// does: repeats dropped, deadline rounded up to whole seconds.
func eventOf(s Submission) *DeletionRequested {
	var ids []string
	seen := map[string]bool{}
	for _, id := range s.ContactIDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if s.RequestID == "" {
		s.RequestID = reqID
	}
	return &DeletionRequested{RequestID: s.RequestID, ContactIDs: ids, RequestedBy: s.RequestedBy, RequestedAt: at,
		Source: s.Source, Channels: AllChannels, ReasonCode: s.ReasonCode, ReplayOf: s.ReplayOf, DeadlineSeconds: s.DeadlineSeconds(),
		Ticket: s.Ticket}
}

// schemaAccepts runs an event through the real validator: Encode checks the
// schema alone, Decode the schema and rule.
func schemaAccepts(ev *DeletionRequested, rule ContactIDRule) (schemaOnly, withRule bool) {
	raw, err := Encode(ev)
	if err != nil {
		return false, false
	}
	return true, Decode(raw, rule, &DeletionRequested{}) == nil
}

func uniqueIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("0a1b2c3d-0000-4000-8000-%012x", i)
	}
	return ids
}

// TestSubmissionMatchesSchemaValidator: whole DeletionRequested events built
// from the corpus pass the schema validator and the rule exactly when
// ValidateSubmission accepts the submission.
func TestSubmissionMatchesSchemaValidator(t *testing.T) {
	var cases []Submission
	for _, v := range corpus() {
		for _, set := range []func(*Submission){
			func(s *Submission) { s.ContactIDs = []string{v} },
			func(s *Submission) { s.ContactIDs = []string{cid1, cid2, v} },
			func(s *Submission) { s.RequestedBy = v },
			func(s *Submission) { s.ReasonCode = v },
			func(s *Submission) { s.RequestID = v },
			func(s *Submission) { s.ReplayOf = v },
			func(s *Submission) { s.Source = Source(v) },
			func(s *Submission) { s.Ticket = v },
		} {
			s := baseSubmission()
			set(&s)
			cases = append(cases, s)
		}
	}
	for _, ids := range [][]string{nil, {}, {cid1, cid1}, {cid1, cid2, cid1}, uniqueIDs(MaxContactsPerRequest), uniqueIDs(MaxContactsPerRequest + 1)} {
		s := baseSubmission()
		s.ContactIDs = ids
		cases = append(cases, s)
	}
	for _, src := range []Source{SourceUI, SourceCLI, SourceUpstream, SourceReplay, "", "UI", "api"} {
		s := baseSubmission()
		s.Source = src
		cases = append(cases, s)
	}
	for _, d := range []time.Duration{-time.Second, 0, 1, time.Second, 30 * time.Second, 24 * time.Hour, 24*time.Hour + 1, 24*time.Hour + time.Second, math.MaxInt64} {
		s := baseSubmission()
		s.Deadline = d
		cases = append(cases, s)
	}
	permissive := permissiveRule(t)
	for _, s := range cases {
		for _, rule := range []ContactIDRule{DefaultContactIDRule, permissive} {
			err := rule.ValidateSubmission(s)
			schemaOK, ruleOK := schemaAccepts(eventOf(s), rule)
			if (err == nil) != ruleOK {
				t.Errorf("%+q: ValidateSubmission %v, schema %v, schema and rule %v", s.ContactIDs, err, schemaOK, ruleOK)
			}
		}
	}

	// The only submission the schema would take and Go refuses: over the
	// limit as submitted, within it once repeats are dropped. Counting as
	// submitted is what producers always did.
	s := baseSubmission()
	s.ContactIDs = append(uniqueIDs(MaxContactsPerRequest), cid1)
	s.ContactIDs[0] = cid1
	if _, ok := schemaAccepts(eventOf(s), DefaultContactIDRule); !ok {
		t.Fatal("the schema refused 1000 distinct IDs")
	}
	var se *SubmissionError
	if err := DefaultContactIDRule.ValidateSubmission(s); !errors.As(err, &se) || se.Code != CodeTooManyContacts {
		t.Errorf("%d IDs with a repeat: %v", len(s.ContactIDs), err)
	}
}

// TestSubmissionLimitsMatchSchema holds the Go limits to the schema files.
func TestSubmissionLimitsMatchSchema(t *testing.T) {
	num := func(file string, path ...string) int {
		f, ok := schemaValue(t, file, path...).(float64)
		if !ok {
			t.Fatalf("%s: %s is not a number", file, strings.Join(path, "/"))
		}
		return int(f)
	}
	if n := num(defsFile, "$defs", "contact_ids", "maxItems"); n != MaxContactsPerRequest {
		t.Errorf("schema maxItems %d, MaxContactsPerRequest %d", n, MaxContactsPerRequest)
	}
	if n := num(defsFile, "$defs", "contact_ids", "minItems"); n != 1 {
		t.Errorf("schema minItems %d", n)
	}
	if u, _ := schemaValue(t, defsFile, "$defs", "contact_ids", "uniqueItems").(bool); !u {
		t.Error("schema no longer requires unique contact IDs; producers drop repeats for it")
	}
	if n := num(requestedFile, "properties", "deadline_seconds", "maximum"); n != maxDeadlineSeconds {
		t.Errorf("schema deadline maximum %d, Go %d", n, maxDeadlineSeconds)
	}
	if n := num(requestedFile, "properties", "deadline_seconds", "minimum"); n != 1 {
		t.Errorf("schema deadline minimum %d", n)
	}
	var sources []Source
	for _, v := range schemaValue(t, requestedFile, "properties", "source", "enum").([]any) {
		sources = append(sources, Source(v.(string)))
	}
	for _, src := range sources {
		s := baseSubmission()
		s.Source = src
		if err := DefaultContactIDRule.ValidateSubmission(s); err != nil {
			t.Errorf("source %q in the schema, refused by Go: %v", src, err)
		}
	}
	if len(sources) != 4 {
		t.Errorf("schema sources %v: update ValidateSubmission", sources)
	}
}

// TestSubmissionErrors: codes, fields and positions, the sentinels callers
// test for, and messages that never repeat the input.
func TestSubmissionErrors(t *testing.T) {
	secret := "secret+447700"
	for _, tc := range []struct {
		name     string
		set      func(*Submission)
		code     string
		field    string
		position int
		is       error
	}{
		{"none", func(s *Submission) { s.ContactIDs = nil }, CodeNoContacts, "contact_ids", 0, ErrNoContacts},
		{"too many", func(s *Submission) { s.ContactIDs = uniqueIDs(MaxContactsPerRequest + 1) }, CodeTooManyContacts, "contact_ids", 0, ErrInvalidEvent},
		{"third contact", func(s *Submission) { s.ContactIDs = []string{cid1, cid2, secret, "*"} }, CodeInvalidContactID, "contact_ids", 3, ErrInvalidContactID},
		{"contact before reason", func(s *Submission) { s.ContactIDs = []string{secret}; s.ReasonCode = secret }, CodeInvalidContactID, "contact_ids", 1, ErrInvalidContactID},
		{"reason", func(s *Submission) { s.ReasonCode = secret }, CodeInvalidReasonCode, "reason_code", 0, ErrInvalidEvent},
		{"actor", func(s *Submission) { s.RequestedBy = secret + " x" }, CodeInvalidRequestedBy, "requested_by", 0, ErrInvalidEvent},
		{"no actor", func(s *Submission) { s.RequestedBy = "" }, CodeInvalidRequestedBy, "requested_by", 0, ErrInvalidEvent},
		{"source", func(s *Submission) { s.Source = Source(secret) }, CodeInvalidSource, "source", 0, ErrInvalidEvent},
		{"request ID", func(s *Submission) { s.RequestID = secret }, CodeInvalidRequestID, "request_id", 0, ErrInvalidEvent},
		{"replay of", func(s *Submission) { s.ReplayOf = secret }, CodeInvalidReplayOf, "replay_of", 0, ErrInvalidEvent},
		{"deadline", func(s *Submission) { s.Deadline = 25 * time.Hour }, CodeInvalidDeadline, "deadline_seconds", 0, ErrInvalidEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSubmission()
			tc.set(&s)
			err := DefaultContactIDRule.ValidateSubmission(s)
			var se *SubmissionError
			if !errors.As(err, &se) || se.Code != tc.code || se.Field != tc.field || se.Position != tc.position {
				t.Fatalf("got %#v, want %s at %s #%d", err, tc.code, tc.field, tc.position)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("%v is not %v", err, tc.is)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "*") {
				t.Errorf("message repeats the input: %q", err)
			}
		})
	}
	if got := (&SubmissionError{Code: CodeInvalidContactID, Field: "contact_ids", Position: 2}).Error(); got != "contact ID #2: invalid contact ID" {
		t.Errorf("message %q", got)
	}
	if err := DefaultContactIDRule.ValidateSubmission(baseSubmission()); err != nil {
		t.Fatal(err)
	}
}
