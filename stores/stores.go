// Package stores holds every store adapter erasure talks to: the broker, the
// search index, object storage, the warehouse and the deletion ledger (join
// state and audit log), each with an embedded default and a production
// adapter. The interfaces below are what the contract tests run against; the
// code that uses a store declares the smaller interface it needs.
package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// Errors are classified so callers can route them: retryable ones go through
// retry with back-off, permanent ones fail the step with a reason.
var (
	ErrRetryable = errors.New("retryable")
	ErrPermanent = errors.New("permanent")
	// ErrNotFound is returned by reads of a single item that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotErased means the verification query still found data after a
	// delete.
	ErrNotErased = errors.New("verification found data after deletion")
)

// Retryable wraps err so errors.Is(err, ErrRetryable) holds.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, class: ErrRetryable}
}

// Permanent wraps err so errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, class: ErrPermanent}
}

type classified struct {
	err   error
	class error
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() []error {
	return []error{c.err, c.class}
}

// IsRetryable reports whether err is worth retrying. Unclassified errors are
// treated as retryable: a transient fault mislabelled permanent would fail a
// deletion that could have succeeded, while the reverse only costs retries.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	return !errors.Is(err, ErrPermanent)
}

// identRE is what a table, column, index, field or bucket name from the data
// map may look like; names are interpolated into queries, so they are checked.
var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CheckIdent validates an identifier taken from configuration.
func CheckIdent(kind, name string) error {
	if !identRE.MatchString(name) {
		return Permanent(fmt.Errorf("%s name %q: must match %s", kind, name, identRE))
	}
	return nil
}

// CheckNewColumns checks the column list of a table to be created.
func CheckNewColumns(columns []string) error {
	if len(columns) == 0 {
		return Permanent(errors.New("warehouse: a table needs at least one column"))
	}
	seen := map[string]bool{}
	for _, c := range columns {
		if seen[c] {
			return Permanent(fmt.Errorf("warehouse: column %q listed twice", c))
		}
		seen[c] = true
	}
	return nil
}

