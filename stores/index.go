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
)

// Fields the search index gives meaning to.
const (
	FieldInitiation = "initiation_timestamp"
	FieldContactID  = "contact_id"
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
}

func NewIndexRow(d Doc) (IndexRow, error) {
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
