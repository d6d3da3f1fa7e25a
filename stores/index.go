package stores

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Search defaults, shared with the UI's expectations.
const (
	SearchDefaultLimit = 25
	SearchMaxLimit     = 500
	// FieldValuesMaxLimit bounds the suggestions one FieldValues call
	// returns; FieldValuesDefaultLimit is for a limit of 0.
	FieldValuesMaxLimit     = 50
	FieldValuesDefaultLimit = 10
)

// Fields the search index gives meaning to.
const (
	FieldInitiation = "initiation_timestamp"
	FieldContactID  = "contact_id"
	// FieldCustomerPhone and FieldCustomerEmail identify the data subject.
	FieldCustomerPhone = "customer_phone"
	FieldCustomerEmail = "customer_email"
)

// SearchTextFields are the customer identifiers Query.Text matches.
var SearchTextFields = [3]string{"customer_name", "customer_phone", "customer_email"}

// CheckIndexName applies the data map's rule for index names.
func CheckIndexName(name string) error { return CheckIdent("index", name) }

// CheckField validates a field name used in an exact-match query; "_id" is the
// document ID.
func CheckField(field string) error {
	if field == "_id" {
		return nil
	}
	return CheckIdent("field", field)
}

// CheckTerm refuses an empty value: an empty term could only ever match
// documents whose field is empty, never one contact, so it is a caller bug.
// Invalid UTF-8 is refused too: stored text never holds it (JSON replaces
// it), so such a value could report "nothing left" without matching.
func CheckTerm(value string) error {
	if value == "" {
		return Permanent(errors.New("empty match value"))
	}
	if !utf8.ValidString(value) {
		return Permanent(errors.New("match value is not valid UTF-8"))
	}
	return nil
}

// IndexRow is a document prepared for storage, the same way by every
// index: the exact terms it can be matched on and the search fields.
type IndexRow struct {
	ID          string
	Doc         string      // the fields as a JSON object
	Text        [3]string   // lower-cased SearchTextFields
	InitiatedAt any         // formatted time or nil
	Terms       [][2]string // field, value
	// Phone is customer_phone in E.164 (see NormalizePhone), "" when it is
	// not a phone number.
	Phone string
}

// NewIndexRow prepares d for storage; national phone numbers are read in
// phoneRegion.
func NewIndexRow(d Doc, phoneRegion string) (IndexRow, error) {
	// 512 bytes is OpenSearch's limit on document IDs.
	if d.ID == "" || len(d.ID) > 512 {
		return IndexRow{}, Permanent(errors.New("index: document ID must be 1 to 512 bytes"))
	}
	fields := d.Fields
	if fields == nil {
		fields = map[string]any{}
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return IndexRow{}, Permanent(fmt.Errorf("index: encode document: %w", err))
	}
	// Terms come from the decoded JSON, not the Go values, so a field matches
	// the same way whatever Go type the caller used (int, float64, json.Number).
	var decoded map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&decoded); err != nil {
		return IndexRow{}, Permanent(fmt.Errorf("index: decode document: %w", err))
	}
	r := IndexRow{ID: d.ID, Doc: string(raw)}
	for i, f := range SearchTextFields {
		if s, ok := decoded[f].(string); ok {
			r.Text[i] = strings.ToLower(s)
		}
	}
	if s, ok := decoded[FieldCustomerPhone].(string); ok {
		r.Phone, _ = NormalizePhone(s, phoneRegion)
	}
	if s, ok := decoded[FieldInitiation].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.UTC().Year() >= 0 && t.UTC().Year() <= 9999 {
			r.InitiatedAt = FormatTime(t)
		}
	}
	for k, v := range decoded {
		if CheckIdent("field", k) != nil {
			continue // cannot be queried by Count or DeleteTerm anyway
		}
		add := func(v any) {
			if s, ok := termText(v); ok {
				r.Terms = append(r.Terms, [2]string{k, s})
			}
		}
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				add(e)
			}
		} else {
			add(v)
		}
	}
	return r, nil
}

// termText renders a scalar JSON value as the string an exact match compares
// with; objects and null have no term.
func termText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// CheckTermQuery validates an exact-match query on a batch of values before
// any store sees it: an empty batch is refused, as it could only come from a
// caller bug and a builder that dropped the condition would match all.
func CheckTermQuery(index, field string, values ...string) error {
	if err := CheckIndexName(index); err != nil {
		return err
	}
	if err := CheckField(field); err != nil {
		return err
	}
	if len(values) == 0 {
		return Permanent(errors.New("no match values"))
	}
	for _, v := range values {
		if err := CheckTerm(v); err != nil {
			return err
		}
	}
	return nil
}

// HasPrefixFold reports whether s starts with prefix, ignoring the case of
// ASCII letters only: the rule of Query.Agent, Query.Queue and FieldValues.
// Other characters compare exactly, as OpenSearch's case_insensitive and
// SQLite's lower() both fold ASCII only.
func HasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		if asciiLower(s[i]) != asciiLower(prefix[i]) {
			return false
		}
	}
	return true
}

// PrefixRange returns the byte range [lo, hi) of the strings that, with
// their ASCII letters lowered, start with prefix's ASCII-lowered form: a
// prefix match a store can run as two comparisons on its lower(), with no
// character of the prefix read as a pattern. prefix must not be empty.
func PrefixRange(prefix string) (lo, hi string) {
	b := []byte(prefix)
	for i := range b {
		b[i] = asciiLower(b[i])
	}
	lo = string(b)
	// The last byte of valid UTF-8 is at most 0xBF, so this cannot wrap
	// (0xFF, never in valid UTF-8, gets a range of its own value only).
	if b[len(b)-1] < 0xff {
		b[len(b)-1]++
	} else {
		b = append(b, 0)
	}
	return lo, string(b)
}

func asciiLower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// CheckFieldValues validates a FieldValues call and returns the limit to
// apply: the field must be a document field (not "_id" or another of
// OpenSearch's metadata fields, which are no suggestions), the prefix valid
// UTF-8.
func CheckFieldValues(index, field, prefix string, limit int) (int, error) {
	if err := CheckIndexName(index); err != nil {
		return 0, err
	}
	if err := CheckIdent("field", field); err != nil {
		return 0, err
	}
	if strings.HasPrefix(field, "_") {
		return 0, Permanent(fmt.Errorf("field %q: metadata fields have no suggestions", field))
	}
	if !utf8.ValidString(prefix) {
		return 0, Permanent(errors.New("prefix is not valid UTF-8"))
	}
	if limit <= 0 {
		limit = FieldValuesDefaultLimit
	}
	return min(limit, FieldValuesMaxLimit), nil
}
