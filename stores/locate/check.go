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

	"github.com/erasure-project/erasure/stores"
)

// Check inspects every artefact of the data map in the store that holds it
// and returns every mismatch at once, each naming the channel, the artefact
// and its store location, never a value. A misspelt index, field, table,
// column or bucket, or a key template that does not match how objects are
// filed, would otherwise count 0, and deletions would "succeed" with the
// data still there. It is meant for start-up, before anything is deleted.
//
// Checked: the index exists and the field can be matched exactly
// (stores.Index.RequireField); the table has the column, and a shared
// table and its parent both have the parent key; the bucket exists; a
// sample of the keys under the fixed start of a key template includes one
// the template matches, and the first record of a data-lake file has the
// contact field. The contact date's field is not checked: a date that
// cannot be read only widens the scan to every date.
func (l *Locator) Check(ctx context.Context) error {
	c := &checker{l: l, done: map[string]error{}}
	var errs []error
	ds := l.Map.ContactDate
	if err := c.field(ctx, ds.Index, "_id"); err != nil {
		errs = append(errs, fmt.Errorf("contact_date (index %s): %w", ds.Index, err))
	}
	for _, ch := range l.Map.ChannelsFor() {
		for _, a := range l.Map.Artefacts(ch) {
			for _, err := range c.artefact(ctx, a) {
				errs = append(errs, fmt.Errorf("%s/%s (%s): %w", ch, a.Artefact, a.Where(), err))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("the data map does not match the stores (%d problems):\n%w", len(errs), errors.Join(errs...))
}

// checkSampleKeys is how many keys under a template's fixed start are
// read, at most, looking for one the template matches.
const checkSampleKeys = 100

// checkRecordBytes bounds how much of a data-lake file is read for its
// first record.
const checkRecordBytes = 1 << 20

var errStopSample = errors.New("sample complete")

// checker asks each store about a name once, however many artefacts share
// it (several artefacts live in one bucket), and reports it for each.
type checker struct {
	l    *Locator
	done map[string]error
}

func (c *checker) once(key string, fn func() error) error {
	if err, ok := c.done[key]; ok {
		return err
	}
	err := fn()
	c.done[key] = err
	return err
}

func (c *checker) field(ctx context.Context, index, field string) error {
	return c.once("index\x00"+index+"\x00"+field, func() error { return c.l.Index.RequireField(ctx, index, field) })
}

func (c *checker) columns(ctx context.Context, table string, columns ...string) error {
	return c.once("table\x00"+table+"\x00"+strings.Join(columns, "\x00"), func() error {
		return c.l.Warehouse.RequireColumns(ctx, table, columns...)
	})
}

func (c *checker) bucket(ctx context.Context, bucket string) error {
	return c.once("bucket\x00"+bucket, func() error { return c.l.Objects.RequireBucket(ctx, bucket) })
}

func (c *checker) artefact(ctx context.Context, a Artefact) []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch a.Kind {
	case KindIndex:
		if a.ByID {
			add(c.field(ctx, a.Index, "_id"))
		} else {
			add(c.field(ctx, a.Index, a.Field))
		}
	case KindTable:
		add(c.columns(ctx, a.Table, a.Column))
	case KindSharedTable:
		add(c.columns(ctx, a.Table, a.Column, a.ParentKey))
		add(c.columns(ctx, a.ParentTable, a.ParentKey))
	case KindObjects, KindDatalake:
		if err := c.bucket(ctx, a.Bucket); err != nil {
			return []error{err}
		}
		add(c.layout(ctx, a))
	default:
		add(stores.Permanent(fmt.Errorf("unknown kind %q", a.Kind)))
	}
	return errs
}

// layout lists up to checkSampleKeys keys under the template's fixed start
// and fails when there are some and the template matches none of them:
// objects filed where the template points but not as it says can never be
// found, so never erased. An empty prefix says nothing either way.
func (c *checker) layout(ctx context.Context, a Artefact) error {
	objects := a.Kind == KindObjects
	prefix := a.tmpl.fixedPrefix()
	re := a.tmpl.layout(objects)
	sampled, match := 0, ""
	err := c.l.Objects.List(ctx, a.Bucket, prefix, func(key string) error {
		sampled++
		if m := re.FindStringSubmatch(key); m != nil && (!objects || c.l.Rule.Check(m[1]) == nil) {
			match = key
			return errStopSample
		}
		if sampled >= checkSampleKeys {
			return errStopSample
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopSample) {
		return err
	}
	if sampled > 0 && match == "" {
		what := "key template"
		if !objects {
			what = "data lake prefix"
		}
		return stores.Permanent(fmt.Errorf("none of the first %d keys under %q matches the %s", sampled, prefix, what))
	}
	if !objects && match != "" {
		return c.recordField(ctx, a, match, prefix)
	}
	return nil
}

// recordField reads the first record of one data-lake file and fails when
// it lacks the contact field as text: no record would ever match it.
func (c *checker) recordField(ctx context.Context, a Artefact, key, prefix string) error {
	rc, err := c.l.Objects.Get(ctx, a.Bucket, key)
	if errors.Is(err, stores.ErrNotFound) {
		return nil // only old versions left: nothing to read
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	lr := &io.LimitedReader{R: rc, N: checkRecordBytes}
	br := bufio.NewReader(lr)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if err == io.EOF && lr.N == 0 {
				return nil // longer than the bound: not checked
			}
			var rec map[string]json.RawMessage
			if json.Unmarshal(line, &rec) != nil || !bytes.HasPrefix(bytes.TrimSpace(rec[a.Field]), []byte(`"`)) {
				return stores.Permanent(fmt.Errorf("the first record of a data-lake file under %q has no text field %q", prefix, a.Field))
			}
			return nil
		}
		if err == io.EOF {
			return nil // an empty file
		}
		if err != nil {
			return fmt.Errorf("read a data-lake file under %q: %w", prefix, err)
		}
	}
}

// fixedPrefix is the literal start of the template, before its first
// placeholder: every key the template can match starts with it.
func (t *keyTemplate) fixedPrefix() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.ph != "" {
			break
		}
		b.WriteString(p.lit)
	}
	return b.String()
}

// layout matches any key the template describes, for any date and (objects)
// any contact ID, which is captured.
func (t *keyTemplate) layout(objects bool) *regexp.Regexp {
	return regexp.MustCompile(t.pattern(`([A-Za-z0-9-]+)`, objects)) // the bytes of schemas.IsContactIDByte
}
