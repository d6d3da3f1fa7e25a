package opensearch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/erasure-project/erasure/stores"
)

// RequireField fails unless index exists and field is "_id", a keyword
// field, or any field of an index with no document.
func (o *Index) RequireField(ctx context.Context, index, field string) error {
	if err := stores.CheckField(field); err != nil {
		return err
	}
	name, err := o.name(index)
	if err != nil {
		return err
	}
	if field == "_id" {
		return o.requireIndex(ctx, index)
	}
	return o.requireExact(ctx, name, index, field)
}

// requireUnmapped answers for a field the index has no mapping for. A term
// query on it matches nothing, which is what a misspelt field in the data
// map looks like, so it is refused unless the index holds no document yet:
// the indexes erasure creates map a field when the first document with it
// arrives.
func (o *Index) requireUnmapped(ctx context.Context, name, index, field string) error {
	status, data, err := o.do(ctx, http.MethodGet, "/"+name+"/_count", nil, nil, "")
	if err != nil {
		return fmt.Errorf("opensearch: field mapping: %w", err)
	}
	if status == http.StatusNotFound {
		return osMissingIndex("opensearch: field mapping", index)
	}
	if status/100 != 2 {
		return osStatusErr("opensearch: field mapping", status, data)
	}
	var r struct {
		Count *int64 `json:"count"`
	}
	if err := json.Unmarshal(data, &r); err != nil || r.Count == nil {
		return stores.Retryable(fmt.Errorf("opensearch: field mapping: unexpected response"))
	}
	if *r.Count == 0 {
		return nil
	}
	return stores.Permanent(fmt.Errorf("opensearch: index %q has no field %q: it is not mapped, so no document has ever had it", index, field))
}
