package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/opensearch"
	"github.com/erasure-project/erasure/stores/sqlite"
)

// contactIndex is the index of contacts the web API and the CLI search.
const contactIndex = "contacts"

// subjectBackfiller brings older documents' subject search fields up to
// date; the OpenSearch index is one.
type subjectBackfiller interface {
	BackfillSubjectFields(ctx context.Context, index string) (int, error)
}

// OpenIndex opens the configured search index alone, for reading: what the
// CLI needs to find a data subject's contacts without the other stores.
// An embedded index that does not exist yet is an error rather than a new,
// empty one that finds nothing.
func OpenIndex(ctx context.Context, cfg Config) (stores.Index, func(), error) {
	switch cfg.Index.Kind {
	case "opensearch":
		oc := cfg.Index.OpenSearch
		oc.PhoneRegion = cfg.PhoneRegion
		ix, err := opensearch.New(ctx, oc)
		if err != nil {
			return nil, nil, err
		}
		return ix, func() { ix.Close() }, nil
	default:
		path := filepath.Join(cfg.DataDir, "index.db")
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("contact index %s: %w (give the data directory with --data)", path, err)
		}
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		return sqlite.NewIndex(db, sqlite.WithPhoneRegion(cfg.PhoneRegion)), func() { db.Close() }, nil
	}
}
