package opensearch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/erasure-project/erasure/stores"
)

// osSubjectVersion is the value of osFieldSubject on documents written
// with their normalised phone number and lower-cased email address.
const osSubjectVersion = "1"

// osBackfillBatch is how many documents one backfill round reads and writes.
const osBackfillBatch = 500

// osSubjectHit is a document read for the backfill, with what guards its
// rewrite.
type osSubjectHit struct {
	osHit
	SeqNo       int64 `json:"_seq_no"`
	PrimaryTerm int64 `json:"_primary_term"`
	Sort        []any `json:"sort"`
}

// BackfillSubjectFields writes the normalised phone number and email
// address into every document of index written before they existed, so
// that a data subject's search (Query.Phone, Query.Email) finds them too,
// and returns how many it rewrote. Each document is rewritten only if it is
// unchanged since it was read (if_seq_no), so a document deleted meanwhile
// stays deleted. Running it again, or on several processes at once, is
// harmless.
func (o *Index) BackfillSubjectFields(ctx context.Context, index string) (int, error) {
	name, err := o.name(index)
	if err != nil {
		return 0, err
	}
	var after []any
	n := 0
	for {
		hits, err := o.subjectBackfillPage(ctx, index, name, after)
		if err != nil {
			return n, err
		}
		if len(hits) == 0 {
			if after == nil && n == 0 {
				return 0, nil
			}
			// One refresh, as a delete does: the rewrites were not refreshed.
			return n, o.refresh(ctx, "opensearch: backfill", index, name)
		}
		written, err := o.rewriteSubjects(ctx, name, hits)
		n += written
		if err != nil {
			return n, err
		}
		after = hits[len(hits)-1].Sort
	}
}

// subjectBackfillPage reads the next documents without osFieldSubject, in
// document ID order.
func (o *Index) subjectBackfillPage(ctx context.Context, index, name string, after []any) ([]osSubjectHit, error) {
	q := map[string]any{
		"query":               map[string]any{"bool": map[string]any{"must_not": []any{map[string]any{"exists": map[string]any{"field": osFieldSubject}}}}},
		"size":                osBackfillBatch,
		"seq_no_primary_term": true,
		"sort":                []any{map[string]any{osFieldID: map[string]any{"order": "asc", "unmapped_type": "keyword"}}},
	}
	if after != nil {
		q["search_after"] = after
	}
	body, err := json.Marshal(q)
	if err != nil {
		return nil, stores.Permanent(fmt.Errorf("opensearch: backfill: %w", err))
	}
	status, data, err := o.do(ctx, http.MethodPost, "/"+name+"/_search", nil, body, "")
	if err != nil {
		return nil, fmt.Errorf("opensearch: backfill: %w", err)
	}
	if status == http.StatusNotFound {
		return nil, nil // no index, nothing to bring up to date
	}
	if status/100 != 2 {
		return nil, osStatusErr("opensearch: backfill", status, data)
	}
	var r struct {
		Hits struct {
			Hits []osSubjectHit `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, stores.Retryable(fmt.Errorf("opensearch: backfill: decode response: %w", err))
	}
	return r.Hits.Hits, nil
}

// rewriteSubjects writes hits again with every hidden field, each only if
// it is the version that was read, and returns how many were written.
func (o *Index) rewriteSubjects(ctx context.Context, name string, hits []osSubjectHit) (int, error) {
	var buf bytes.Buffer
	for _, h := range hits {
		src, err := osSource(h.doc(), o.region)
		if err != nil {
			return 0, err
		}
		action, err := json.Marshal(map[string]any{"index": map[string]any{"_index": name, "_id": h.ID,
			"if_seq_no": h.SeqNo, "if_primary_term": h.PrimaryTerm}})
		if err != nil {
			return 0, stores.Permanent(fmt.Errorf("opensearch: backfill: %w", err))
		}
		buf.Write(action)
		buf.WriteByte('\n')
		buf.Write(src)
		buf.WriteByte('\n')
	}
	r, err := o.bulk(ctx, "opensearch: backfill", "false", buf.Bytes())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, item := range r.Items {
		for _, res := range item {
			switch {
			case res.Status/100 == 2:
				n++
			case res.Status == http.StatusConflict:
				// Changed or deleted since it was read: whoever did that
				// wrote (or removed) it with everything it needs.
			default:
				typ := ""
				if res.Error != nil {
					typ = res.Error.Type
				}
				return n, osTypedErr(res.Status, typ, fmt.Errorf("opensearch: backfill: document rejected: status %d: %s", res.Status, typ))
			}
		}
	}
	return n, nil
}
