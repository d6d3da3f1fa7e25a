package opensearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// Config configures the OpenSearch index adapter.
type Config struct {
	URLs []string `yaml:"urls"`
	User string   `yaml:"user"`
	// Password never comes from a file: ERASURE_OPENSEARCH_PASSWORD.
	Password           string `yaml:"-"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	// IndexPrefix is prepended to every index name (default "").
	IndexPrefix string `yaml:"index_prefix"`
	// PhoneRegion reads phone numbers without a country code, in documents
	// and in searches (default stores.DefaultPhoneRegion). Documents keep the
	// E.164 form they were indexed with: after a change, put them again.
	PhoneRegion string `yaml:"-"`
	// Logger receives what the background expunge does (index names and
	// counts only); nil means slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// Index is the production search index. Every index it creates
// has an explicit mapping: every scalar field (string, number, boolean) is a
// keyword, so Count, DeleteTerm and the exact Search filters compare whole
// values, never analysed text. Three hidden fields, excluded from _source so
// documents read back exactly as written, carry what Search needs:
//
//   - osFieldID: the document ID, the sort tie-breaker (sorting on _id needs
//     fielddata);
//   - osFieldInitiated: initiation_timestamp normalised like the embedded
//     index does it (UTC, fixed width), for range filters and sorting;
//   - osFieldText: the lower-cased customer name, phone and email, searched
//     with an escaped wildcard query so no character of the user's text is
//     ever a wildcard.
//
// Queries are always JSON term, ids, range and wildcard clauses built from
// values, never query strings.
type Index struct {
	client *opensearchapi.Client
	prefix string
	region string   // reads national phone numbers
	exact  sync.Map // index and field checked to be mapped as keyword
	log    *slog.Logger
	// expunge schedules the merges that drop deleted documents (purge.go).
	expunge expunger
	// termsBatch caps the values of one terms query; 0 means osTermsBatch.
	termsBatch int
}

var _ stores.Index = (*Index)(nil)

// Hidden fields; "@" cannot start a field name that CheckIdent accepts, so
// they can neither be queried through Count or DeleteTerm nor collide with a
// queryable document field.
const (
	osFieldID        = "@erasure_id"
	osFieldInitiated = "@erasure_initiated"
	osFieldText      = "@erasure_text"
	// osFieldPhone is customer_phone in E.164 and osFieldEmail the
	// lower-cased customer_email, for exact subject searches.
	osFieldPhone = "@erasure_phone"
	osFieldEmail = "@erasure_email"
	// osFieldSubject marks a document written with the two fields above,
	// so that older ones can be found and brought up to date (subject.go).
	osFieldSubject = "@erasure_subject_v"
)

// osIgnoreAbove keeps keyword terms under Lucene's 32766-byte term limit
// (8191 characters of up to 4 bytes each).
const osIgnoreAbove = 8191

// osBulkBatch is how many documents go into one _bulk request.
const osBulkBatch = 1000

// osTermsBatch is how many values go into one terms query: a pipeline batch
// in one request, well under index.max_terms_count (65,536 by default).
const osTermsBatch = stores.MaxBatch

var osPrefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,100}$`)

// New connects to the cluster at cfg.URLs and checks that it
// answers.
func New(ctx context.Context, cfg Config) (*Index, error) {
	if len(cfg.URLs) == 0 {
		return nil, stores.Permanent(errors.New("opensearch: no URLs configured"))
	}
	if cfg.IndexPrefix != "" && !osPrefixRE.MatchString(cfg.IndexPrefix) {
		return nil, stores.Permanent(fmt.Errorf("opensearch: index prefix %q must match %s", cfg.IndexPrefix, osPrefixRE))
	}
	discover := false
	client, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{
		Addresses:             cfg.URLs,
		Username:              cfg.User,
		Password:              cfg.Password,
		InsecureSkipVerify:    cfg.InsecureSkipVerify,
		DiscoverNodesOnStart:  &discover,
		RetryOnStatus:         []int{502, 503, 504},
		MaxRetries:            3,
		EnableRetryOnTimeout:  false,
		CompressRequestBody:   false,
		DiscoverNodesInterval: 0,
	}})
	if err != nil {
		return nil, stores.Permanent(fmt.Errorf("opensearch: client: %w", err))
	}
	o := &Index{client: client, prefix: cfg.IndexPrefix, log: cfg.Logger, region: cfg.PhoneRegion}
	if o.region == "" {
		o.region = stores.DefaultPhoneRegion
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	status, body, err := o.do(ctx, http.MethodGet, "/", nil, nil, "")
	if err != nil {
		return nil, fmt.Errorf("opensearch: connect: %w", err)
	}
	if status/100 != 2 {
		return nil, osStatusErr("opensearch: connect", status, body)
	}
	return o, nil
}

