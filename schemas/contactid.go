package schemas

import (
	"errors"
	"fmt"
	"regexp"
)

// DefaultContactIDPattern is the UUID form Amazon Connect uses for contact IDs.
const DefaultContactIDPattern = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`

// ErrInvalidContactID is returned for any contact ID that does not match the
// configured pattern. Nothing is deleted for such an ID.
var ErrInvalidContactID = errors.New("invalid contact ID")

// ContactIDRule validates contact IDs before they reach any store.
type ContactIDRule struct{ re *regexp.Regexp }

// NewContactIDRule compiles pattern, which must be anchored at both ends and
// must not match the empty string or any string with characters that carry
// meaning in a query language, so a configured pattern cannot widen a delete.
func NewContactIDRule(pattern string) (ContactIDRule, error) {
	if pattern == "" {
		pattern = DefaultContactIDPattern
	}
	if len(pattern) < 2 || pattern[0] != '^' || pattern[len(pattern)-1] != '$' {
		return ContactIDRule{}, fmt.Errorf("contact ID pattern %q must be anchored with ^ and $", pattern)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return ContactIDRule{}, fmt.Errorf("contact ID pattern: %w", err)
	}
	for _, probe := range []string{"", "*", "?", "%", "_", " ", "a*", "a b", `"`, "'", "\\", "/", ":", "(", ")", "{", "}", "[", "]", "~", "|", "&", "!", "^", "+", "=", "<", ">", ",", ";", "#", "\n"} {
		if re.MatchString(probe) {
			return ContactIDRule{}, fmt.Errorf("contact ID pattern %q accepts %q, which could widen a delete", pattern, probe)
		}
	}
	return ContactIDRule{re: re}, nil
}

// DefaultContactIDRule is the rule for DefaultContactIDPattern.
var DefaultContactIDRule = func() ContactIDRule {
	r, err := NewContactIDRule(DefaultContactIDPattern)
	if err != nil {
		panic(err)
	}
	return r
}()

// Check returns nil when id is a valid contact ID. The error never echoes the
// offending input, which may be anything a caller typed.
func (r ContactIDRule) Check(id string) error {
	if r.re == nil {
		return DefaultContactIDRule.Check(id)
	}
	// The schema's contact_id class is a second, pattern-independent guard:
	// whatever the configured pattern, a contact ID that reaches a store
	// holds only these characters.
	if !charset(id, maxContactIDLen, contactIDByte) || !r.re.MatchString(id) {
		return ErrInvalidContactID
	}
	return nil
}
