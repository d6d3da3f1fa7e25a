package webapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/schemas"
)

// TestSubmitValidation: bad input is refused with 400 and a clear code, and
// nothing is submitted.
func TestSubmitValidation(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	c := h.login("dpo")

	many := make([]string, schemas.MaxContactsPerRequest+1)
	for i := range many {
		many[i] = fmt.Sprintf("0a1b2c3d-0000-4000-8000-%012d", i)
	}
	huge := []byte(`{"contact_ids":["` + strings.Repeat("a", 1<<20+10) + `"]}`)

	tests := []struct {
		name string
		body any
		code string
	}{
		{"empty list", map[string]any{"contact_ids": []string{}}, "no_contacts"},
		{"no list", map[string]any{}, "no_contacts"},
		{"null list", []byte(`{"contact_ids":null}`), "no_contacts"},
		{"wildcard *", map[string]any{"contact_ids": []string{"*"}}, "invalid_contact_id"},
		{"wildcard %", map[string]any{"contact_ids": []string{"%"}}, "invalid_contact_id"},
		{"wildcard ?", map[string]any{"contact_ids": []string{"0a1b2c3d-0000-4000-8000-00000000000?"}}, "invalid_contact_id"},
		{"prefix wildcard", map[string]any{"contact_ids": []string{"0a1b2c3d-*"}}, "invalid_contact_id"},
		{"query syntax", map[string]any{"contact_ids": []string{"contact_id:* OR 1=1"}}, "invalid_contact_id"},
		{"lucene range", map[string]any{"contact_ids": []string{"[a TO z]"}}, "invalid_contact_id"},
		{"sql", map[string]any{"contact_ids": []string{"' OR ''='"}}, "invalid_contact_id"},
		{"empty id", map[string]any{"contact_ids": []string{""}}, "invalid_contact_id"},
		{"space", map[string]any{"contact_ids": []string{" "}}, "invalid_contact_id"},
		{"upper case", map[string]any{"contact_ids": []string{strings.ToUpper(contactA)}}, "invalid_contact_id"},
		{"padded", map[string]any{"contact_ids": []string{" " + contactA}}, "invalid_contact_id"},
		{"newline", map[string]any{"contact_ids": []string{contactA + "\n"}}, "invalid_contact_id"},
		{"one bad among good", map[string]any{"contact_ids": []string{contactA, contactB, "*"}}, "invalid_contact_id"},
		{"too many", map[string]any{"contact_ids": many}, "too_many_contacts"},
		{"body over 1 MB", huge, "body_too_large"},
		{"not JSON", []byte(`contact_ids=*`), "invalid_json"},
		{"wrong type", []byte(`{"contact_ids":"*"}`), "invalid_json"},
		{"unknown field", []byte(`{"contact_ids":["` + contactA + `"],"query":"*"}`), "invalid_json"},
		{"two values", []byte(`{"contact_ids":["` + contactA + `"]}{"contact_ids":["*"]}`), "invalid_json"},
		{"free-text reason", map[string]any{"contact_ids": []string{contactA}, "reason_code": "customer asked nicely"}, "invalid_reason_code"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := h.do(c, "POST", "/api/v1/deletions", tc.body, true)
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", res.StatusCode)
			}
			e := decodeError(t, res)
			if e.Code != tc.code {
				t.Errorf("code %q, want %q (%s)", e.Code, tc.code, e.Error)
			}
			if strings.Contains(e.Error, "*") || strings.Contains(e.Error, "OR") {
				t.Errorf("error echoes the input: %q", e.Error)
			}
		})
	}
	if n := h.req.count(); n != 0 {
		t.Fatalf("Submit called %d times for bad input", n)
	}

	// A wrong content type is 415, and still submits nothing.
	req, _ := http.NewRequest("POST", h.ts.URL+"/api/v1/deletions", strings.NewReader(`{"contact_ids":["`+contactA+`"]}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set(csrfHeader, c.csrf)
	req.AddCookie(c.cookie)
	res, err := h.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnsupportedMediaType || h.req.count() != 0 {
		t.Fatalf("text/plain body: status %d, submits %d", res.StatusCode, h.req.count())
	}
}

// TestSubmit records who asked and where from, and answers 202 with what
// the UI needs.
func TestSubmit(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	for _, tc := range []struct {
		c      caller
		by     string
		source schemas.Source
	}{
		{h.login("dpo"), "dpo", schemas.SourceUI},
		{h.token(), "bulk-script", schemas.SourceCLI},
	} {
		res := h.do(tc.c, "POST", "/api/v1/deletions", map[string]any{"contact_ids": []string{contactA, contactA, contactB}, "reason_code": "gdpr-art17"}, true)
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", res.StatusCode)
		}
		var acc deletionAccepted
		if err := json.NewDecoder(res.Body).Decode(&acc); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		got := h.req.last()
		if got.RequestedBy != tc.by || got.Source != tc.source || got.ReasonCode != "gdpr-art17" {
			t.Errorf("submitted %+v, want by %s from %s", got, tc.by, tc.source)
		}
		if !schemas.IsRequestID(acc.RequestID) || got.RequestID != acc.RequestID {
			t.Errorf("request ID %q (submitted %q)", acc.RequestID, got.RequestID)
		}
		if len(acc.ContactIDs) != 2 || acc.DeadlineSeconds != 30 || len(acc.Channels) == 0 ||
			acc.Channels[len(acc.Channels)-1] != schemas.ChannelContactSearch {
			t.Errorf("accepted %+v", acc)
		}
	}
}

// TestContactIDNotEchoed: invalid contact IDs in paths and filters are 400s
// whose bodies never repeat the input, and they reach no store.
func TestContactIDNotEchoed(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	c := h.login("admin")
	bad := `<script>alert(1)</script>*`
	for _, path := range []string{
		"/api/v1/contacts/" + url.PathEscape(bad),
		"/api/v1/contacts?contact_id=" + url.QueryEscape(bad),
		"/api/v1/audit?contact_id=" + url.QueryEscape(bad),
		"/api/v1/audit.csv?contact_id=" + url.QueryEscape(bad),
		"/api/v1/deletions/" + url.PathEscape(bad),
		"/api/v1/contacts?channel=" + url.QueryEscape("VOICE\" OR 1=1"),
		"/api/v1/contacts?from=yesterday",
		"/api/v1/contacts?page_size=100000",
		"/api/v1/audit?functionality=Anything",
	} {
		res := h.do(c, "GET", path, nil, false)
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", path, res.StatusCode)
		}
		if strings.Contains(string(raw), "script") || strings.Contains(string(raw), "OR 1=1") {
			t.Errorf("%s: body echoes input: %s", path, raw)
		}
	}
	if n := h.index.searchCount(); n != 0 {
		t.Fatalf("index searched %d times", n)
	}
}
