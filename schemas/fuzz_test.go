package schemas

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var defaultIDRE = regexp.MustCompile(DefaultContactIDPattern)

// FuzzValidateSubmission: a submission the default rule accepts names only
// UUID-form contact IDs, and a refusal never repeats what was typed.
func FuzzValidateSubmission(f *testing.F) {
	for _, s := range []string{"0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b", "*", "%", "a OR b", "contact_id:*", "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b\n", ""} {
		f.Add(s, "dpo", "gdpr-art17")
	}
	f.Fuzz(func(t *testing.T, id, actor, reason string) {
		err := DefaultContactIDRule.ValidateSubmission(Submission{ContactIDs: []string{id}, RequestedBy: actor, Source: SourceCLI, ReasonCode: reason})
		if err == nil {
			if !defaultIDRE.MatchString(id) || strings.ContainsAny(id, "\n\r") {
				t.Fatalf("accepted contact ID %q", id)
			}
			return
		}
		// The message is a function of the code, field and position alone,
		// so nothing typed can appear in it.
		var se *SubmissionError
		if !errors.As(err, &se) {
			t.Fatalf("refusal %v is not a SubmissionError", err)
		}
		if want := (&SubmissionError{Code: se.Code, Field: se.Field, Position: se.Position}).Error(); err.Error() != want {
			t.Fatalf("error %q depends on the input (want %q)", err, want)
		}
	})
}
