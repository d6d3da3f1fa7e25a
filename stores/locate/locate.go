package locate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/internal/combine"
)

// Locator finds, counts and erases a contact's artefacts as the data map
// describes them. Every public method checks the contact ID first.
type Locator struct {
	Map       *DataMap
	Rule      schemas.ContactIDRule
	Index     stores.Index
	Objects   stores.Objects
	Warehouse stores.Warehouse

	// fileLocks serialises rewrites of one data-lake file within a process,
	// so two requests cannot restore each other's contacts.
	fileLocks stores.KeyedMutex
	// files remembers which contacts each data-lake file version holds.
	files fileIndex
	// objectRuns joins concurrent erasures of one artefact type's objects.
	objectRuns combine.Combiner[datedID, schemas.ArtefactCount]
}

// ContactDate returns the contact's date from the contact index; ok is false
// when the contact is not (or no longer) in the index.
func (l *Locator) ContactDate(ctx context.Context, contactID string) (time.Time, bool, error) {
	if err := l.Rule.Check(contactID); err != nil {
		return time.Time{}, false, stores.Permanent(err)
	}
	ds := l.Map.ContactDate
	doc, err := l.Index.Get(ctx, ds.Index, contactID)
	if errors.Is(err, stores.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("contact date: %w", err)
	}
	s, _ := doc.Fields[ds.Field].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// A malformed date is not a reason to skip data: scan every date.
		return time.Time{}, false, nil
	}
	return t.UTC(), true, nil
}

// Count counts what a store still holds of one artefact type of a contact.
// A nil date scans every date.
func (l *Locator) Count(ctx context.Context, a Artefact, contactID string, date *time.Time) (int64, error) {
	if err := l.Rule.Check(contactID); err != nil {
		return 0, stores.Permanent(err)
	}
	return l.count(ctx, a, newIDSet([]string{contactID}), date)
}

// count counts what a store holds of one artefact type of a batch of
// contacts, in one store call or one listing for the whole batch.
func (l *Locator) count(ctx context.Context, a Artefact, ids idSet, date *time.Time) (int64, error) {
	switch a.Kind {
	case KindIndex:
		if a.ByID {
			return l.Index.Count(ctx, a.Index, "_id", ids.list...)
		}
		return l.Index.Count(ctx, a.Index, a.Field, ids.list...)
	case KindTable, KindSharedTable:
		return l.Warehouse.Count(ctx, a.Table, a.Column, ids.list...)
	case KindObjects:
		var dates map[string]time.Time
		if date != nil {
			dates = make(map[string]time.Time, len(ids.list))
			for _, id := range ids.list {
				dates[id] = *date
			}
		}
		var n int64
		err := l.objectKeys(ctx, a, ids, dates, func(string) error { n++; return nil })
		return n, err
	case KindDatalake:
		// The batch's records in each file, and each older version that
		// holds any (see countFile).
		var n atomic.Int64
		err := l.eachDatalakeFile(ctx, a, date, func(key string) error {
			c, err := l.countFile(ctx, a, key, ids)
			n.Add(c)
			return err
		})
		return n.Load(), err
	}
	return 0, stores.Permanent(fmt.Errorf("unknown kind %q", a.Kind))
}

// Erase deletes one artefact type of a batch of contacts and verifies it is
// gone (see erase).
func (l *Locator) Erase(ctx context.Context, a Artefact, contactIDs ...string) (schemas.ArtefactCount, error) {
	for _, id := range contactIDs {
		if err := l.Rule.Check(id); err != nil {
			return schemas.ArtefactCount{Artefact: a.Artefact}, stores.Permanent(err)
		}
	}
	return l.erase(ctx, a, newIDSet(contactIDs), nil)
}

// erase deletes one artefact type of a batch of contacts, then counts again
// everywhere the data map allows (every date, partition and prefix, not
// only where the delete found something) and fails with ErrNotErased if
// anything is left. Erasing what is already gone succeeds with zero
// counts. Making the deleted data physically gone is EraseChannel's purge.
func (l *Locator) erase(ctx context.Context, a Artefact, ids idSet, dates map[string]time.Time) (schemas.ArtefactCount, error) {
	if a.Kind == KindObjects {
		return l.eraseObjects(ctx, a, ids, dates)
	}
	res := schemas.ArtefactCount{Artefact: a.Artefact}
	n, err := l.delete(ctx, a, ids, dates)
	if err != nil {
		return res, fmt.Errorf("%s: delete: %w", a.Artefact, err)
	}
	// Every delete below reports what existed, so what was there before is
	// what was deleted: a separate count first would only cost a query.
	res.Before, res.Deleted = n, n
	after, err := l.count(ctx, a, ids, nil)
	if err != nil {
		return res, fmt.Errorf("%s: verify: %w", a.Artefact, err)
	}
	res.After = after
	return res, notErased(a, after)
}