// name returns the physical name of index after checking it.
func (o *Index) name(index string) (string, error) {
	if err := stores.CheckIndexName(index); err != nil {
		return "", err
	}
	return o.prefix + index, nil
}

// do sends one request and returns its status and body. Transport failures
// are retryable; the caller classifies statuses.
func (o *Index) do(ctx context.Context, method, path string, params url.Values, body []byte, contentType string) (int, []byte, error) {
	u := path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, stores.Permanent(err)
	}
	if body != nil {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := o.client.Client.Perform(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, nil, fmt.Errorf("opensearch %s: %w", method, ctxErr)
		}
		return 0, nil, stores.Retryable(fmt.Errorf("opensearch %s: %w", method, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, nil, fmt.Errorf("opensearch %s: read response: %w", method, ctxErr)
		}
		return 0, nil, stores.Retryable(fmt.Errorf("opensearch %s: read response: %w", method, err))
	}
	return resp.StatusCode, data, nil
}

// osError is the error object of an OpenSearch response.
type osError struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// osErrorType extracts the error type of an error response body.
func osErrorType(body []byte) string {
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &r) != nil || len(r.Error) == 0 {
		return ""
	}
	var e osError
	if json.Unmarshal(r.Error, &e) == nil && e.Type != "" {
		return e.Type
	}
	return ""
}

// osClassify wraps err by HTTP status: throttling and server faults are
// retryable, everything else (bad request, auth, missing) is permanent.
func osClassify(status int, err error) error {
	if status == http.StatusTooManyRequests || status >= 500 || status == 0 {
		return stores.Retryable(err)
	}
	return stores.Permanent(err)
}

// osOverloaded reports whether an error type means the cluster turned the
// request away for now (a full thread pool queue, a tripped circuit
// breaker), whatever status came with it.
func osOverloaded(typ string) bool {
	return strings.Contains(typ, "rejected_execution") || typ == "circuit_breaking_exception"
}

// osTypedErr classifies err by the status and error type of a response or
// of one item of a bulk response.
func osTypedErr(status int, typ string, err error) error {
	if osOverloaded(typ) {
		return stores.Retryable(err)
	}
	return osClassify(status, err)
}

// osStatusErr builds the error for a failed response. Only the status and
// the error type are kept: reasons can quote document or query values.
func osStatusErr(op string, status int, body []byte) error {
	typ := osErrorType(body)
	if typ == "" {
		typ = http.StatusText(status)
	}
	return osTypedErr(status, typ, fmt.Errorf("%s: status %d: %s", op, status, typ))
}

func osMissingIndex(op, index string) error {
	return stores.Permanent(fmt.Errorf("%s: index %q does not exist", op, index))
}

