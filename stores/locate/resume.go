package locate

import (
	"context"
	"errors"
	"fmt"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// ResumePurges asks the store of every artefact of the given channels to
// finish purging what earlier deletions left behind. A purge a store runs
// in the background (OpenSearch's expunge merges) lives in the process that
// deleted; after a crash the next process of that channel picks it up
// here, so a stated purge_by does not depend on the deleting process
// surviving. Stores with nothing pending report so at once.
func (l *Locator) ResumePurges(ctx context.Context, channels []schemas.Channel) error {
	var errs []error
	type scope struct {
		store any
		kind  string
		name  string
	}
	seen := map[string]bool{}
	for _, ch := range channels {
		for _, a := range l.Map.Artefacts(ch) {
			var sc scope
			switch a.Kind {
			case KindIndex:
				sc = scope{l.Index, "index", a.Index}
			case KindTable, KindSharedTable:
				sc = scope{l.Warehouse, "table", a.Table}
			case KindObjects, KindDatalake:
				sc = scope{l.Objects, "bucket", a.Bucket}
			}
			p, ok := sc.store.(stores.Purger)
			if !ok || seen[sc.kind+"/"+sc.name] {
				continue
			}
			seen[sc.kind+"/"+sc.name] = true
			if _, err := p.Purge(ctx, sc.name); err != nil {
				errs = append(errs, fmt.Errorf("%s/%s (%s): resume purge: %w", ch, a.Artefact, a.Where(), err))
			}
		}
	}
	return errors.Join(errs...)
}
