package locate

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/schemas"
)

const (
	idA = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"
	idB = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6c" // differs in the last character
)

func TestDefaultDataMapCoversTheSpecification(t *testing.T) {
	m, err := DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range schemas.AllChannels {
		if len(m.Artefacts(ch)) == 0 {
			t.Errorf("channel %s maps no artefacts", ch)
		}
	}
	if got := m.ChannelsFor(); got[len(got)-1] != schemas.ChannelContactSearch {
		t.Errorf("contact-search is not last: %v", got)
	}
}

func TestDataMapRejectsWideningTemplates(t *testing.T) {
	bad := map[string]string{
		"no contact id":         `connect/{instance}/CallRecordings/{yyyy}/*`,
		"id at the very end":    `connect/{instance}/CallRecordings/{contact_id}*`,
		"no trailing star":      `connect/{instance}/CallRecordings/{contact_id}_`,
		"inner wildcard":        `connect/*/CallRecordings/{contact_id}_*`,
		"question mark":         `connect/?/{contact_id}_*`,
		"dot dot":               `connect/../{contact_id}_*`,
		"leading slash":         `/connect/{contact_id}_*`,
		"unknown placeholder":   `connect/{customer}/{contact_id}_*`,
		"date after contact id": `connect/{contact_id}/{yyyy}/x*`,
		"empty":                 ``,
		// A separator a contact ID may hold makes one ID's keys a prefix
		// of another's: "ab-*" lists the keys of "ab-c…" too.
		"hyphen after id":   `connect/{contact_id}-*`,
		"letter after id":   `connect/{contact_id}x_*`,
		"capital after id":  `connect/{contact_id}A.wav*`,
		"digit after id":    `connect/{contact_id}0/*`,
		"instance after id": `connect/{contact_id}{instance}_*`,
	}
	for name, key := range bad {
		t.Run(name, func(t *testing.T) {
			raw := strings.Replace(string(DefaultDataMapYAML()),
				`"connect/{instance}/CallRecordings/{yyyy}/{mm}/{dd}/{contact_id}_*"`, `"`+key+`"`, 1)
			if _, err := ParseDataMap([]byte(raw)); err == nil {
				t.Fatalf("accepted key template %q", key)
			}
		})
	}
	for _, key := range []string{`connect/{contact_id}_*`, `connect/{contact_id}/*`, `connect/{contact_id}.wav*`, `{contact_id}_{instance}*`} {
		raw := strings.Replace(string(DefaultDataMapYAML()),
			`"connect/{instance}/CallRecordings/{yyyy}/{mm}/{dd}/{contact_id}_*"`, `"`+key+`"`, 1)
		if _, err := ParseDataMap([]byte(raw)); err != nil {
			t.Errorf("refused key template %q: %v", key, err)
		}
	}
	for name, raw := range map[string]string{
		"sql in table name": strings.Replace(string(DefaultDataMapYAML()), "table: dw_etr", `table: "dw_etr; DROP TABLE x"`, 1),
		"unknown channel":   string(DefaultDataMapYAML()) + "  fax:\n    - artefact: x\n      kind: table\n      table: t\n      column: c\n",
		"unknown field":     strings.Replace(string(DefaultDataMapYAML()), "kind: table", "kind: table\n      where: 1=1", 1),
	} {
		if _, err := ParseDataMap([]byte(raw)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func recordings(t *testing.T) Artefact {
	t.Helper()
	m, err := DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	a, ok := m.Find(schemas.ChannelVoice, "call_recordings")
	if !ok {
		t.Fatal("no call_recordings")
	}
	return a
}

func TestObjectKeyMatching(t *testing.T) {
	a := recordings(t)
	day := time.Date(2026, 3, 9, 23, 59, 0, 0, time.UTC)
	key := a.ObjectKey(idA, day, "20260309T2359_UTC.wav")
	if key != "connect/demo-instance/CallRecordings/2026/03/09/"+idA+"_20260309T2359_UTC.wav" {
		t.Fatalf("key %s", key)
	}
	match, err := a.tmpl.keyMatcher(newIDSet([]string{idA}))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]bool{
		key: true,
		a.ObjectKey(idA, day.AddDate(0, 1, 0), "x.wav"):                        true,
		a.ObjectKey(idB, day, "20260309T2359_UTC.wav"):                         false,
		"connect/demo-instance/CallRecordings/2026/03/09/" + idA + ".wav":      false,
		"connect/other-instance/CallRecordings/2026/03/09/" + idA + "_x.wav":   false,
		"connect/demo-instance/CallRecordings/2026/03/09/x" + idA + "_x.wav":   false,
		"connect/demo-instance/Analysis/Voice/2026/03/09/" + idA + "_x.json":   false,
		"connect/demo-instance/CallRecordings/2026/3/09/" + idA + "_x.wav":     false,
		"prefix/connect/demo-instance/CallRecordings/2026/03/09/" + idA + "_x": false,
	} {
		if match(k) != want {
			t.Errorf("match(%s) = %v, want %v", k, !want, want)
		}
	}
	// With a known date the listing covers the day and both neighbours;
	// without one it falls back to the literal prefix.
	ps := a.tmpl.prefixes(idA, &day)
	if len(ps) != 3 || !strings.HasSuffix(ps[1], "/2026/03/09/"+idA+"_") || !strings.Contains(ps[2], "/2026/03/10/") {
		t.Errorf("prefixes %v", ps)
	}
	if ps := a.tmpl.prefixes(idA, nil); len(ps) != 1 || ps[0] != "connect/demo-instance/CallRecordings/" {
		t.Errorf("scan prefixes %v", ps)
	}
}

// FuzzObjectKeyMatcher: for any contact ID the rule accepts, the matcher only
// ever matches keys that carry exactly that ID between the template's
// literal separators.
func FuzzObjectKeyMatcher(f *testing.F) {
	f.Add(idA, "connect/demo-instance/CallRecordings/2026/03/09/"+idA+"_x.wav")
	f.Add(idA, "connect/demo-instance/CallRecordings/2026/03/09/"+idB+"_x.wav")
	f.Add("*", "connect/demo-instance/CallRecordings/2026/03/09/anything_x.wav")
	f.Add("", "connect/demo-instance/CallRecordings/2026/03/09/_x.wav")
	f.Add(".*", "connect/demo-instance/CallRecordings/2026/03/09/.*_x")
	m, err := DefaultDataMap()
	if err != nil {
		f.Fatal(err)
	}
	a, _ := m.Find(schemas.ChannelVoice, "call_recordings")
	f.Fuzz(func(t *testing.T, id, key string) {
		if schemas.DefaultContactIDRule.Check(id) != nil {
			return // never reaches a matcher: Locator checks first
		}
		match, err := a.tmpl.keyMatcher(newIDSet([]string{id}))
		if err != nil {
			t.Fatal(err)
		}
		if !match(key) {
			return
		}
		const dir = "connect/demo-instance/CallRecordings/"
		rest, ok := strings.CutPrefix(key, dir)
		if !ok || len(rest) < len("2026/03/09/")+len(id)+1 {
			t.Fatalf("matched %q outside the template", key)
		}
		if got := rest[len("2026/03/09/"):][:len(id)+1]; got != id+"_" {
			t.Fatalf("id %q matched another contact's key %q", id, key)
		}
	})
}

// FuzzKeyTemplate: any template the parser accepts yields, for a valid ID,
// a listing prefix that ends in the ID and a non-empty separator, so it
// never reaches another contact's objects.
func FuzzKeyTemplate(f *testing.F) {
	for _, s := range []string{
		"connect/{instance}/CallRecordings/{yyyy}/{mm}/{dd}/{contact_id}_*",
		"email/{contact_id}/*", "{contact_id}*", "*", "{contact_id}_{contact_id}*", "a/{yyyy}{contact_id}.x*",
		"{contact_id}-*", "{contact_id}{instance}_*",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		k, err := parseKeyTemplate(tmpl, "inst", true)
		if err != nil {
			return
		}
		day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
		for _, p := range k.prefixes(idA, &day) {
			i := strings.LastIndex(p, idA)
			if i < 0 || i+len(idA) >= len(p) {
				t.Fatalf("template %q: prefix %q does not pin the contact ID", tmpl, p)
			}
			if schemas.IsContactIDByte(p[i+len(idA)]) {
				t.Fatalf("template %q: prefix %q continues the contact ID with a byte an ID may hold", tmpl, p)
			}
		}
	})
}

// FuzzKeyMatcherAgreesWithPattern: the hand-written matcher accepts a key
// for a contact exactly when the template's anchored expression does, for
// any template the parser accepts and any valid contact ID.
func FuzzKeyMatcherAgreesWithPattern(f *testing.F) {
	f.Add("connect/{instance}/CallRecordings/{yyyy}/{mm}/{dd}/{contact_id}_*", idA,
		"connect/inst/CallRecordings/2026/03/09/"+idA+"_x.wav")
	f.Add("email/{instance}/{yyyy}/{mm}/{dd}/{contact_id}/*", idA, "email/inst/2026/03/09/"+idA+"/a/b")
	f.Add("a/{contact_id}_{instance}_*", idA, "a/"+idA+"_inst_x")
	f.Add("a/{contact_id}_*", idA, "a/"+idA+"_x\n")
	f.Add("a/{contact_id}_*", idA, "a/"+idA+"_x_"+idA+"_y")
	f.Add("a/{yyyy}/{contact_id}.x*", idA, "a/2026/"+idA+".x.x")
	f.Fuzz(func(t *testing.T, tmpl, id, key string) {
		k, err := parseKeyTemplate(tmpl, "inst", true)
		if err != nil || schemas.DefaultContactIDRule.Check(id) != nil {
			return
		}
		match, err := k.keyMatcher(newIDSet([]string{id}))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(k.pattern(`(.+?)`, true)).FindStringSubmatch(key)
		want := m != nil && m[1] == id
		if match(key) != want {
			t.Fatalf("template %q, id %q, key %q: matcher says %v, the expression %v", tmpl, id, key, !want, want)
		}
		// A listing that skips the directories the filter refuses must
		// still reach every key of the batch.
		enter := k.dirFilter(newIDSet([]string{id}))
		for i := range len(key) {
			if want && key[i] == '/' && !enter(key[:i+1]) {
				t.Fatalf("template %q, id %q: key %q is the batch's, but its directory %q is refused", tmpl, id, key, key[:i+1])
			}
		}
	})
}

func TestDirFilterRefusesOtherContactsDirectories(t *testing.T) {
	batch := newIDSet([]string{idA})
	for _, tc := range []struct {
		tmpl, dir string
		want      bool
	}{
		{"email/{instance}/{yyyy}/{mm}/{dd}/{contact_id}/*", "email/", true},
		{"email/{instance}/{yyyy}/{mm}/{dd}/{contact_id}/*", "email/inst/2026/03/09/", true},
		{"email/{instance}/{yyyy}/{mm}/{dd}/{contact_id}/*", "email/inst/2026/03/09/" + idA + "/", true},
		{"email/{instance}/{yyyy}/{mm}/{dd}/{contact_id}/*", "email/inst/2026/03/09/" + idA + "/sub/", true},
		{"email/{instance}/{yyyy}/{mm}/{dd}/{contact_id}/*", "email/inst/2026/03/09/" + idB + "/", false},
		{"email/{instance}/{yyyy}/{mm}/{dd}/{contact_id}/*", "email/other/", false},
		{"email/{instance}/{yyyy}/{mm}/{dd}/{contact_id}/*", "email/inst/20x6/", false},
		// A file-per-contact layout: a directory where the day's files
		// are is no contact's.
		{"a/{yyyy}/{contact_id}_*", "a/2026/", true},
		{"a/{yyyy}/{contact_id}_*", "a/2026/" + idA + "/", false},
		{"a/{yyyy}/{contact_id}_*", "a/2026/" + idA + "_x/", true},
	} {
		k, err := parseKeyTemplate(tc.tmpl, "inst", true)
		if err != nil {
			t.Fatal(err)
		}
		if got := k.dirFilter(batch)(tc.dir); got != tc.want {
			t.Errorf("template %q, directory %q: entered %v, want %v", tc.tmpl, tc.dir, got, tc.want)
		}
	}
}
