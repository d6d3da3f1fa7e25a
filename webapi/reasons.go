package webapi

import (
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/erasure-project/erasure/schemas"
)

// Reason is one entry of a configured list of reasons: a short code, which
// is what events and the audit log carry, and the label people pick it by.
type Reason struct {
	Code  string `yaml:"code" json:"code"`
	Label string `yaml:"label" json:"label"`
}

// DefaultReasons are the reasons a deletion may give when none are
// configured.
var DefaultReasons = []Reason{
	{"gdpr-art17", "GDPR Art. 17 erasure request"},
	{"gdpr-art21", "GDPR Art. 21 objection to processing"},
	{"retention", "Retention period expired"},
	{"consent-withdrawn", "Consent withdrawn"},
	{"data-minimisation", "Data minimisation (collected in error)"},
}

// DefaultHoldReasons are the reasons a legal hold may be placed for, and
// DefaultHoldLiftReasons those it may be lifted for, when none are
// configured.
var (
	DefaultHoldReasons = []Reason{
		{"litigation", "Litigation or anticipated litigation"},
		{"regulatory-inquiry", "Regulatory inquiry"},
		{"complaint", "Open complaint investigation"},
		{"law-enforcement", "Law-enforcement request"},
	}
	DefaultHoldLiftReasons = []Reason{
		{"matter-closed", "Legal matter closed"},
		{"placed-in-error", "Placed in error"},
		{"retention-review", "Retention review: hold no longer needed"},
	}
)

// maxReasonLabel bounds a label shown in the UI.
const maxReasonLabel = 120

// checkReasons refuses a list with a code that is not the events' reason
// code, a repeated code or an unusable label. An empty list is valid: the
// defaults apply.
func checkReasons(what string, rs []Reason) error {
	seen := map[string]bool{}
	for i, r := range rs {
		if !schemas.CheckReasonCode(r.Code) {
			return fmt.Errorf("%s #%d: code must be 1 to 64 of a-z, 0-9, '.', '_' and '-'", what, i+1)
		}
		if seen[r.Code] {
			return fmt.Errorf("%s: code %q listed twice", what, r.Code)
		}
		seen[r.Code] = true
		if r.Label == "" || !utf8.ValidString(r.Label) || utf8.RuneCountInString(r.Label) > maxReasonLabel ||
			slices.ContainsFunc([]rune(r.Label), unicode.IsControl) {
			return fmt.Errorf("%s %q: label must be 1 to %d printable characters", what, r.Code, maxReasonLabel)
		}
	}
	return nil
}

// CheckReasons checks configured deletion, hold and hold lift reasons, so a
// bad list stops a process at start-up whatever roles it runs.
func CheckReasons(reasons, hold, lift []Reason) error {
	for _, l := range []struct {
		what string
		rs   []Reason
	}{{"reasons", reasons}, {"holds.reasons", hold}, {"holds.lift_reasons", lift}} {
		if err := checkReasons(l.what, l.rs); err != nil {
			return err
		}
	}
	return nil
}

// reasonIn reports whether code is one of rs.
func reasonIn(rs []Reason, code string) bool {
	return slices.ContainsFunc(rs, func(r Reason) bool { return r.Code == code })
}

// orDefault is rs, or def when rs is empty.
func orDefault(rs, def []Reason) []Reason {
	if len(rs) == 0 {
		return slices.Clone(def)
	}
	return rs
}
