package locate

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

//go:embed datamap.default.yaml
var defaultDataMapYAML []byte

// DefaultDataMapYAML is the documented default data map.
func DefaultDataMapYAML() []byte { return slices.Clone(defaultDataMapYAML) }

// Location kinds.
const (
	KindIndex       = "index"
	KindObjects     = "objects"
	KindDatalake    = "datalake"
	KindTable       = "table"
	KindSharedTable = "shared_table"
)

// DataMap says, per channel and artefact type, which store holds it and how a
// contact's items are found.
type DataMap struct {
	Instance    string                         `yaml:"instance" json:"instance"`
	ContactDate DateSource                     `yaml:"contact_date" json:"contact_date"`
	Channels    map[schemas.Channel][]Artefact `yaml:"channels" json:"channels"`
}

// DateSource is where a contact's date is read from, to fill {yyyy}/{mm}/{dd}.
type DateSource struct {
	Index string `yaml:"index" json:"index"`
	Field string `yaml:"field" json:"field"`
}

// Artefact locates one artefact type of one channel.
type Artefact struct {
	Artefact string `yaml:"artefact" json:"artefact"`
	Kind     string `yaml:"kind" json:"kind"`

	Index string `yaml:"index,omitempty" json:"index,omitempty"`
	ByID  bool   `yaml:"by_id,omitempty" json:"by_id,omitempty"`
	Field string `yaml:"field,omitempty" json:"field,omitempty"`

	Bucket string `yaml:"bucket,omitempty" json:"bucket,omitempty"`
	Key    string `yaml:"key,omitempty" json:"key,omitempty"`
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`

	Table       string `yaml:"table,omitempty" json:"table,omitempty"`
	Column      string `yaml:"column,omitempty" json:"column,omitempty"`
	ParentTable string `yaml:"parent_table,omitempty" json:"parent_table,omitempty"`
	ParentKey   string `yaml:"parent_key,omitempty" json:"parent_key,omitempty"`

	tmpl *keyTemplate
}

// DefaultDataMap parses the embedded default.
func DefaultDataMap() (*DataMap, error) { return ParseDataMap(defaultDataMapYAML) }

// ParseDataMap parses and validates a data map.
func ParseDataMap(raw []byte) (*DataMap, error) {
	var m DataMap
	if err := yaml.UnmarshalWithOptions(raw, &m, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("data map: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

var instanceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Validate checks every location so that no configured name or template can
// widen a delete, and compiles the key templates.
func (m *DataMap) Validate() error {
	var errs []error
	if !instanceRE.MatchString(m.Instance) {
		errs = append(errs, fmt.Errorf("instance %q must match %s", m.Instance, instanceRE))
	}
	if err := stores.CheckIdent("index", m.ContactDate.Index); err != nil {
		errs = append(errs, fmt.Errorf("contact_date: %w", err))
	}
	if err := stores.CheckIdent("field", m.ContactDate.Field); err != nil {
		errs = append(errs, fmt.Errorf("contact_date: %w", err))
	}
	if len(m.Channels[schemas.ChannelContactSearch]) == 0 {
		errs = append(errs, errors.New("channel contact-search must map at least one artefact"))
	}
	// The contact index entry is how a person finds the contact to retry and
	// where the other channels read its date: it goes last, after every CTR
	// entry, so a failure part-way leaves it findable.
	if arts := m.Channels[schemas.ChannelContactSearch]; len(arts) > 0 {
		for i, a := range arts {
			if a.Kind == KindIndex && a.Index == m.ContactDate.Index && i != len(arts)-1 {
				errs = append(errs, fmt.Errorf("contact-search/%s: the contact index (%s) must be the last artefact of contact-search", a.Artefact, a.Index))
			}
		}
	}
	for ch, arts := range m.Channels {
		if !ch.Valid() {
			errs = append(errs, fmt.Errorf("unknown channel %q", ch))
			continue
		}
		seen := map[string]bool{}
		for i := range arts {
			a := &arts[i]
			if err := stores.CheckIdent("artefact", a.Artefact); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", ch, i, err))
			}
			if seen[a.Artefact] {
				errs = append(errs, fmt.Errorf("%s: artefact %q mapped twice", ch, a.Artefact))
			}
			seen[a.Artefact] = true
			if err := a.validate(m.Instance); err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", ch, a.Artefact, err))
			}
			if ch == schemas.ChannelContactSearch && a.Kind != KindIndex {
				errs = append(errs, fmt.Errorf("%s/%s: contact-search holds index artefacts only", ch, a.Artefact))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("data map: %w", err)
	}
	return nil
}

func (a *Artefact) validate(instance string) error {
	switch a.Kind {
	case KindIndex:
		if err := stores.CheckIdent("index", a.Index); err != nil {
			return err
		}
		if a.ByID == (a.Field != "") {
			return errors.New("index artefacts need exactly one of by_id or field")
		}
		if !a.ByID {
			return stores.CheckIdent("field", a.Field)
		}
		return nil
	case KindObjects:
		if err := stores.CheckBucket(a.Bucket); err != nil {
			return err
		}
		t, err := parseKeyTemplate(a.Key, instance, true)
		if err != nil {
			return err
		}
		a.tmpl = t
		return nil
	case KindDatalake:
		if err := stores.CheckBucket(a.Bucket); err != nil {
			return err
		}
		if err := stores.CheckIdent("field", a.Field); err != nil {
			return err
		}
		t, err := parseKeyTemplate(a.Prefix, instance, false)
		if err != nil {
			return err
		}
		a.tmpl = t
		return nil
	case KindTable:
		if err := stores.CheckIdent("table", a.Table); err != nil {
			return err
		}
		return stores.CheckIdent("column", a.Column)
	case KindSharedTable:
		for kind, name := range map[string]string{"table": a.Table, "column": a.Column, "parent_table": a.ParentTable, "parent_key": a.ParentKey} {
			if err := stores.CheckIdent(kind, name); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("unknown kind %q", a.Kind)
	}
}

// ChannelsFor lists the channels a new request expects results from: every
// mapped channel, contact-search last.
func (m *DataMap) ChannelsFor() []schemas.Channel {
	var out []schemas.Channel
	for _, ch := range schemas.AllChannels {
		if _, ok := m.Channels[ch]; ok {
			out = append(out, ch)
		}
	}
	return out
}

// Artefacts returns the artefacts of a channel.
func (m *DataMap) Artefacts(ch schemas.Channel) []Artefact { return m.Channels[ch] }

// ArtefactTypes lists every mapped artefact type per channel, for display.
func (m *DataMap) ArtefactTypes() map[schemas.Channel][]string {
	out := map[schemas.Channel][]string{}
	for ch, arts := range m.Channels {
		for _, a := range arts {
			out[ch] = append(out[ch], a.Artefact)
		}
	}
	return out
}

// keyTemplate is a parsed object key or prefix template.
type keyTemplate struct {
	raw     string
	parts   []tmplPart
	hasDate bool
}

type tmplPart struct {
	lit string // literal text, or "" for a placeholder
	ph  string // contact_id, yyyy, mm, dd
}

// parseKeyTemplate accepts literal text and the placeholders {instance},
// {contact_id}, {yyyy}, {mm}, {dd}. An object key template must contain
// {contact_id} and end with a single "*"; the literal text after the
// contact ID must be non-empty, so that a prefix can never match another
// contact whose ID starts with this one.
func parseKeyTemplate(raw, instance string, objects bool) (*keyTemplate, error) {
	if raw == "" {
		return nil, errors.New("empty key template")
	}
	if !utf8.ValidString(raw) || !utf8.ValidString(instance) {
		return nil, fmt.Errorf("key template %q is not valid UTF-8", raw)
	}
	s := raw
	if objects {
		if !strings.HasSuffix(s, "*") {
			return nil, fmt.Errorf("key template %q must end with *", raw)
		}
		s = strings.TrimSuffix(s, "*")
	}
	if strings.ContainsAny(s, "*?[]\\") || strings.Contains(s, "..") || strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("key template %q: wildcards, backslashes, .. and a leading / are not allowed", raw)
	}
	t := &keyTemplate{raw: raw}
	var sawID bool
	for len(s) > 0 {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			t.parts = append(t.parts, tmplPart{lit: s})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("key template %q: unclosed {", raw)
		}
		name := s[i+1 : i+j]
		switch name {
		case "instance":
			t.parts = append(t.parts, tmplPart{lit: instance})
		case "contact_id":
			if sawID {
				return nil, fmt.Errorf("key template %q: {contact_id} twice", raw)
			}
			sawID = true
			t.parts = append(t.parts, tmplPart{ph: name})
		case "yyyy", "mm", "dd":
			if sawID {
				return nil, fmt.Errorf("key template %q: date placeholders must come before {contact_id}", raw)
			}
			t.hasDate = true
			t.parts = append(t.parts, tmplPart{ph: name})
		default:
			return nil, fmt.Errorf("key template %q: unknown placeholder {%s}", raw, name)
		}
		s = s[i+j+1:]
	}
	if objects {
		if !sawID {
			return nil, fmt.Errorf("key template %q must contain {contact_id}", raw)
		}
		last := t.parts[len(t.parts)-1]
		if last.ph != "" || last.lit == "" {
			return nil, fmt.Errorf("key template %q: {contact_id} must be followed by a separator such as _ or /", raw)
		}
		// The separator must be a byte no contact ID holds: with
		// "{contact_id}-*" the keys of ID "ab" start with "ab-", and so do
		// those of an ID "ab-c…".
		if c := t.afterID(); schemas.IsContactIDByte(c) {
			return nil, fmt.Errorf("key template %q: {contact_id} is followed by %q, which a contact ID may contain; use a separator such as _, / or .", raw, c)
		}
	} else if sawID {
		return nil, fmt.Errorf("data lake prefix %q must not contain {contact_id}: files hold many contacts", raw)
	}
	return t, nil
}

// afterID is the first byte of the literal text after {contact_id}, or 0.
func (t *keyTemplate) afterID() byte {
	seen := false
	for _, p := range t.parts {
		switch {
		case p.ph == "contact_id":
			seen = true
		case seen && p.lit != "":
			return p.lit[0]
		}
	}
	return 0
}

// ObjectKey builds the key of a new object of this artefact for a contact,
// for seeding: the template expanded, then suffix in place of the "*".
func (a Artefact) ObjectKey(contactID string, date time.Time, suffix string) string {
	return a.tmpl.prefix(contactID, date.UTC()) + suffix
}

// DatalakePrefix is the prefix of the data-lake files of one day.
func (a Artefact) DatalakePrefix(date time.Time) string {
	return a.tmpl.prefix("", date.UTC())
}

// Find returns the artefact of a channel by name.
func (m *DataMap) Find(ch schemas.Channel, artefact string) (Artefact, bool) {
	for _, a := range m.Channels[ch] {
		if a.Artefact == artefact {
			return a, true
		}
	}
	return Artefact{}, false
}

// Where names the store location of an artefact type, for errors and logs:
// no contact ID or personal data, only the data map's own names.
func (a Artefact) Where() string {
	switch a.Kind {
	case KindIndex:
		if a.ByID {
			return "index " + a.Index + " (document ID)"
		}
		return "index " + a.Index + " field " + a.Field
	case KindTable:
		return "table " + a.Table + " column " + a.Column
	case KindSharedTable:
		return "table " + a.Table + " column " + a.Column + " (shared with " + a.ParentTable + ")"
	case KindObjects:
		return "bucket " + a.Bucket + " keys " + a.Key
	case KindDatalake:
		return "bucket " + a.Bucket + " files " + a.Prefix
	}
	return a.Kind
}