// notErased is the error of a verification that found n items left.
func notErased(a Artefact, n int64) error {
	if n == 0 {
		return nil
	}
	return stores.Retryable(fmt.Errorf("%s: %w: %d left in %s", a.Artefact, stores.ErrNotErased, n, a.Where()))
}

// datedID is a contact of a batch and, when known, its date.
type datedID struct {
	id    string
	date  time.Time
	dated bool
}

// eraseObjects is erase for objects. Erasures of the same artefact type
// by concurrent requests run together (see combine): each costs two
// listings of every date of its prefix, find and verify, whatever the
// number of contacts, so four requests in one run list a quarter as much.
// Each request is told its own counts: a contact two of them name is
// counted as deleted by the first, and as left by both.
func (l *Locator) eraseObjects(ctx context.Context, a Artefact, ids idSet, dates map[string]time.Time) (schemas.ArtefactCount, error) {
	items := make([]datedID, len(ids.list))
	for i, id := range ids.list {
		d, ok := dates[id]
		items[i] = datedID{id: id, date: d, dated: ok}
	}
	res, err := l.objectRuns.Do(ctx, a.Artefact, items, combine.Limits[datedID]{Items: stores.MaxBatch},
		func(ctx context.Context, batches [][]datedID) ([]schemas.ArtefactCount, error) {
			return l.runObjects(ctx, a, batches)
		})
	res.Artefact = a.Artefact
	if err != nil {
		return res, err
	}
	return res, notErased(a, res.After)
}

// runObjects deletes the objects of every batch's contacts and verifies
// they are gone, as erase does, and returns each batch's counts.
func (l *Locator) runObjects(ctx context.Context, a Artefact, batches [][]datedID) ([]schemas.ArtefactCount, error) {
	var all []string
	dates, dated := map[string]time.Time{}, true
	for _, b := range batches {
		for _, it := range b {
			all = append(all, it.id)
			dates[it.id] = it.date
			dated = dated && it.dated
		}
	}
	if !dated {
		dates = nil // one listing of every date serves them all
	}
	ids := newIDSet(all)
	found, left := map[string]int64{}, map[string]int64{}
	results := func() []schemas.ArtefactCount {
		out := make([]schemas.ArtefactCount, len(batches))
		claimed := map[string]bool{}
		for i, b := range batches {
			for _, it := range b {
				if !claimed[it.id] {
					claimed[it.id] = true
					out[i].Before += found[it.id]
				}
				out[i].After += left[it.id]
			}
			out[i].Deleted = out[i].Before
		}
		return out
	}
	after := a.tmpl.afterIDText()
	tally := func(m map[string]int64) func(string) error {
		return func(key string) error {
			if id, ok := a.tmpl.contactOf(key, after); ok {
				m[id]++
			}
			return nil
		}
	}
	for pass := 0; ; pass++ {
		if err := l.deleteObjects(ctx, a, ids, dates, tally(found)); err != nil {
			return results(), fmt.Errorf("%s: delete: %w", a.Artefact, err)
		}
		clear(left)
		if err := l.objectKeys(ctx, a, ids, nil, tally(left)); err != nil {
			return results(), fmt.Errorf("%s: verify: %w", a.Artefact, err)
		}
		if len(left) == 0 || dates == nil || pass > 0 {
			return results(), nil
		}
		// Filed on a day other than the index's and its neighbours: the
		// delete looks everywhere too.
		dates = nil
	}
}

// datedMax is the most contacts whose objects a delete looks for on their
// own days: each costs an index lookup and three listings of one contact's
// keys, where a batch lists every date of the bucket once.
const datedMax = 16

