package schemas

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var at = time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)

const (
	reqID = "019ac4a0-1111-7000-8000-000000000001"
	cid1  = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"
	cid2  = "7f1c2b3a-9e8d-4c6b-a5f4-e3d2c1b0a987"
)

// goldenEvents are one of each event, encoded into testdata/*.json; the
// files are the examples upstream producers are pointed to.
func goldenEvents() map[string]Event {
	counts := []ArtefactCount{{Artefact: "call_recordings", Before: 2, Deleted: 2, After: 0}}
	req := &DeletionRequested{RequestID: reqID, ContactIDs: []string{cid1, cid2}, RequestedBy: "dpo",
		RequestedAt: at, Source: SourceUI, Channels: AllChannels, ReasonCode: "gdpr-art17"}
	digest := req.ContentDigest()
	return map[string]Event{
		"deletion-requested": req,
		"finalize-requested": &FinalizeRequested{RequestID: reqID, ContactIDs: []string{cid1, cid2}, RequestedAt: at, RequestDigest: digest},
		"channel-completed": &ChannelCompleted{RequestID: reqID, Channel: ChannelVoice, Status: StatusSucceeded,
			Artefacts: counts, CompletedAt: at, RequestDigest: digest},
		"deletion-completed": &DeletionCompleted{RequestID: reqID, ContactIDs: []string{cid1, cid2}, RequestedBy: "dpo", RequestedAt: at,
			CompletedAt: at.Add(4 * time.Second), Source: SourceUI, Status: StatusSucceeded, AuditSeq: 1,
			AuditHash: strings.Repeat("ab", 32), RequestDigest: digest,
			Channels: []ChannelOutcome{{Channel: ChannelVoice, Status: StatusSucceeded, Artefacts: counts}}},
		"hold-requested": &HoldRequested{HoldID: "019ac4a0-2222-7000-8000-000000000002", ContactID: cid1, Action: HoldPlace,
			RequestedBy: "legal.counsel", RequestedAt: at, ReasonCode: "litigation", Ticket: "LEGAL-2026-114"},
	}
}

func TestGolden(t *testing.T) {
	for name, ev := range goldenEvents() {
		t.Run(name, func(t *testing.T) {
			raw, err := Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bytes.TrimSpace(want), raw) {
				t.Errorf("encoding changed:\n got %s\nwant %s", raw, want)
			}
			// Round trip through Decode, which validates again.
			out := newLike(ev)
			if err := Decode(want, DefaultContactIDRule, out); err != nil {
				t.Fatal(err)
			}
			again, err := Encode(out)
			if err != nil || !bytes.Equal(again, raw) {
				t.Errorf("round trip differs: %s %v", again, err)
			}
		})
	}
}

func newLike(e Event) Event {
	switch e.(type) {
	case *DeletionRequested:
		return &DeletionRequested{}
	case *FinalizeRequested:
		return &FinalizeRequested{}
	case *ChannelCompleted:
		return &ChannelCompleted{}
	case *HoldRequested:
		return &HoldRequested{}
	default:
		return &DeletionCompleted{}
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := os.ReadFile("testdata/deletion-requested.json")
	if err != nil {
		t.Fatal(err)
	}
	swap := func(old, new string) []byte { return bytes.Replace(good, []byte(old), []byte(new), 1) }
	cases := map[string][]byte{
		"not json":              []byte("{"),
		"wildcard contact":      swap(cid1, "*"),
		"like pattern contact":  swap(cid1, "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6%"),
		"query syntax":          swap(cid1, "a OR b"),
		"uppercase contact":     swap(cid1, strings.ToUpper(cid1)),
		"empty contact list":    swap(`["`+cid1+`","`+cid2+`"]`, `[]`),
		"duplicate contacts":    swap(cid2, cid1),
		"unknown field":         swap(`"source"`, `"customer_name":"Jane","source"`),
		"free-text reason":      swap("gdpr-art17", "customer Jane Doe asked"),
		"no contact-search":     swap(`"contact-search"`, `"voice"`),
		"bad request id":        swap(reqID, "1"),
		"wrong type":            swap(`"DeletionRequested"`, `"DeletionCompleted"`),
		"future schema version": swap(`"schema_version":1`, `"schema_version":2`),
		"bad timestamp":         swap("2026-11-27T09:30:00Z", "yesterday"),
		"oversized":             append(bytes.Repeat([]byte(" "), MaxEventBytes), good...),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			var out DeletionRequested
			err := Decode(raw, DefaultContactIDRule, &out)
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("accepted (err %v)", err)
			}
			if strings.Contains(err.Error(), "Jane") {
				t.Errorf("reason repeats personal data: %v", err)
			}
		})
	}
}

func TestContactIDRule(t *testing.T) {
	for _, bad := range []string{"", "*", "%", "_", cid1 + "*", cid1[:35] + "_", " " + cid1, cid1 + "\n", strings.ToUpper(cid1), "../" + cid1} {
		if DefaultContactIDRule.Check(bad) == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if err := DefaultContactIDRule.Check(cid1); err != nil {
		t.Error(err)
	}
	for _, p := range []string{`.*`, `^.*$`, `^[a-z*]+$`, `^[\w%]+$`, `^$`, `^(a|)$`} {
		if _, err := NewContactIDRule(p); err == nil {
			t.Errorf("pattern %q accepted: it can widen a delete", p)
		}
	}
	if _, err := NewContactIDRule(`^[A-Z0-9]{10}$`); err != nil {
		t.Errorf("a strict custom pattern was refused: %v", err)
	}
}

// A deployment with its own contact ID pattern can publish its IDs.
func TestEncodeWithCustomPattern(t *testing.T) {
	rule, err := NewContactIDRule(`^[0-9]{6,12}$`)
	if err != nil {
		t.Fatal(err)
	}
	ev := &DeletionRequested{RequestID: reqID, ContactIDs: []string{"12345678"}, RequestedBy: "dpo", RequestedAt: at, Source: SourceUI, Channels: AllChannels}
	raw, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := Decode(raw, rule, &DeletionRequested{}); err != nil {
		t.Fatal(err)
	}
	if err := Decode(raw, DefaultContactIDRule, &DeletionRequested{}); err == nil {
		t.Fatal("the default rule accepted a numeric ID")
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	ev := &DeletionRequested{RequestID: reqID, ContactIDs: []string{"*"}, RequestedBy: "dpo", RequestedAt: at, Source: SourceUI, Channels: AllChannels}
	if _, err := Encode(ev); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("encoded an invalid event: %v", err)
	}
}

func FuzzDecodeDeletionRequested(f *testing.F) {
	good, _ := os.ReadFile("testdata/deletion-requested.json")
	f.Add(good)
	f.Add([]byte(`{"contact_ids":["*"]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var out DeletionRequested
		if Decode(raw, DefaultContactIDRule, &out) != nil {
			return
		}
		// Whatever got through names only valid contact IDs.
		if len(out.ContactIDs) == 0 {
			t.Fatal("decoded a request with no contacts")
		}
		for _, id := range out.ContactIDs {
			if DefaultContactIDRule.Check(id) != nil {
				t.Fatalf("decoded an invalid contact ID %q", id)
			}
		}
	})
}
