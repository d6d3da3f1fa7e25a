package stores

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// DefaultPhoneRegion is the region national phone numbers (written without
// a country code, such as "07700 900304") are read in when none is
// configured.
const DefaultPhoneRegion = "GB"

// minPhoneDigits is the fewest digits a phone number is read from: fewer is
// a fragment (an extension, part of a number), which only the substring
// search should match.
const minPhoneDigits = 7

// CheckPhoneRegion refuses a region the phone number library does not know
// (an ISO 3166-1 alpha-2 code such as "GB" or "DE").
func CheckPhoneRegion(region string) error {
	if !phonenumbers.GetSupportedRegions()[region] {
		return fmt.Errorf("phone region %q is not a supported ISO 3166-1 alpha-2 region code", region)
	}
	return nil
}

// NormalizePhone returns the E.164 form ("+447700900304") of a phone
// number written any usual way: "+44 7700 900304", "07700 900304" or
// "0044 7700-900304" read in region. Only text of digits, spaces and
// "+-()./" with at least seven digits is read as a number, so a name or a
// fragment is not; ok is false then, and for numbers of an impossible
// length. The same function runs when documents are indexed and when a
// query is, so a contact is found however either wrote the number.
func NormalizePhone(raw, region string) (e164 string, ok bool) {
	raw = strings.TrimSpace(raw)
	digits := 0
	for _, r := range raw {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune(" +-()./", r):
		default:
			return "", false
		}
	}
	if digits < minPhoneDigits {
		return "", false
	}
	n, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsPossibleNumber(n) {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}

// PhoneNeedles are what a free-text search matches within indexed E.164
// numbers: the query's E.164 form when it reads as a whole number, and its
// digits when it has at least minPhoneDigits of them and nothing but
// digits, spaces and "-()." (so "7700900304" finds "+44 7700 900304", and
// "4155550100" a US number though it also reads as one of the region).
// Needles hold "+" and digits only, so none is a pattern.
func PhoneNeedles(text, region string) []string {
	var out []string
	if e, ok := NormalizePhone(text, region); ok {
		out = append(out, e)
	}
	var digits strings.Builder
	for _, r := range strings.TrimSpace(text) {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case strings.ContainsRune(" -().", r):
		default:
			return out
		}
	}
	if digits.Len() >= minPhoneDigits {
		out = append(out, digits.String())
	}
	return out
}

// ErrNotAPhoneNumber is the error of a Query.Phone that is no phone number.
var ErrNotAPhoneNumber = errors.New("not a phone number")

// SubjectPhone is q.Phone in E.164, "" when q has none, and a permanent
// error when it is not a number: a subject search must never fall back to
// matching less exactly.
func SubjectPhone(q Query, region string) (string, error) {
	if q.Phone == "" {
		return "", nil
	}
	e, ok := NormalizePhone(q.Phone, region)
	if !ok {
		return "", Permanent(ErrNotAPhoneNumber)
	}
	return e, nil
}