// contactDates returns the contact index's date of every contact of a
// small batch, or nil when the batch is larger or any date is unknown (or
// cannot be read): the delete then lists every date.
func (l *Locator) contactDates(ctx context.Context, ids []string) map[string]time.Time {
	if len(ids) > datedMax || l.Index == nil || l.Map.ContactDate.Index == "" {
		return nil
	}
	dates := make(map[string]time.Time, len(ids))
	for _, id := range ids {
		d, ok, err := l.ContactDate(ctx, id)
		if err != nil || !ok {
			return nil
		}
		dates[id] = d
	}
	return dates
}

// purge asks the store that held a's items to make them physically gone and
// records when they are, or by when they will be.
func (l *Locator) purge(ctx context.Context, a Artefact, res *schemas.ArtefactCount) error {
	var store any
	scopes := []string{}
	switch a.Kind {
	case KindIndex:
		store, scopes = l.Index, append(scopes, a.Index)
	case KindTable:
		store, scopes = l.Warehouse, append(scopes, a.Table)
	case KindSharedTable:
		store, scopes = l.Warehouse, append(scopes, a.Table, a.ParentTable)
	case KindObjects, KindDatalake:
		store, scopes = l.Objects, append(scopes, a.Bucket)
	}
	p, ok := store.(stores.Purger)
	if !ok {
		return nil // the store cannot tell; nothing is claimed
	}
	for _, scope := range scopes {
		st, err := p.Purge(ctx, scope)
		if err != nil {
			return err
		}
		mergePurge(res, st)
	}
	return nil
}

// mergePurge folds a store's purge state into a count: the data is gone
// when the last of it is, so the latest times win, and a pending purge
// outweighs a finished one.
func mergePurge(res *schemas.ArtefactCount, st stores.PurgeState) {
	if st.Store != "" {
		res.Store = st.Store
	}
	if !st.PurgeBy.IsZero() {
		if res.PurgeBy == nil || st.PurgeBy.After(*res.PurgeBy) {
			t := st.PurgeBy.UTC()
			res.PurgeBy, res.PurgeJob = &t, st.Job
		}
		res.PurgedAt = nil
		return
	}
	if res.PurgeBy == nil && !st.PurgedAt.IsZero() && (res.PurgedAt == nil || st.PurgedAt.After(*res.PurgedAt)) {
		t := st.PurgedAt.UTC()
		res.PurgedAt = &t
	}
}

// delete removes one artefact type other than objects (see deleteObjects)
// of a batch of contacts with batched store calls and returns how many
// items there were. Data-lake files are found by one listing of every
// date: a batch spans most days.
func (l *Locator) delete(ctx context.Context, a Artefact, ids idSet, dates map[string]time.Time) (int64, error) {
	switch a.Kind {
	case KindIndex:
		if a.ByID {
			return l.Index.DeleteIDs(ctx, a.Index, ids.list...)
		}
		return l.Index.DeleteTerm(ctx, a.Index, a.Field, ids.list...)
	case KindTable:
		return l.Warehouse.Delete(ctx, a.Table, a.Column, ids.list...)
	case KindSharedTable:
		keys, err := l.Warehouse.Distinct(ctx, a.Table, a.ParentKey, a.Column, ids.list...)
		if err != nil {
			return 0, err
		}
		n, err := l.Warehouse.Delete(ctx, a.Table, a.Column, ids.list...)
		if err != nil {
			return n, err
		}
		if len(keys) > 0 {
			if _, err := l.Warehouse.DeleteOrphans(ctx, a.ParentTable, a.Table, a.ParentKey, keys); err != nil {
				return n, err
			}
		}
		return n, nil
	case KindDatalake:
		var n atomic.Int64
		err := l.eachDatalakeFile(ctx, a, nil, func(key string) error {
			c, err := l.rewriteFile(ctx, a, key, ids)
			n.Add(c)
			return err
		})
		return n.Load(), err
	}
	return 0, stores.Permanent(fmt.Errorf("unknown kind %q", a.Kind))
}

// versionLister is an object store whose listing reports every version it
// sees (S3). A delete then removes exactly the versions its listing found,
// where Delete(keys) would list each directory of the keys a second time.
type versionLister interface {
	ListEachVersion(ctx context.Context, bucket, prefix string, fn func(key, versionID string) error) error
	DeleteListed(ctx context.Context, bucket string, versions map[string][]string) error
}

