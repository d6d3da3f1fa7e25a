package locate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
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
	switch a.Kind {
	case KindIndex:
		if a.ByID {
			return l.Index.Count(ctx, a.Index, "_id", contactID)
		}
		return l.Index.Count(ctx, a.Index, a.Field, contactID)
	case KindTable, KindSharedTable:
		return l.Warehouse.Count(ctx, a.Table, a.Column, contactID)
	case KindObjects:
		var n int64
		err := l.objectKeys(ctx, a, contactID, date, func(string) error { n++; return nil })
		return n, err
	case KindDatalake:
		// The contact's records in each file, and each older version that
		// holds any (see countFile).
		var n int64
		err := l.datalakeFiles(ctx, a, date, func(key string) error {
			c, err := l.countFile(ctx, a, key, contactID)
			n += c
			return err
		})
		return n, err
	}
	return 0, stores.Permanent(fmt.Errorf("unknown kind %q", a.Kind))
}

// Erase deletes one artefact type of a contact, then runs the verification
// query. Erasing what is already gone succeeds with zero counts. Making the
// deleted data physically gone is EraseChannel's purge.
func (l *Locator) Erase(ctx context.Context, a Artefact, contactID string, date *time.Time) (schemas.ArtefactCount, error) {
	res := schemas.ArtefactCount{Artefact: a.Artefact}
	before, err := l.Count(ctx, a, contactID, date)
	if err != nil {
		return res, fmt.Errorf("%s: count before: %w", a.Artefact, err)
	}
	res.Before = before
	// Delete even when nothing is counted: an object with only old versions
	// left by an interrupted run is still listed and removed here.
	deleted, err := l.delete(ctx, a, contactID, date)
	if err != nil {
		return res, fmt.Errorf("%s: delete: %w", a.Artefact, err)
	}
	res.Deleted = deleted
	// The verification does not trust the delete's window: it counts every
	// date, partition and prefix the data map allows.
	after, err := l.Count(ctx, a, contactID, nil)
	if err != nil {
		return res, fmt.Errorf("%s: verify: %w", a.Artefact, err)
	}
	if after > 0 && date != nil {
		// Filed away from the contact's date, so only the full scan saw it;
		// every key still matches this contact exactly, so deleting it
		// cannot widen the delete.
		more, err := l.delete(ctx, a, contactID, nil)
		if err != nil {
			return res, fmt.Errorf("%s: delete outside the contact's date: %w", a.Artefact, err)
		}
		res.Before += more
		res.Deleted += more
		if after, err = l.Count(ctx, a, contactID, nil); err != nil {
			return res, fmt.Errorf("%s: verify: %w", a.Artefact, err)
		}
	}
	res.After = after
	if after > 0 {
		return res, stores.Retryable(fmt.Errorf("%s: %w: %d left in %s", a.Artefact, stores.ErrNotErased, after, a.Where()))
	}
	return res, nil
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

func (l *Locator) delete(ctx context.Context, a Artefact, contactID string, date *time.Time) (int64, error) {
	switch a.Kind {
	case KindIndex:
		if a.ByID {
			return l.Index.DeleteIDs(ctx, a.Index, contactID)
		}
		return l.Index.DeleteTerm(ctx, a.Index, a.Field, contactID)
	case KindTable:
		return l.Warehouse.Delete(ctx, a.Table, a.Column, contactID)
	case KindSharedTable:
		keys, err := l.Warehouse.Distinct(ctx, a.Table, a.ParentKey, a.Column, contactID)
		if err != nil {
			return 0, err
		}
		n, err := l.Warehouse.Delete(ctx, a.Table, a.Column, contactID)
		if err != nil {
			return n, err
		}
		if len(keys) > 0 {
			if _, err := l.Warehouse.DeleteOrphans(ctx, a.ParentTable, a.Table, a.ParentKey, keys); err != nil {
				return n, err
			}
		}
		return n, nil
	case KindObjects:
		var keys []string
		if err := l.objectKeys(ctx, a, contactID, date, func(k string) error { keys = append(keys, k); return nil }); err != nil {
			return 0, err
		}
		for _, k := range keys {
			if err := l.Objects.Delete(ctx, a.Bucket, k); err != nil {
				return 0, err
			}
		}
		return int64(len(keys)), nil
	case KindDatalake:
		var n int64
		err := l.datalakeFiles(ctx, a, date, func(key string) error {
			c, err := l.rewriteFile(ctx, a, key, contactID)
			n += c
			return err
		})
		return n, err
	}
	return 0, stores.Permanent(fmt.Errorf("unknown kind %q", a.Kind))
}

// objectKeys calls fn for every key of a contact. With a known date it lists
// that day and the days either side (objects are filed by their own
// timestamp, which may fall on a neighbouring day); without one it scans
// from the prefix before the first date placeholder. Every key is matched
// against the whole template, so a listing prefix can never widen a delete.
func (l *Locator) objectKeys(ctx context.Context, a Artefact, contactID string, date *time.Time, fn func(string) error) error {
	re, err := a.tmpl.matcher(contactID, true)
	if err != nil {
		return err
	}
	return l.listMatching(ctx, a.Bucket, a.tmpl.prefixes(contactID, date), re, fn)
}

// datalakeFiles calls fn for every data-lake file that may hold the contact.
func (l *Locator) datalakeFiles(ctx context.Context, a Artefact, date *time.Time, fn func(string) error) error {
	re, err := a.tmpl.matcher("", false)
	if err != nil {
		return err
	}
	return l.listMatching(ctx, a.Bucket, a.tmpl.prefixes("", date), re, fn)
}

// listMatching lists each prefix and calls fn once for every key that
// matches re.
func (l *Locator) listMatching(ctx context.Context, bucket string, prefixes []string, re *regexp.Regexp, fn func(string) error) error {
	seen := map[string]bool{}
	for _, p := range prefixes {
		err := l.Objects.List(ctx, bucket, p, func(key string) error {
			if seen[key] || !re.MatchString(key) {
				return nil
			}
			seen[key] = true
			return fn(key)
		})
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

// recordIs reports whether a JSON Lines record's field equals contactID.
func recordIs(line []byte, field, contactID string) bool {
	if !bytes.Contains(line, []byte(contactID)) {
		return false // cheap pre-filter: most records are someone else's
	}
	var rec map[string]json.RawMessage
	if json.Unmarshal(line, &rec) != nil {
		return false
	}
	var v string
	if json.Unmarshal(rec[field], &v) != nil {
		return false
	}
	return v == contactID
}

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

// matcher compiles the template into an anchored regular expression: any
// date, this exact contact ID, then anything (objects) or a file name with no
// further "/" (data-lake files directly under the prefix).
func (t *keyTemplate) matcher(contactID string, objects bool) (*regexp.Regexp, error) {
	if contactID == "" && t.hasContactID() {
		return nil, stores.Permanent(errors.New("empty contact ID"))
	}
	return regexp.Compile(t.pattern(regexp.QuoteMeta(contactID), objects))
}

func (t *keyTemplate) hasContactID() bool {
	for _, p := range t.parts {
		if p.ph == "contact_id" {
			return true
		}
	}
	return false
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

// EraseChannel erases every artefact of one channel for each contact and
// returns the counts summed per artefact type, in data map order.
func (l *Locator) EraseChannel(ctx context.Context, ch schemas.Channel, contactIDs []string) ([]schemas.ArtefactCount, error) {
	arts := l.Map.Artefacts(ch)
	sums := make([]schemas.ArtefactCount, len(arts))
	for i, a := range arts {
		sums[i].Artefact = a.Artefact
	}
	err := l.eraseEach(ctx, ch, arts, contactIDs, sums)
	// Purged once per artefact type for the whole request, after every
	// contact: a store that rewrites its files to purge (SQLite) does it
	// once. What was deleted is purged even when a later contact failed,
	// since the retry finds it gone and has nothing to purge.
	for i, a := range arts {
		if sums[i].Deleted == 0 {
			continue
		}
		if perr := l.purge(ctx, a, &sums[i]); perr != nil && err == nil {
			err = fmt.Errorf("%s: %s: purge: %w", ch, a.Artefact, perr)
		}
	}
	return sums, err
}

// eraseEach erases and verifies each artefact of each contact, adding the
// counts to sums.
func (l *Locator) eraseEach(ctx context.Context, ch schemas.Channel, arts []Artefact, contactIDs []string, sums []schemas.ArtefactCount) error {
	for _, id := range contactIDs {
		if err := l.Rule.Check(id); err != nil {
			return stores.Permanent(err)
		}
		var date *time.Time
		if ch != schemas.ChannelContactSearch {
			d, ok, err := l.ContactDate(ctx, id)
			if err != nil {
				return err
			}
			if ok {
				date = &d
			}
		}
		for i, a := range arts {
			c, err := l.Erase(ctx, a, id, date)
			sums[i].Before += c.Before
			sums[i].Deleted += c.Deleted
			sums[i].After += c.After
			if err != nil {
				return fmt.Errorf("%s: %w", ch, err)
			}
		}
	}
	return nil
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