// osMapping is the body that creates an index.
var osMapping = func() []byte {
	keyword := map[string]any{"type": "keyword", "ignore_above": osIgnoreAbove}
	m := map[string]any{
		"settings": map[string]any{
			"index": map[string]any{
				"auto_expand_replicas": "0-1",
				// Expunge merges take any segment with a deleted document
				// (see purge.go).
				"merge.policy.expunge_deletes_allowed": 0,
			},
		},
		"mappings": map[string]any{
			"dynamic":           true,
			"date_detection":    false,
			"numeric_detection": false,
			"_source":           map[string]any{"excludes": []string{osFieldID, osFieldInitiated, osFieldText, osFieldPhone, osFieldEmail, osFieldSubject}},
			"properties": map[string]any{
				osFieldID:        map[string]any{"type": "keyword"},
				osFieldInitiated: keyword,
				osFieldText:      keyword,
				osFieldPhone:     keyword,
				osFieldEmail:     keyword,
				osFieldSubject:   keyword,
			},
			"dynamic_templates": []any{
				// Nested objects are kept in _source but not indexed: nothing
				// queries them, and indexing them could conflict with a
				// scalar of the same name in another document.
				map[string]any{"objects": map[string]any{
					"match_mapping_type": "object",
					"mapping":            map[string]any{"type": "object", "enabled": false},
				}},
				// Every scalar is an exact-match keyword: strings, numbers
				// (indexed as their JSON text) and booleans.
				map[string]any{"scalars": map[string]any{
					"match_mapping_type": "*",
					"mapping":            keyword,
				}},
			},
		},
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}()

// EnsureIndex creates index with the adapter's mapping if it does not exist.
func (o *Index) EnsureIndex(ctx context.Context, index string) error {
	name, err := o.name(index)
	if err != nil {
		return err
	}
	status, body, err := o.do(ctx, http.MethodHead, "/"+name, nil, nil, "")
	if err != nil {
		return fmt.Errorf("opensearch: ensure index: %w", err)
	}
	switch {
	case status == http.StatusOK:
		return nil
	case status != http.StatusNotFound:
		return osStatusErr("opensearch: ensure index", status, body)
	}
	status, body, err = o.do(ctx, http.MethodPut, "/"+name, nil, osMapping, "")
	if err != nil {
		return fmt.Errorf("opensearch: create index: %w", err)
	}
	if status/100 == 2 || osErrorType(body) == "resource_already_exists_exception" {
		return nil
	}
	return osStatusErr("opensearch: create index", status, body)
}

// osBulkResponse is the part of a _bulk response the adapter reads.
type osBulkResponse struct {
	Errors bool `json:"errors"`
	Items  []map[string]struct {
		ID     string   `json:"_id"`
		Status int      `json:"status"`
		Result string   `json:"result"`
		Error  *osError `json:"error"`
	} `json:"items"`
}

// bulk sends an NDJSON _bulk body with the given refresh policy and returns
// the per-item results.
func (o *Index) bulk(ctx context.Context, op, refresh string, body []byte) (osBulkResponse, error) {
	var r osBulkResponse
	status, data, err := o.do(ctx, http.MethodPost, "/_bulk",
		url.Values{"refresh": {refresh}}, body, "application/x-ndjson")
	if err != nil {
		return r, fmt.Errorf("%s: %w", op, err)
	}
	if status/100 != 2 {
		return r, osStatusErr(op, status, data)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, stores.Retryable(fmt.Errorf("%s: decode response: %w", op, err))
	}
	return r, nil
}

// Put upserts docs in bulk; they are visible to reads when it returns. Like
// the embedded index it creates the index if needed (with the mapping, not
// OpenSearch's dynamic defaults).
func (o *Index) Put(ctx context.Context, index string, docs ...stores.Doc) error {
	name, err := o.name(index)
	if err != nil {
		return err
	}
	sources := make([][]byte, 0, len(docs))
	for _, d := range docs {
		src, err := osSource(d, o.region)
		if err != nil {
			return err
		}
		sources = append(sources, src)
	}
	if err := o.EnsureIndex(ctx, index); err != nil {
		return err
	}
	for start := 0; start < len(docs); start += osBulkBatch {
		end := min(start+osBulkBatch, len(docs))
		var buf bytes.Buffer
		for i := start; i < end; i++ {
			action, err := json.Marshal(map[string]any{"index": map[string]any{"_index": name, "_id": docs[i].ID}})
			if err != nil {
				return stores.Permanent(fmt.Errorf("opensearch: put: %w", err))
			}
			buf.Write(action)
			buf.WriteByte('\n')
			buf.Write(sources[i])
			buf.WriteByte('\n')
		}
		r, err := o.bulk(ctx, "opensearch: put", "wait_for", buf.Bytes())
		if err != nil {
			return err
		}
		if len(r.Items) != end-start {
			return stores.Retryable(fmt.Errorf("opensearch: put: %d results for %d documents", len(r.Items), end-start))
		}
		for _, item := range r.Items {
			for _, res := range item {
				if res.Error != nil || res.Status/100 != 2 {
					typ := ""
					if res.Error != nil {
						typ = res.Error.Type
					}
					return osTypedErr(res.Status, typ, fmt.Errorf("opensearch: put: document rejected: status %d: %s", res.Status, typ))
				}
			}
		}
	}
	return nil
}

// osSource renders a document's stored JSON plus the hidden search fields.
func osSource(d stores.Doc, region string) ([]byte, error) {
	r, err := stores.NewIndexRow(d, region)
	if err != nil {
		return nil, err
	}
	var text []string
	for _, s := range r.Text {
		if s != "" {
			text = append(text, s)
		}
	}
	hidden := map[string]any{osFieldID: d.ID, osFieldSubject: osSubjectVersion}
	if r.InitiatedAt != nil {
		hidden[osFieldInitiated] = r.InitiatedAt
	}
	if len(text) > 0 {
		hidden[osFieldText] = text
	}
	if r.Phone != "" {
		hidden[osFieldPhone] = r.Phone
	}
	if r.Text[2] != "" {
		hidden[osFieldEmail] = r.Text[2]
	}
	h, err := json.Marshal(hidden)
	if err != nil {
		return nil, stores.Permanent(fmt.Errorf("opensearch: encode document: %w", err))
	}
	// r.Doc is a JSON object; splice the hidden fields into it. A document
	// that has a field of the same name is refused by OpenSearch's
	// duplicate-key check rather than silently overwritten.
	doc := strings.TrimSpace(r.Doc)
	if doc == "{}" {
		return h, nil
	}
	out := make([]byte, 0, len(h)+len(doc))
	out = append(out, h[:len(h)-1]...)
	out = append(out, ',')
	out = append(out, doc[1:]...)
	return out, nil
}

// osHit is a document as OpenSearch returns it.
type osHit struct {
	ID     string         `json:"_id"`
	Found  bool           `json:"found"`
	Source map[string]any `json:"_source"`
}

func (h osHit) doc() stores.Doc {
	f := h.Source
	if f == nil {
		f = map[string]any{}
	}
	delete(f, osFieldID)
	delete(f, osFieldInitiated)
	delete(f, osFieldText)
	// Indexes made before these fields existed keep them in _source.
	delete(f, osFieldPhone)
	delete(f, osFieldEmail)
	delete(f, osFieldSubject)
	return stores.Doc{ID: h.ID, Fields: f}
}

// Get returns one document, or ErrNotFound (also when the index is missing,
// as with the embedded index).
func (o *Index) Get(ctx context.Context, index, id string) (stores.Doc, error) {
	name, err := o.name(index)
	if err != nil {
		return stores.Doc{}, err
	}
	if id == "" || len(id) > 512 {
		return stores.Doc{}, fmt.Errorf("index %s: document: %w", index, stores.ErrNotFound)
	}
	// _mget takes the ID in the body, so no ID needs escaping in a URL.
	req, err := json.Marshal(map[string]any{"ids": []string{id}})
	if err != nil {
		return stores.Doc{}, stores.Permanent(fmt.Errorf("opensearch: get: %w", err))
	}
	status, body, err := o.do(ctx, http.MethodPost, "/"+name+"/_mget", nil, req, "")
	if err != nil {
		return stores.Doc{}, fmt.Errorf("opensearch: get: %w", err)
	}
	if status == http.StatusNotFound {
		return stores.Doc{}, fmt.Errorf("index %s: document: %w", index, stores.ErrNotFound)
	}
	if status/100 != 2 {
		return stores.Doc{}, osStatusErr("opensearch: get", status, body)
	}
	var r struct {
		Docs []struct {
			osHit
			Error *osError `json:"error"`
		} `json:"docs"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Docs) != 1 {
		return stores.Doc{}, stores.Retryable(errors.New("opensearch: get: unexpected response"))
	}
	if e := r.Docs[0].Error; e != nil {
		if e.Type == "index_not_found_exception" {
			return stores.Doc{}, fmt.Errorf("index %s: document: %w", index, stores.ErrNotFound)
		}
		return stores.Doc{}, stores.Retryable(fmt.Errorf("opensearch: get: %s", e.Type))
	}
	h := r.Docs[0].osHit
	if !h.Found {
		return stores.Doc{}, fmt.Errorf("index %s: document: %w", index, stores.ErrNotFound)
	}
	if h.ID == "" {
		h.ID = id
	}
	return h.doc(), nil
}

// osTermQuery is the exact-match query for field = value; "_id" is the
// document ID. Values only ever appear as term values.
func osTermQuery(field, value string) map[string]any {
	if field == "_id" {
		return map[string]any{"ids": map[string]any{"values": []string{value}}}
	}
	return map[string]any{"term": map[string]any{field: map[string]any{"value": value}}}
}

// osTermsQuery is the exact-match query for field = any of values; "_id" is
// the document ID.
func osTermsQuery(field string, values []string) map[string]any {
	if field == "_id" {
		return map[string]any{"ids": map[string]any{"values": values}}
	}
	return map[string]any{"terms": map[string]any{field: values}}
}

// requireExact refuses a field that is mapped as anything but keyword: a
// term query for a hyphenated ID on an analysed text field matches nothing,
// so a delete would find nothing and verification would pass with the
// documents still there. Indexes erasure creates map strings as keyword;
// this guards indexes an operator points the data map at. A field that is
// not mapped at all is refused too, unless the index is empty (see
// requireUnmapped).
func (o *Index) requireExact(ctx context.Context, name, index, field string) error {
	if field == "_id" {
		return nil
	}
	key := name + "\x00" + field
	if _, ok := o.exact.Load(key); ok {
		return nil
	}
	status, data, err := o.do(ctx, http.MethodGet, "/"+name+"/_mapping/field/"+url.PathEscape(field), nil, nil, "")
	if err != nil {
		return fmt.Errorf("opensearch: field mapping: %w", err)
	}
	if status == http.StatusNotFound {
		return osMissingIndex("opensearch: field mapping", index)
	}
	if status/100 != 2 {
		return osStatusErr("opensearch: field mapping", status, data)
	}
	var r map[string]struct {
		Mappings map[string]struct {
			Mapping map[string]struct {
				Type string `json:"type"`
			} `json:"mapping"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return stores.Retryable(fmt.Errorf("opensearch: field mapping: unexpected response"))
	}
	mapped := false
	for _, idx := range r {
		for _, f := range idx.Mappings {
			for _, m := range f.Mapping {
				mapped = true
				if m.Type != "keyword" {
					return stores.Permanent(fmt.Errorf("opensearch: field %q of index %q is mapped as %q: exact matching needs keyword (map it so, or point the data map at its keyword subfield)", field, index, m.Type))
				}
			}
		}
	}
	if !mapped {
		return o.requireUnmapped(ctx, name, index, field)
	}
	o.exact.Store(key, true) // a mapping type never changes
	return nil
}

// termsRequests checks an exact-match query on a batch of values and
// returns the index's physical name and one query body per terms query the
// batch takes (one for a pipeline batch); repeated values are dropped.
func (o *Index) termsRequests(ctx context.Context, index, field string, values []string) (string, [][]byte, error) {
	if err := stores.CheckTermQuery(index, field, values...); err != nil {
		return "", nil, err
	}
	name, err := o.name(index)
	if err != nil {
		return "", nil, err
	}
	if err := o.requireExact(ctx, name, index, field); err != nil {
		return "", nil, err
	}
	bodies, err := termsBodies(field, values, o.termsBatch)
	return name, bodies, err
}

// termsBodies are the query bodies matching field = one of values exactly,
// size values (osTermsBatch when 0) to a body; repeated values are dropped.
// Values are only ever JSON strings in a terms or ids list.
func termsBodies(field string, values []string, size int) ([][]byte, error) {
	if size <= 0 {
		size = osTermsBatch
	}
	var bodies [][]byte
	for chunk := range slices.Chunk(stores.UniqueKeys(values), size) {
		body, err := json.Marshal(map[string]any{"query": osTermsQuery(field, chunk)})
		if err != nil {
			return nil, stores.Permanent(fmt.Errorf("opensearch: terms query: %w", err))
		}
		bodies = append(bodies, body)
	}
	return bodies, nil
}

// Count counts documents whose field equals one of values exactly, with one
// _count per terms query. A missing index is an error, so a misspelt index
// cannot verify as empty.
func (o *Index) Count(ctx context.Context, index, field string, values ...string) (int64, error) {
	name, bodies, err := o.termsRequests(ctx, index, field, values)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, body := range bodies {
		n, err := o.count(ctx, index, name, body)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func (o *Index) count(ctx context.Context, index, name string, body []byte) (int64, error) {
	status, data, err := o.do(ctx, http.MethodPost, "/"+name+"/_count", nil, body, "")
	if err != nil {
		return 0, fmt.Errorf("opensearch: count: %w", err)
	}
	if status == http.StatusNotFound {
		return 0, osMissingIndex("opensearch: count", index)
	}
	if status/100 != 2 {
		return 0, osStatusErr("opensearch: count", status, data)
	}
	var r struct {
		Count  *int64 `json:"count"`
		Shards struct {
			Failed int `json:"failed"`
		} `json:"_shards"`
	}
	if err := json.Unmarshal(data, &r); err != nil || r.Count == nil {
		return 0, stores.Retryable(fmt.Errorf("opensearch: count: unexpected response"))
	}
	if r.Shards.Failed > 0 {
		return 0, stores.Retryable(fmt.Errorf("opensearch: count: %d shards failed", r.Shards.Failed))
	}
	return *r.Count, nil
}

// refresh makes what was written or deleted in the index visible to
// searches and counts. Deletes run with refresh=false and call this once at
// the end: a refresh per request would cost a new segment each.
func (o *Index) refresh(ctx context.Context, op, index, name string) error {
	status, data, err := o.do(ctx, http.MethodPost, "/"+name+"/_refresh", nil, nil, "")
	if err != nil {
		return fmt.Errorf("%s: refresh: %w", op, err)
	}
	if status == http.StatusNotFound {
		return osMissingIndex(op+": refresh", index)
	}
	if status/100 != 2 {
		return osStatusErr(op+": refresh", status, data)
	}
	var r struct {
		Shards struct {
			Failed int `json:"failed"`
		} `json:"_shards"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return stores.Retryable(fmt.Errorf("%s: refresh: unexpected response", op))
	}
	if r.Shards.Failed > 0 {
		return stores.Retryable(fmt.Errorf("%s: refresh: %d shards failed", op, r.Shards.Failed))
	}
	return nil
}

// DeleteIDs deletes documents by ID with _bulk requests of osBulkBatch
// deletes, refresh=false, and one refresh at the end, and returns how many
// existed.
func (o *Index) DeleteIDs(ctx context.Context, index string, ids ...string) (int64, error) {
	name, err := o.name(index)
	if err != nil {
		return 0, err
	}
	if err := o.requireIndex(ctx, index); err != nil {
		return 0, err
	}
	uniq := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		// An ID outside 1 to 512 bytes cannot have been stored.
		if id != "" && len(id) <= 512 && !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	var n int64
	for start := 0; start < len(uniq); start += osBulkBatch {
		batch := uniq[start:min(start+osBulkBatch, len(uniq))]
		var buf bytes.Buffer
		for _, id := range batch {
			action, err := json.Marshal(map[string]any{"delete": map[string]any{"_index": name, "_id": id}})
			if err != nil {
				return n, stores.Permanent(fmt.Errorf("opensearch: delete IDs: %w", err))
			}
			buf.Write(action)
			buf.WriteByte('\n')
		}
		r, err := o.bulk(ctx, "opensearch: delete IDs", "false", buf.Bytes())
		if err != nil {
			return n, err
		}
		if len(r.Items) != len(batch) {
			return n, stores.Retryable(fmt.Errorf("opensearch: delete IDs: %d results for %d IDs", len(r.Items), len(batch)))
		}
		for _, item := range r.Items {
			res := item["delete"]
			switch {
			case res.Error != nil && res.Error.Type == "index_not_found_exception":
				return n, osMissingIndex("opensearch: delete IDs", index)
			case res.Error != nil:
				return n, osTypedErr(res.Status, res.Error.Type, fmt.Errorf("opensearch: delete IDs: status %d: %s", res.Status, res.Error.Type))
			case res.Result == "deleted":
				n++
			case res.Result == "not_found":
			default:
				return n, osClassify(res.Status, fmt.Errorf("opensearch: delete IDs: status %d: result %q", res.Status, res.Result))
			}
		}
	}
	if len(uniq) == 0 {
		return 0, nil
	}
	// Also when nothing was found: an earlier attempt may have deleted the
	// documents and failed before its refresh.
	if err := o.refresh(ctx, "opensearch: delete IDs", index, name); err != nil {
		return n, err
	}
	return n, nil
}

// requireIndex fails for an index that does not exist.
func (o *Index) requireIndex(ctx context.Context, index string) error {
	name, err := o.name(index)
	if err != nil {
		return err
	}
	status, body, err := o.do(ctx, http.MethodHead, "/"+name, nil, nil, "")
	if err != nil {
		return fmt.Errorf("opensearch: index exists: %w", err)
	}
	switch {
	case status == http.StatusOK:
		return nil
	case status == http.StatusNotFound:
		return osMissingIndex("opensearch", index)
	}
	return osStatusErr("opensearch: index exists", status, body)
}

// DeleteTerm deletes every document whose field equals one of values
// exactly, with one _delete_by_query per terms query (one for a pipeline
// batch) and refresh=false, then refreshes once so a following Count sees
// the deletions.
func (o *Index) DeleteTerm(ctx context.Context, index, field string, values ...string) (int64, error) {
	name, bodies, err := o.termsRequests(ctx, index, field, values)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, body := range bodies {
		n, err := o.deleteByQuery(ctx, index, name, body)
		total += n
		if err != nil {
			return total, err
		}
	}
	// Also when nothing was found: an earlier attempt may have deleted the
	// documents and failed before its refresh.
	if err := o.refresh(ctx, "opensearch: delete term", index, name); err != nil {
		return total, err
	}
	return total, nil
}

// deleteByQuery runs one _delete_by_query and returns how many documents it
// deleted. Documents that changed while it ran (version conflicts) are
// retried a few times, each after a refresh: the query only sees refreshed
// documents, so without one it would find the ones it deleted again and
// conflict on them.
func (o *Index) deleteByQuery(ctx context.Context, index, name string, body []byte) (int64, error) {
	params := url.Values{
		"conflicts":           {"proceed"},
		"wait_for_completion": {"true"},
	}
	var total int64
	for attempt := 0; ; attempt++ {
		status, data, err := o.do(ctx, http.MethodPost, "/"+name+"/_delete_by_query", params, body, "")
		if err != nil {
			return total, fmt.Errorf("opensearch: delete term: %w", err)
		}
		if status == http.StatusNotFound {
			return total, osMissingIndex("opensearch: delete term", index)
		}
		if status/100 != 2 {
			return total, osStatusErr("opensearch: delete term", status, data)
		}
		var r struct {
			Deleted          *int64            `json:"deleted"`
			VersionConflicts int64             `json:"version_conflicts"`
			TimedOut         bool              `json:"timed_out"`
			Failures         []json.RawMessage `json:"failures"`
		}
		if err := json.Unmarshal(data, &r); err != nil || r.Deleted == nil {
			return total, stores.Retryable(errors.New("opensearch: delete term: unexpected response"))
		}
		total += *r.Deleted
		if r.TimedOut || len(r.Failures) > 0 {
			// Failures are mostly rejections by a full write queue (429);
			// their reasons can quote values, so only their number is kept.
			return total, stores.Retryable(fmt.Errorf("opensearch: delete term: incomplete (timed out %v, %d failures)", r.TimedOut, len(r.Failures)))
		}
		if r.VersionConflicts == 0 {
			return total, nil
		}
		if attempt >= 4 {
			return total, stores.Retryable(fmt.Errorf("opensearch: delete term: %d version conflicts", r.VersionConflicts))
		}
		select {
		case <-ctx.Done():
			return total, fmt.Errorf("opensearch: delete term: %w", ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
		if err := o.refresh(ctx, "opensearch: delete term", index, name); err != nil {
			return total, err
		}
	}
}

// osWildcardEscape escapes the wildcard query's special characters so the
// text matches literally.
var osWildcardEscape = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`)

// Search pages through an index with the embedded index's semantics:
// ContactID matches the document ID or contact_id; Text is a
// case-insensitive, literal substring of the customer's name, phone or
// email; Channel matches exactly; Agent and Queue are prefixes ignoring
// ASCII case (a prefix query, whose value is never a pattern, with
// case_insensitive, which folds ASCII only); From and To bound
// initiation_timestamp inclusively; newest first, then by ID.
func (o *Index) Search(ctx context.Context, index string, q stores.Query) (stores.SearchResult, error) {
	name, err := o.name(index)
	if err != nil {
		return stores.SearchResult{}, err
	}
	phone, err := stores.SubjectPhone(q, o.region)
	if err != nil {
		return stores.SearchResult{}, err
	}
	filter := []any{}
	if q.ContactID != "" {
		filter = append(filter, map[string]any{"bool": map[string]any{
			"should": []any{
				osTermQuery("_id", q.ContactID),
				osTermQuery(stores.FieldContactID, q.ContactID),
			},
			"minimum_should_match": 1,
		}})
	}
	if q.Text != "" {
		pattern := "*" + osWildcardEscape.Replace(strings.ToLower(q.Text)) + "*"
		should := []any{map[string]any{"wildcard": map[string]any{osFieldText: map[string]any{"value": pattern}}}}
		// A needle is "+" and digits only: no wildcard character.
		for _, pn := range stores.PhoneNeedles(q.Text, o.region) {
			should = append(should, map[string]any{"wildcard": map[string]any{osFieldPhone: map[string]any{"value": "*" + pn + "*"}}})
		}
		filter = append(filter, map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}})
	}
	if phone != "" {
		filter = append(filter, osTermQuery(osFieldPhone, phone))
	}
	if q.Email != "" {
		filter = append(filter, osTermQuery(osFieldEmail, strings.ToLower(strings.TrimSpace(q.Email))))
	}
	if q.Channel != "" {
		filter = append(filter, osTermQuery("channel", q.Channel))
	}
	for _, f := range []struct{ field, value string }{{"agent", q.Agent}, {"queue", q.Queue}} {
		if f.value != "" {
			filter = append(filter, osPrefixQuery(f.field, f.value))
		}
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		rng := map[string]any{}
		if !q.From.IsZero() {
			rng["gte"] = stores.FormatTime(q.From)
		}
		if !q.To.IsZero() {
			rng["lte"] = stores.FormatTime(q.To)
		}
		filter = append(filter, map[string]any{"range": map[string]any{osFieldInitiated: rng}})
	}
	limit := q.Limit
	if limit <= 0 {
		limit = stores.SearchDefaultLimit
	}
	limit = min(limit, stores.SearchMaxLimit)
	offset := max(q.Offset, 0)
	body, err := json.Marshal(map[string]any{
		"query":            map[string]any{"bool": map[string]any{"filter": filter}},
		"from":             offset,
		"size":             limit,
		"track_total_hits": true,
		"sort": []any{
			map[string]any{osFieldInitiated: map[string]any{"order": "desc", "missing": "_last", "unmapped_type": "keyword"}},
			map[string]any{osFieldID: map[string]any{"order": "asc", "unmapped_type": "keyword"}},
		},
	})
	if err != nil {
		return stores.SearchResult{}, stores.Permanent(fmt.Errorf("opensearch: search: %w", err))
	}
	status, data, err := o.do(ctx, http.MethodPost, "/"+name+"/_search", nil, body, "")
	if err != nil {
		return stores.SearchResult{}, fmt.Errorf("opensearch: search: %w", err)
	}
	if status == http.StatusNotFound {
		return stores.SearchResult{}, osMissingIndex("opensearch: search", index)
	}
	if status/100 != 2 {
		return stores.SearchResult{}, osStatusErr("opensearch: search", status, data)
	}
	var r struct {
		Shards struct {
			Failed int `json:"failed"`
		} `json:"_shards"`
		Hits struct {
			Total struct {
				Value int64 `json:"value"`
			} `json:"total"`
			Hits []osHit `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return stores.SearchResult{}, stores.Retryable(fmt.Errorf("opensearch: search: decode response: %w", err))
	}
	if r.Shards.Failed > 0 {
		return stores.SearchResult{}, stores.Retryable(fmt.Errorf("opensearch: search: %d shards failed", r.Shards.Failed))
	}
	res := stores.SearchResult{Total: r.Hits.Total.Value}
	for _, h := range r.Hits.Hits {
		res.Docs = append(res.Docs, h.doc())
	}
	return res, nil
}

// osPrefixQuery matches values of field that start with prefix, ignoring
// ASCII case.
func osPrefixQuery(field, prefix string) map[string]any {
	return map[string]any{"prefix": map[string]any{field: map[string]any{"value": prefix, "case_insensitive": true}}}
}

// FieldValues lists distinct values of a field by prefix, ignoring ASCII
// case: a terms aggregation over the documents a prefix query matches, in
// key order, which is exact across shards. A document with several values
// brings its others along, so the prefix is applied again here.
func (o *Index) FieldValues(ctx context.Context, index, field, prefix string, limit int) ([]string, error) {
	limit, err := stores.CheckFieldValues(index, field, prefix, limit)
	if err != nil {
		return nil, err
	}
	name, err := o.name(index)
	if err != nil {
		return nil, err
	}
	query := map[string]any{"match_all": map[string]any{}}
	if prefix != "" {
		query = osPrefixQuery(field, prefix)
	}
	body, err := json.Marshal(map[string]any{
		"size":  0,
		"query": query,
		"aggs": map[string]any{"values": map[string]any{"terms": map[string]any{
			// Over-fetch a little for the other values of multi-valued documents.
			"field": field, "size": limit * 4, "order": map[string]any{"_key": "asc"},
		}}},
	})
	if err != nil {
		return nil, stores.Permanent(fmt.Errorf("opensearch: field values: %w", err))
	}
	status, data, err := o.do(ctx, http.MethodPost, "/"+name+"/_search", nil, body, "")
	if err != nil {
		return nil, fmt.Errorf("opensearch: field values: %w", err)
	}
	if status == http.StatusNotFound {
		return nil, osMissingIndex("opensearch: field values", index)
	}
	if status/100 != 2 {
		return nil, osStatusErr("opensearch: field values", status, data)
	}
	var r struct {
		Shards struct {
			Failed int `json:"failed"`
		} `json:"_shards"`
		Aggregations struct {
			Values struct {
				Buckets []struct {
					Key         json.RawMessage `json:"key"`
					KeyAsString string          `json:"key_as_string"`
				} `json:"buckets"`
			} `json:"values"`
		} `json:"aggregations"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, stores.Retryable(fmt.Errorf("opensearch: field values: decode response: %w", err))
	}
	if r.Shards.Failed > 0 {
		return nil, stores.Retryable(fmt.Errorf("opensearch: field values: %d shards failed", r.Shards.Failed))
	}
	out := []string{}
	for _, b := range r.Aggregations.Values.Buckets {
		v := b.KeyAsString
		if v == "" {
			if err := json.Unmarshal(b.Key, &v); err != nil {
				continue // keyword keys are strings; anything else is no suggestion
			}
		}
		if stores.HasPrefixFold(v, prefix) {
			out = append(out, v)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}
