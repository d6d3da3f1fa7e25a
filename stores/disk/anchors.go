package disk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"

	"github.com/erasure-project/erasure/stores"
)

// Anchors keeps audit anchors as JSON lines in one append-only file
// (audit-anchors.jsonl in the data directory). The process only ever
// appends to it; copy it off the machine, or use the S3 anchors, for a
// copy the ledger's owner cannot rewrite.
type Anchors struct {
	path string
	mu   sync.Mutex
}

var _ stores.Anchors = (*Anchors)(nil)

// NewAnchors returns the anchors kept in the file at path, created on the
// first Append.
func NewAnchors(path string) *Anchors { return &Anchors{path: path} }

// Append writes a as one line and syncs it before returning, so an anchor
// reported stored survives a crash.
func (a *Anchors) Append(ctx context.Context, an stores.Anchor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	line, err := json.Marshal(an)
	if err != nil {
		return stores.Permanent(fmt.Errorf("anchors: encode: %w", err))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("anchors: open: %w", pathless(err))
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("anchors: append: %w", pathless(err))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("anchors: sync: %w", pathless(err))
	}
	return f.Close()
}

// List reads every anchor, lowest seq first; no file means none. A line
// that does not parse is an error naming its line number: anchors are
// evidence, and a damaged one is not skipped.
func (a *Anchors) List(ctx context.Context) ([]stores.Anchor, error) {
	raw, err := os.ReadFile(a.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("anchors: read: %w", pathless(err))
	}
	var out []stores.Anchor
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var an stores.Anchor
		if err := json.Unmarshal(sc.Bytes(), &an); err != nil {
			return nil, stores.Permanent(fmt.Errorf("anchors: line %d does not parse", n))
		}
		out = append(out, an)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("anchors: read: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// pathless drops the file name from a path error, as the object store's
// errors do.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
