package webapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/locate"
)

// TestSubmitErrorBodies pins the exact status and body of every refusal of a
// deletion, since API clients match on them.
func TestSubmitErrorBodies(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	c := h.login("dpo")
	many := make([]string, schemas.MaxContactsPerRequest+1)
	for i := range many {
		many[i] = contactA
	}
	for _, tc := range []struct {
		name string
		body any
		want string
	}{
		{"empty", map[string]any{"contact_ids": []string{}},
			`{"error":"give at least one contact ID","code":"no_contacts"}`},
		{"too many", map[string]any{"contact_ids": append(many[:len(many)-1:len(many)-1], "*")},
			`{"error":"at most 1000 contact IDs per request","code":"too_many_contacts"}`},
		{"third is bad", map[string]any{"contact_ids": []string{contactA, contactB, "*"}},
			`{"error":"contact ID #3 is not a valid contact ID","code":"invalid_contact_id"}`},
		{"contact before reason", map[string]any{"contact_ids": []string{"%", contactA}, "reason_code": "Free Text"},
			`{"error":"contact ID #1 is not a valid contact ID","code":"invalid_contact_id"}`},
		{"reason", map[string]any{"contact_ids": []string{contactA}, "reason_code": "gdpr art17"},
			`{"error":"reason_code must be a short code of a-z, 0-9, '.', '_' or '-'","code":"invalid_reason_code"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.do(c, "POST", "/api/v1/deletions", tc.body, true)
			assertBody(t, res, http.StatusBadRequest, tc.want)
		})
	}
	if n := h.req.count(); n != 0 {
		t.Fatalf("Submit called %d times for bad input", n)
	}
}

// stubRequester answers Submit with a fixed error, or builds with its own
// rule, standing in for a publisher whose rule differs from the API's.
type stubRequester struct {
	err  error
	rule schemas.ContactIDRule
}

func (s stubRequester) Submit(_ context.Context, r producers.Request) (schemas.DeletionRequested, error) {
	if s.err != nil {
		return schemas.DeletionRequested{}, s.err
	}
	q := producers.Requester{Channels: schemas.AllChannels, Rule: s.rule}
	return q.Build(r)
}

// TestSubmitFailedBodies pins what a refusal by the publisher itself looks
// like.
func TestSubmitFailedBodies(t *testing.T) {
	numeric, err := schemas.NewContactIDRule(`^[0-9a-f-]{1,20}$`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		req    Requester
		status int
		want   string
	}{
		{"stricter publisher rule", stubRequester{rule: numeric}, http.StatusBadRequest,
			`{"error":"contact ID #1 is not a valid contact ID","code":"invalid_contact_id"}`},
		{"invalid event", stubRequester{err: fmt.Errorf("%w: DeletionRequested: at /requested_by: pattern", schemas.ErrInvalidEvent)}, http.StatusBadRequest,
			`{"error":"the request was refused as invalid","code":"invalid_request"}`},
		{"no contacts", stubRequester{err: producers.ErrNoContacts}, http.StatusBadRequest,
			`{"error":"give at least one contact ID","code":"no_contacts"}`},
		{"broker down", stubRequester{err: errors.New("kafka: no brokers")}, http.StatusServiceUnavailable,
			`{"error":"the deletion could not be requested; nothing was deleted; try again","code":"submit_failed"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTokenServer(t, tc.req)
			req, _ := http.NewRequest("POST", ts.URL+"/api/v1/deletions", strings.NewReader(`{"contact_ids":["`+contactA+`"]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+apiToken)
			res, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			assertBody(t, res, tc.status, tc.want)
		})
	}
}

// newTokenServer is a server over req that accepts the test API token.
func newTokenServer(t *testing.T, req Requester) *httptest.Server {
	t.Helper()
	dm, err := locate.DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(Config{
		APITokens: []APIToken{{Name: "bulk-script", TokenSHA256: sha256Hex(apiToken), Roles: []string{"dpo"}}},
	}, Deps{Contacts: &fakeIndex{}, Inventory: fakeInventory{}, Ledger: &fakeLedger{}, Requests: req, DataMap: dm}, defaultSendBuffer)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return ts
}

func assertBody(t *testing.T, res *http.Response, status int, want string) {
	t.Helper()
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != status || string(raw) != want+"\n" {
		t.Errorf("got %d %s\nwant %d %s", res.StatusCode, raw, status, want)
	}
}

// TestPatternsMatchSchema: the web API's own copy of a schema pattern, used
// for sign-in names, is the published one. Request IDs are checked with
// schemas.IsRequestID, which schemas' tests hold to the schema.
func TestPatternsMatchSchema(t *testing.T) {
	raw, err := fs.ReadFile(schemas.FS(), "v1/defs.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var defs struct {
		Defs map[string]struct {
			Pattern string `json:"pattern"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &defs); err != nil {
		t.Fatal(err)
	}
	if got, want := principalRE.String(), defs.Defs["principal"].Pattern; got != want {
		t.Errorf("principalRE %s, schema %s", got, want)
	}
}
