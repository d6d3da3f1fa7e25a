package locate

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/erasure-project/erasure/stores"
)

// fileIndex remembers which contacts each data-lake file version holds, so
// that a version known to hold none of a batch is not read again: without
// it every batch, even one of contacts that exist nowhere, reads the whole
// data lake twice (to delete, then to verify). A version never changes once
// written (a version ID names one content, and its ETag is checked too), so
// what is remembered stays true; a rewrite is a new version, remembered as
// it is written. What is remembered is a superset of the contacts (hashes of
// the IDs each record names), so it can only make a file be read, never
// skipped wrongly.
type fileIndex struct {
	mu   sync.Mutex
	seed maphash.Seed
	m    map[versionKey][]uint64 // sorted hashes of the contact IDs in a version
	n    int
}

type versionKey struct{ bucket, key, id, etag string }

// fileIndexMax bounds what is remembered (8 bytes a record): past it the
// index starts over, which costs reads, never correctness.
const fileIndexMax = 4 << 20

func (x *fileIndex) hash(id string) uint64 {
	x.mu.Lock()
	if x.m == nil {
		x.seed, x.m = maphash.MakeSeed(), map[versionKey][]uint64{}
	}
	seed := x.seed
	x.mu.Unlock()
	return maphash.String(seed, id)
}

// skip reports whether version v of a file is known to hold none of ids.
func (x *fileIndex) skip(bucket, key string, v stores.ObjectVersion, ids idSet) bool {
	if v.ID == "" || v.ETag == "" {
		return false
	}
	x.mu.Lock()
	hs, ok := x.m[versionKey{bucket, key, v.ID, v.ETag}]
	seed := x.seed
	x.mu.Unlock()
	if !ok {
		return false
	}
	for _, id := range ids.list {
		if _, found := slices.BinarySearch(hs, maphash.String(seed, id)); found {
			return false
		}
	}
	return true
}

// remember records the contact hashes of a whole version read or written.
func (x *fileIndex) remember(bucket, key string, v stores.ObjectVersion, hs []uint64) {
	if v.ID == "" || v.ETag == "" {
		return
	}
	slices.Sort(hs)
	hs = slices.Clone(slices.Compact(hs)) // no spare capacity kept for years
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		return // hash was never called: nothing to remember with
	}
	if x.n+len(hs) > fileIndexMax {
		x.m, x.n = map[versionKey][]uint64{}, 0
	}
	k := versionKey{bucket, key, v.ID, v.ETag}
	x.n += len(hs) - len(x.m[k])
	x.m[k] = hs
}

// replace remembers version v of a file written from version old, and
// forgets old: a listing never shows a version that was rewritten again
// (the rewrite deletes it), so what it held would only take room.
func (x *fileIndex) replace(bucket, key string, old, v stores.ObjectVersion, hs []uint64) {
	x.mu.Lock()
	k := versionKey{bucket, key, old.ID, old.ETag}
	x.n -= len(x.m[k])
	delete(x.m, k)
	x.mu.Unlock()
	x.remember(bucket, key, v, hs)
}

// lineOwner returns the contact ID a JSON Lines record names in its
// top-level field. Most records are someone else's, so the common case is
// answered without decoding: a line with no escape and exactly one
// occurrence of the quoted field name can only hold the field there, so the
// value after it is the record's owner or the field is not at the top level
// at all (exact is false: a positive must be confirmed by decoding).
// Everything else (escapes, repeats, spacing) is decoded, as encoding/json
// reads the record, and is exact.
func lineOwner(line, quotedField []byte) (owner string, exact bool) {
	if bytes.IndexByte(line, '\\') < 0 {
		switch bytes.Count(line, quotedField) {
		case 0:
			return "", true
		case 1:
			rest := line[bytes.Index(line, quotedField)+len(quotedField):]
			if len(rest) > 2 && rest[0] == ':' && rest[1] == '"' {
				if j := bytes.IndexByte(rest[2:], '"'); j >= 0 {
					return string(rest[2 : 2+j]), false
				}
			}
		}
	}
	return decodeOwner(line, quotedField), true
}

func decodeOwner(line, quotedField []byte) string {
	var rec map[string]json.RawMessage
	if json.Unmarshal(line, &rec) != nil {
		return ""
	}
	var v string
	if json.Unmarshal(rec[string(quotedField[1:len(quotedField)-1])], &v) != nil {
		return ""
	}
	return v
}

// recordIn reports whether a JSON Lines record's top-level field names a
// contact of the batch (see lineOwner).
func recordIn(line, quotedField []byte, ids idSet) bool {
	owner, exact := lineOwner(line, quotedField)
	if owner == "" || !ids.has(owner) {
		return false
	}
	if exact {
		return true
	}
	// An empty value names no contact, also when it is the decoding's "not
	// a record" answer.
	decoded := decodeOwner(line, quotedField)
	return decoded != "" && ids.has(decoded)
}
