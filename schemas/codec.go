package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed v1/*.schema.json
var schemaFS embed.FS

// FS exposes the JSON Schemas, for documentation and for upstream producers.
func FS() fs.FS { return schemaFS }

const schemaBase = "https://erasure.example/schemas/"

var schemaFiles = map[string]string{
	TypeDeletionRequested: "v1/deletion-requested.schema.json",
	TypeFinalizeRequested: "v1/finalize-requested.schema.json",
	TypeChannelCompleted:  "v1/channel-completed.schema.json",
	TypeDeletionCompleted: "v1/deletion-completed.schema.json",
	TypeHoldRequested:     "v1/hold-requested.schema.json",
}

var compiled = func() map[string]*jsonschema.Schema {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	entries, err := fs.Glob(schemaFS, "v1/*.schema.json")
	if err != nil {
		panic(err)
	}
	for _, name := range entries {
		raw, err := schemaFS.ReadFile(name)
		if err != nil {
			panic(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			panic(fmt.Sprintf("schema %s: %v", name, err))
		}
		if err := c.AddResource(schemaBase+name, doc); err != nil {
			panic(fmt.Sprintf("schema %s: %v", name, err))
		}
	}
	out := map[string]*jsonschema.Schema{}
	for typ, name := range schemaFiles {
		out[typ] = c.MustCompile(schemaBase + name)
	}
	return out
}()

// ErrInvalidEvent marks an event that fails its schema or the contact ID rule.
// Such an event is sent to the dlq with the reason and deletes nothing.
var ErrInvalidEvent = errors.New("invalid event")

// ErrEventTooLarge marks an encoded event over MaxEventBytes.
var ErrEventTooLarge = fmt.Errorf("%w: larger than %d bytes", ErrInvalidEvent, MaxEventBytes)

// Event is implemented by every event type.
type Event interface {
	eventType() string
}

func (DeletionRequested) eventType() string { return TypeDeletionRequested }
func (FinalizeRequested) eventType() string { return TypeFinalizeRequested }
func (ChannelCompleted) eventType() string  { return TypeChannelCompleted }
func (DeletionCompleted) eventType() string { return TypeDeletionCompleted }
func (HoldRequested) eventType() string     { return TypeHoldRequested }

// TypeOf returns the event type name of e.
func TypeOf(e Event) string { return e.eventType() }

// Encode stamps e with its type and version, validates it and returns JSON.
// Producers never publish an event that consumers would reject.
func Encode(e Event) ([]byte, error) {
	switch v := e.(type) {
	case *DeletionRequested:
		v.Type, v.SchemaVersion = TypeDeletionRequested, Version
	case *FinalizeRequested:
		v.Type, v.SchemaVersion = TypeFinalizeRequested, Version
	case *ChannelCompleted:
		v.Type, v.SchemaVersion = TypeChannelCompleted, Version
	case *DeletionCompleted:
		v.Type, v.SchemaVersion = TypeDeletionCompleted, Version
	case *HoldRequested:
		v.Type, v.SchemaVersion = TypeHoldRequested, Version
	default:
		return nil, fmt.Errorf("encode %T: pass a pointer to an event", e)
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.eventType(), err)
	}
	// Only the schema here: the deployment's contact ID rule, which may
	// differ from the default, was applied by whoever built the event.
	if err := validate(e.eventType(), raw, nil); err != nil {
		return nil, err
	}
	return raw, nil
}

// Decode validates raw against the schema of out's type and the contact ID
// rule, then decodes it into out (a pointer to an event type).
func Decode(raw []byte, rule ContactIDRule, out Event) error {
	typ := out.eventType()
	if err := validate(typ, raw, &rule); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidEvent, typ, err)
	}
	return nil
}

// validate checks raw against its schema and, when rule is set, every
// contact ID against the deployment's rule.
func validate(typ string, raw []byte, rule *ContactIDRule) error {
	if len(raw) > MaxEventBytes {
		return ErrEventTooLarge
	}
	sch, ok := compiled[typ]
	if !ok {
		return fmt.Errorf("%w: unknown event type %q", ErrInvalidEvent, typ)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: %s: not JSON", ErrInvalidEvent, typ)
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("%w: %s: %s", ErrInvalidEvent, typ, Reason(ve))
		}
		return fmt.Errorf("%w: %s: %v", ErrInvalidEvent, typ, err)
	}
	// The schema admits any plausible ID; the deployment's rule is stricter.
	if m, ok := inst.(map[string]any); ok && rule != nil {
		for _, field := range []string{"contact_ids", "held_contact_ids"} {
			ids, _ := m[field].([]any)
			for i, id := range ids {
				s, _ := id.(string)
				if rule.Check(s) != nil {
					return fmt.Errorf("%w: %s: at /%s/%d: contact ID does not match the configured pattern", ErrInvalidEvent, typ, field, i)
				}
			}
		}
		if id, ok := m["contact_id"].(string); ok && rule.Check(id) != nil {
			return fmt.Errorf("%w: %s: at /contact_id: contact ID does not match the configured pattern", ErrInvalidEvent, typ)
		}
	}
	return nil
}

// Reason summarises a validation error by location and keyword only, so the
// reason that goes to logs and the dlq never repeats the offending values.
func Reason(ve *jsonschema.ValidationError) string {
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			kw := "invalid"
			if e.ErrorKind != nil {
				if p := e.ErrorKind.KeywordPath(); len(p) > 0 {
					kw = p[len(p)-1]
				}
			}
			leaves = append(leaves, fmt.Sprintf("at /%s: %s", strings.Join(e.InstanceLocation, "/"), kw))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.Strings(leaves)
	leaves = slices.Compact(leaves)
	if len(leaves) > 8 {
		leaves = append(leaves[:8], fmt.Sprintf("and %d more", len(leaves)-8))
	}
	return strings.Join(leaves, "; ")
}

// SchemaFile returns the path inside FS of the schema for an event type.
func SchemaFile(typ string) (string, bool) {
	p, ok := schemaFiles[typ]
	return path.Clean(p), ok
}