// deleteObjects deletes the objects of a batch's contacts and calls
// deleted with each key once it is gone. They are found by one listing of
// every date, or with dates (a small batch, see contactDates) by listing
// each contact's keys on its day and the days either side (objectKeys);
// the verification lists every date either way.
func (l *Locator) deleteObjects(ctx context.Context, a Artefact, ids idSet, dates map[string]time.Time, deleted func(string) error) error {
	if vl, ok := l.Objects.(versionLister); ok {
		return l.deleteListed(ctx, vl, a, ids, dates, deleted)
	}
	var keys []string
	if err := l.objectKeys(ctx, a, ids, dates, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	if err := l.Objects.Delete(ctx, a.Bucket, keys...); err != nil {
		return err
	}
	for _, k := range keys {
		if err := deleted(k); err != nil {
			return err
		}
	}
	return nil
}

// deleteListed is deleteObjects on a versionLister: one listing finds the
// batch's keys (as objectKeys does) and every version of each, and exactly
// those are deleted. A version written after the listing stays and fails
// the verification, so the request is retried.
func (l *Locator) deleteListed(ctx context.Context, vl versionLister, a Artefact, ids idSet, dates map[string]time.Time, deleted func(string) error) error {
	match, err := a.tmpl.keyMatcher(ids)
	if err != nil {
		return err
	}
	versions := map[string][]string{}
	for _, p := range a.tmpl.batchPrefixes(ids, dates) {
		// A key a previous prefix listed whole is not collected twice.
		listed := map[string]bool{}
		err := vl.ListEachVersion(ctx, a.Bucket, p, func(key, id string) error {
			if !match(key) {
				return nil
			}
			if _, before := versions[key]; before && !listed[key] {
				return nil
			}
			listed[key] = true
			versions[key] = append(versions[key], id)
			return nil
		})
		if err != nil {
			return fmt.Errorf("list %s: %w", a.Bucket, err)
		}
	}
	if len(versions) == 0 {
		return nil
	}
	if err := vl.DeleteListed(ctx, a.Bucket, versions); err != nil {
		return err
	}
	for k := range versions {
		if err := deleted(k); err != nil {
			return err
		}
	}
	return nil
}

// objectKeys calls fn for every key of the batch's contacts. With dates
// (every contact's, for display or a small batch) it lists each contact's
// day and the days either side (objects are filed by their own timestamp,
// which may fall on a neighbouring day); without it lists once from the
// prefix before the first date placeholder. Every key is matched against
// the whole template and its contact ID must be one of the batch, so a
// listing prefix can never widen a delete.
func (l *Locator) objectKeys(ctx context.Context, a Artefact, ids idSet, dates map[string]time.Time, fn func(string) error) error {
	match, err := a.tmpl.keyMatcher(ids)
	if err != nil {
		return err
	}
	return l.listMatching(ctx, a.Bucket, a.tmpl.batchPrefixes(ids, dates), match, a.tmpl.dirFilter(ids), fn)
}

// batchPrefixes are the distinct prefixes to list for the batch's keys: each
// contact's days with dates, else the start before the first date.
func (t *keyTemplate) batchPrefixes(ids idSet, dates map[string]time.Time) []string {
	var prefixes []string
	for _, id := range ids.list {
		var date *time.Time
		if d, ok := dates[id]; ok {
			date = &d
		}
		for _, p := range t.prefixes(id, date) {
			if !slices.Contains(prefixes, p) {
				prefixes = append(prefixes, p)
			}
		}
	}
	return prefixes
}

// datalakeFiles calls fn for every data-lake file that may hold a contact
// of date (every file when date is nil).
func (l *Locator) datalakeFiles(ctx context.Context, a Artefact, date *time.Time, fn func(string) error) error {
	re, err := a.tmpl.fileMatcher()
	if err != nil {
		return err
	}
	return l.listMatching(ctx, a.Bucket, a.tmpl.prefixes("", date), re.MatchString, nil, fn)
}

// datalakeWorkers bounds the data-lake files read or rewritten at once: each
// is a round trip or two to object storage, and the files are independent.
const datalakeWorkers = 4

// eachDatalakeFile runs fn on every data-lake file that may hold a contact
// of date, a few files at a time.
func (l *Locator) eachDatalakeFile(ctx context.Context, a Artefact, date *time.Time, fn func(string) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(datalakeWorkers)
	err := l.datalakeFiles(gctx, a, date, func(key string) error {
		g.Go(func() error { return fn(key) })
		return gctx.Err()
	})
	if gerr := g.Wait(); gerr != nil {
		return gerr
	}
	return err
}

// prunedLister is an object store that can leave directories of keys
// unread (the disk store); an object store lists flat keys otherwise.
type prunedLister interface {
	ListPruned(ctx context.Context, bucket, prefix string, enter func(dir string) bool, fn func(key string) error) error
}

// listMatching lists each prefix and calls fn once for every key that
// match accepts. A store that can is spared the directories enter refuses
// (nil: none); match still decides every key.
func (l *Locator) listMatching(ctx context.Context, bucket string, prefixes []string, match func(string) bool, enter func(string) bool, fn func(string) error) error {
	seen := map[string]bool{}
	pl, prune := l.Objects.(prunedLister)
	prune = prune && enter != nil
	for _, p := range prefixes {
		each := func(key string) error {
			if seen[key] || !match(key) {
				return nil
			}
			seen[key] = true
			return fn(key)
		}
		var err error
		if prune {
			err = pl.ListPruned(ctx, bucket, p, enter, each)
		} else {
			err = l.Objects.List(ctx, bucket, p, each)
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", bucket, err)
		}
	}
	return nil
}

// eachLine calls fn with every line of r including its newline, of any length.
func eachLine(r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// idSet is a batch of contact IDs, validated and each once.
type idSet struct {
	list []string
	set  map[string]struct{}
}

func newIDSet(ids []string) idSet {
	s := idSet{set: make(map[string]struct{}, len(ids))}
	for _, id := range ids {
		if _, ok := s.set[id]; !ok {
			s.set[id] = struct{}{}
			s.list = append(s.list, id)
		}
	}
	return s
}

func (s idSet) has(id string) bool { _, ok := s.set[id]; return ok }

// prefixes returns the listing prefixes for a contact: one per candidate day
// when the date is known, else the literal text before the first date
// placeholder.
func (t *keyTemplate) prefixes(contactID string, date *time.Time) []string {
	if !t.hasDate {
		return []string{t.prefix(contactID, time.Time{})}
	}
	if date == nil {
		var b strings.Builder
		for _, p := range t.parts {
			if p.ph != "" {
				break
			}
			b.WriteString(p.lit)
		}
		return []string{b.String()}
	}
	d := date.UTC()
	return []string{
		t.prefix(contactID, d.AddDate(0, 0, -1)),
		t.prefix(contactID, d),
		t.prefix(contactID, d.AddDate(0, 0, 1)),
	}
}

// prefix expands the template up to its end (the part before "*").
func (t *keyTemplate) prefix(contactID string, d time.Time) string {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.ph {
		case "":
			b.WriteString(p.lit)
		case "contact_id":
			b.WriteString(contactID)
		case "yyyy":
			fmt.Fprintf(&b, "%04d", d.Year())
		case "mm":
			fmt.Fprintf(&b, "%02d", int(d.Month()))
		case "dd":
			fmt.Fprintf(&b, "%02d", d.Day())
		}
	}
	return b.String()
}

// fileMatcher compiles a data-lake prefix template into an anchored
// regular expression: any date, then a file name with no further "/"
// (files directly under the prefix).
func (t *keyTemplate) fileMatcher() (*regexp.Regexp, error) {
	return regexp.Compile(t.pattern("", false))
}

// keyMatcher reports whether an object key is one of the batch's: the
// template with the contact ID captured, and the capture one of the batch.
// The byte after {contact_id} is one no contact ID holds (parseKeyTemplate),
// so the shortest capture up to it is the whole ID.
func (t *keyTemplate) keyMatcher(ids idSet) (func(key string) bool, error) {
	after := t.afterIDText()
	return func(key string) bool {
		id, ok := t.contactOf(key, after)
		return ok && ids.has(id)
	}, nil
}

// afterIDText is the literal text between {contact_id} and the "*".
func (t *keyTemplate) afterIDText() string {
	var tail strings.Builder
	for _, p := range t.parts[slices.IndexFunc(t.parts, func(p tmplPart) bool { return p.ph == "contact_id" })+1:] {
		tail.WriteString(p.lit)
	}
	return tail.String()
}

// dirFilter returns the test a listing applies before reading a directory
// (a key prefix ending in "/"): false only when no key under it can be one
// of the batch's. In a layout of one directory per contact, the listing
// then reads the batch's contacts' directories, not every contact's.
func (t *keyTemplate) dirFilter(ids idSet) func(dir string) bool {
	after := t.afterIDText()
	return func(dir string) bool { return t.mayHold(dir, after, ids) }
}

// mayHold reads dir as contactOf reads a key, as far as dir goes: a
// literal or date part that disagrees with it rules every key under it
// out, and at {contact_id} so does every ID dir could hold that is not one
// of the batch or is not followed by text agreeing with after. An ID
// running past the end of dir would hold its "/", which no contact ID
// does (the schemas' contact ID class).
func (t *keyTemplate) mayHold(dir, after string, ids idSet) bool {
	rest := dir
	for _, p := range t.parts {
		if rest == "" {
			return true
		}
		switch p.ph {
		case "":
			n := min(len(rest), len(p.lit))
			if rest[:n] != p.lit[:n] {
				return false
			}
			rest = rest[n:]
		case "yyyy", "mm", "dd":
			n := min(dateWidth(p.ph), len(rest))
			if !allDigits(rest[:n]) {
				return false
			}
			rest = rest[n:]
		case "contact_id":
			for k := 1; k <= len(rest); k++ {
				tail := rest[k:]
				if (strings.HasPrefix(tail, after) || strings.HasPrefix(after, tail)) && ids.has(rest[:k]) {
					return true
				}
			}
			return false
		}
	}
	return true
}

// contactOf returns the contact ID an object key carries if the key fits
// the template. It is the anchored expression pattern(`(.+?)`, true) read
// by hand, because a listing matches every key of a bucket against it: the
// literals exactly, each date part as digits, then the shortest non-empty
// ID before after, the literals that follow it; like "." in the
// expression, no part after the date matches a newline. (The expression
// steps by rune: where the two could differ, the ID is not ASCII, so no
// contact's.)
func (t *keyTemplate) contactOf(key, after string) (string, bool) {
	rest := key
	for _, p := range t.parts {
		switch p.ph {
		case "":
			var ok bool
			if rest, ok = strings.CutPrefix(rest, p.lit); !ok {
				return "", false
			}
		case "yyyy", "mm", "dd":
			n := dateWidth(p.ph)
			if len(rest) < n || !allDigits(rest[:n]) {
				return "", false
			}
			rest = rest[n:]
		case "contact_id":
			// The shortest ID is the first place the literals follow,
			// unless a newline comes first; a newline after them rejects
			// that place.
			for k := 1; k <= len(rest); k++ {
				if rest[k-1] == '\n' {
					return "", false
				}
				if strings.HasPrefix(rest[k:], after) && strings.IndexByte(rest[k+len(after):], '\n') < 0 {
					return rest[:k], true
				}
			}
			return "", false
		}
	}
	return "", false
}

// dateWidth is the number of digits of a date placeholder.
func dateWidth(ph string) int {
	if ph == "yyyy" {
		return 4
	}
	return 2
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// pattern is the template as an anchored regular expression with id where
// {contact_id} stands.
func (t *keyTemplate) pattern(id string, objects bool) string {
	var b strings.Builder
	b.WriteString("^")
	for _, p := range t.parts {
		switch p.ph {
		case "":
			b.WriteString(regexp.QuoteMeta(p.lit))
		case "contact_id":
			b.WriteString(id)
		case "yyyy":
			b.WriteString(`[0-9]{4}`)
		case "mm", "dd":
			b.WriteString(`[0-9]{2}`)
		}
	}
	if objects {
		b.WriteString(`.*$`)
	} else {
		b.WriteString(`[^/]+$`)
	}
	return b.String()
}

// Finished holds what earlier attempts at one batch finished: the verified
// counts of each artefact type done. EraseChannel skips those and adds to
// it as it goes, so a retry resumes where the last attempt stopped and the
// counts add up across attempts.
type Finished = map[string]schemas.ArtefactCount

// artefactWorkers bounds the artefact types of one channel erased at once:
// they live in different tables, buckets and prefixes, and a ClickHouse
// mutation mostly waits.
const artefactWorkers = 4

// EraseChannel erases every artefact of one channel for a batch of
// contacts with batched store calls (up to stores.MaxBatch contacts per
// call), verifies each type is gone everywhere, and returns the counts per
// artefact type in data map order. done, if not nil, carries what earlier
// attempts finished (see Finished).
func (l *Locator) EraseChannel(ctx context.Context, ch schemas.Channel, contactIDs []string, done Finished) ([]schemas.ArtefactCount, error) {
	for _, id := range contactIDs {
		if err := l.Rule.Check(id); err != nil {
			return nil, stores.Permanent(err)
		}
	}
	if done == nil {
		done = Finished{}
	}
	arts := l.Map.Artefacts(ch)
	sums := make([]schemas.ArtefactCount, len(arts))
	var dates map[string]time.Time
	if slices.ContainsFunc(arts, func(a Artefact) bool { _, ok := done[a.Artefact]; return a.Kind == KindObjects && !ok }) {
		dates = l.contactDates(ctx, contactIDs)
	}
	var mu sync.Mutex
	eraseOne := func(i int, a Artefact) error {
		mu.Lock()
		c, ok := done[a.Artefact]
		mu.Unlock()
		if ok {
			sums[i] = c
			return nil
		}
		sums[i].Artefact = a.Artefact
		for chunk := range slices.Chunk(contactIDs, stores.MaxBatch) {
			c, err := l.erase(ctx, a, newIDSet(chunk), dates)
			sums[i].Before += c.Before
			sums[i].Deleted += c.Deleted
			sums[i].After += c.After
			if err != nil {
				return fmt.Errorf("%s: %w", ch, err)
			}
		}
		mu.Lock()
		done[a.Artefact] = sums[i]
		mu.Unlock()
		return nil
	}
	var err error
	if ch == schemas.ChannelContactSearch {
		// In data map order, one type at a time: the contact index entry
		// goes last, so a failure part-way leaves the contact findable.
		for i, a := range arts {
			if err = eraseOne(i, a); err != nil {
				break
			}
		}
	} else {
		var g errgroup.Group
		g.SetLimit(artefactWorkers)
		for i, a := range arts {
			g.Go(func() error { return eraseOne(i, a) })
		}
		err = g.Wait()
	}
	// Purged once per artefact type for the whole batch: a store that
	// rewrites its files to purge (SQLite) does it once. What was deleted is
	// purged even when another type failed, since the retry finds it gone
	// and has nothing to purge.
	for i, a := range arts {
		if sums[i].Deleted == 0 {
			continue
		}
		if perr := l.purge(ctx, a, &sums[i]); perr != nil && err == nil {
			err = fmt.Errorf("%s: %s: purge: %w", ch, a.Artefact, perr)
		}
		if _, ok := done[a.Artefact]; ok {
			done[a.Artefact] = sums[i]
		}
	}
	return sums, err
}

// Remaining is what the stores hold of a contact, per channel and artefact
// type.
type Remaining map[schemas.Channel]map[string]int64

// Total sums every count.
func (r Remaining) Total() int64 {
	var n int64
	for _, arts := range r {
		for _, c := range arts {
			n += c
		}
	}
	return n
}

// Remaining counts what is left of a contact in every mapped store by
// scanning every date: it does not rely on the contact index, which is gone
// after a successful deletion.
func (l *Locator) Remaining(ctx context.Context, contactID string) (Remaining, error) {
	return l.counts(ctx, contactID, nil)
}

// Inventory counts a contact's artefacts per channel for display, using the
// contact's date when the index still has it.
func (l *Locator) Inventory(ctx context.Context, contactID string) (Remaining, error) {
	d, ok, err := l.ContactDate(ctx, contactID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return l.counts(ctx, contactID, nil)
	}
	return l.counts(ctx, contactID, &d)
}

func (l *Locator) counts(ctx context.Context, contactID string, date *time.Time) (Remaining, error) {
	if err := l.Rule.Check(contactID); err != nil {
		return nil, stores.Permanent(err)
	}
	out := Remaining{}
	for _, ch := range l.Map.ChannelsFor() {
		out[ch] = map[string]int64{}
		for _, a := range l.Map.Artefacts(ch) {
			n, err := l.Count(ctx, a, contactID, date)
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %w", ch, a.Artefact, err)
			}
			out[ch][a.Artefact] = n
		}
	}
	return out, nil
}