// UniqueKeys drops empty and repeated keys. An empty key names no shared
// record (it may come from Distinct over rows with an empty column), so it
// is skipped, never matched.
func UniqueKeys(keys []string) []string {
	uniq := make([]string, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k != "" && !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	return uniq
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// CheckBucket validates an S3 bucket name.
func CheckBucket(name string) error {
	if !bucketRE.MatchString(name) {
		return Permanent(fmt.Errorf("bucket name %q is not a valid S3 bucket name", name))
	}
	return nil
}

// Doc is one search index document.
type Doc struct {
	ID     string         `json:"id"`
	Fields map[string]any `json:"fields"`
}

// Query is a contact search. Empty fields do not filter; Text matches the
// customer's name, phone or email. Agent and Queue match values that start
// with them, ignoring the case of ASCII letters (HasPrefixFold): people type
// "dale" for "Dale.Smith", and OpenSearch folds ASCII only, so every index
// does the same.
type Query struct {
	ContactID string
	Text      string
	// Phone and Email find one data subject's contacts exactly: Phone
	// matches customer_phone as the same E.164 number (both normalised
	// with the index's default region), Email matches customer_email
	// ignoring case. Neither is a substring or pattern match, so
	// what they find may be deleted as that person's.
	Phone    string
	Email    string
	Channel  string
	Agent    string
	Queue    string
	From, To time.Time // on the field "initiation_timestamp"
	Offset   int
	Limit    int
}

// SearchResult is one page of a search.
type SearchResult struct {
	Total int64
	Docs  []Doc
}

// Index is a search index of documents keyed by ID (contacts, CTRs).
type Index interface {
	// EnsureIndex creates index if it does not exist.
	EnsureIndex(ctx context.Context, index string) error
	// Put upserts documents, visible to reads when it returns.
	Put(ctx context.Context, index string, docs ...Doc) error
	// Get returns one document, or ErrNotFound.
	Get(ctx context.Context, index, id string) (Doc, error)
	// Count counts documents whose field equals one of values exactly ("_id"
	// means the document ID). Values are a batch (up to MaxBatch and more:
	// an adapter splits what its store cannot take in one call); none is an
	// error.
	Count(ctx context.Context, index, field string, values ...string) (int64, error)
	// DeleteIDs deletes documents by ID and returns how many existed.
	DeleteIDs(ctx context.Context, index string, ids ...string) (int64, error)
	// DeleteTerm deletes every document whose field equals one of values
	// exactly, in as few store calls as the store allows, and returns how
	// many were deleted. Deletions are visible when it returns.
	DeleteTerm(ctx context.Context, index, field string, values ...string) (int64, error)
	// Search pages through an index for the UI.
	Search(ctx context.Context, index string, q Query) (SearchResult, error)
	// FieldValues returns up to limit distinct values of field that start
	// with prefix (HasPrefixFold; an empty prefix matches all), in ascending
	// byte order, for the UI's suggestions. limit is capped at
	// FieldValuesMaxLimit.
	FieldValues(ctx context.Context, index, field, prefix string, limit int) ([]string, error)
	// RequireField fails with a permanent error unless index exists and
	// field is one Count and DeleteTerm can match exactly: "_id", or a field
	// some document of the index has had, stored for exact matching. On an
	// index holding no document any well-formed field passes, since no field
	// is known yet and nothing can be missed. Count and DeleteTerm apply the
	// same rule, so a misspelt field is an error, never a count of 0.
	RequireField(ctx context.Context, index, field string) error
}

// Objects is object storage (S3 or local disk).
type Objects interface {
	EnsureBucket(ctx context.Context, bucket string) error
	Put(ctx context.Context, bucket, key string, body io.Reader) error
	// Get opens the current version of an object, or returns ErrNotFound.
	Get(ctx context.Context, bucket, key string) (io.ReadCloser, error)
	// List calls fn for every key under prefix that still has anything
	// stored (a current object, an old version or a delete marker), in key
	// order, once per key, across as many pages as it takes.
	List(ctx context.Context, bucket, prefix string, fn func(key string) error) error
	// Delete removes every version and delete marker of each key, batched
	// (S3 DeleteObjects by version ID, up to 1,000 per call). Deleting what
	// is not there succeeds.
	Delete(ctx context.Context, bucket string, keys ...string) error
	// Versions counts what remains of key: current object, old versions and
	// delete markers. Zero means physically gone.
	Versions(ctx context.Context, bucket, key string) (int, error)
	// Replace streams body in as the new content of key and removes every
	// older version, so the replaced content is physically gone.
	Replace(ctx context.Context, bucket, key string, body io.Reader) error

	// The methods below let a rewrite of a shared file (a data-lake file
	// holding many contacts) run beside other writers: read a snapshot,
	// write only if nothing changed since, then delete exactly the versions
	// that were read. See ObjectVersion.

	// ListVersions returns what is stored under exactly key: every version
	// and delete marker, the current version flagged. A key with nothing
	// stored has none.
	ListVersions(ctx context.Context, bucket, key string) ([]ObjectVersion, error)
	// GetVersion opens one version of key by ID, or returns ErrNotFound
	// when that version is gone.
	GetVersion(ctx context.Context, bucket, key, versionID string) (io.ReadCloser, error)
	// ReplaceIf streams body in as the new current version of key if the
	// current version's ETag is still etag, and returns the version
	// written. When the current version changed or went, it returns
	// ErrConflict and writes nothing. Older versions stay.
	ReplaceIf(ctx context.Context, bucket, key, etag string, body io.Reader) (ObjectVersion, error)
	// DeleteVersions permanently deletes the named versions of key and
	// nothing else; a version already gone is skipped.
	DeleteVersions(ctx context.Context, bucket, key string, versionIDs []string) error
	// RequireBucket fails with a permanent error unless bucket exists.
	RequireBucket(ctx context.Context, bucket string) error
}

// Row is one warehouse row, column name to value.
type Row map[string]any

// Warehouse holds the relational artefacts (warehouse records, ETRs, email
// rows, QA evaluations, sentiment, social messages).
type Warehouse interface {
	// EnsureTable creates table with the given text columns if missing.
	EnsureTable(ctx context.Context, table string, columns []string) error
	Insert(ctx context.Context, table string, rows ...Row) error
	// Count counts rows whose column equals one of values. Values are a
	// batch; none is an error.
	Count(ctx context.Context, table, column string, values ...string) (int64, error)
	// Delete removes rows whose column equals one of values, in one
	// statement per table and batch (one transaction in SQLite, one
	// mutation in ClickHouse, waited for), and returns how many there were.
	Delete(ctx context.Context, table, column string, values ...string) (int64, error)
	// DeleteOrphans removes parent rows whose key no child row references any
	// more, among the given keys only; used for shared records such as email
	// threads once their last contact is gone.
	DeleteOrphans(ctx context.Context, parent, child, key string, keys []string) (int64, error)
	// Distinct returns the distinct values of column among rows whose
	// matchColumn equals one of values (for example the threads a batch of
	// contacts is in).
	Distinct(ctx context.Context, table, column, matchColumn string, values ...string) ([]string, error)
	// RequireColumns fails with a permanent error unless table exists and
	// has every one of columns.
	RequireColumns(ctx context.Context, table string, columns ...string) error
}

// MaxBatch is how many contacts the pipeline hands a store in one batch.
// Adapters split a longer list into calls their store accepts.
const MaxBatch = 10000

// CheckMatchValue refuses an empty match value: it could only match rows whose
// column is empty, never one contact's, so it is a caller bug. (Unlike the
// index, any bytes are fine: SQLite compares text byte for byte.)
func CheckMatchValue(value string) error {
	if value == "" {
		return Permanent(errors.New("warehouse: empty match value"))
	}
	return nil
}

// CheckMatchValues refuses an empty batch (a caller bug: it matches
// nothing, and a builder that dropped the condition would match everything)
// and any empty value in it.
func CheckMatchValues(values []string) error {
	if len(values) == 0 {
		return Permanent(errors.New("warehouse: no match values"))
	}
	for _, v := range values {
		if err := CheckMatchValue(v); err != nil {
			return err
		}
	}
	return nil
}
