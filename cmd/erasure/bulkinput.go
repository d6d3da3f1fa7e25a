package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/erasure-project/erasure/schemas"
)

// bulkInputOptions say where a deletion list comes from and how each part
// of it is checked.
type bulkInputOptions struct {
	// Args are the command's arguments: contact IDs, or "-" for stdin.
	Args  []string
	File  string
	Stdin io.Reader
	// Column, when set, makes the file and stdin CSV with a header row,
	// the contact IDs in the column of that name. Otherwise they hold one
	// ID a line; blank lines and lines starting with # are skipped.
	Column string
	// Check validates up to schemas.MaxContactsPerRequest IDs as one
	// submission; a *schemas.SubmissionError's Position names the bad one.
	Check func(ids []string) error
}

// bulkInput is a deletion list after its first pass: every ID checked, each
// kept once, in input order, in a spool that the second pass reads.
type bulkInput struct {
	Read       int // IDs read, repeats included
	Unique     int
	Duplicates int
	// BlankCells counts CSV rows whose ID column is empty; they name no
	// contact, so they are skipped as blank lines are.
	BlankCells int
	// Streamed is true when the list came from a file or stdin rather
	// than from arguments only.
	Streamed bool

	spool *idSpool
}

// Close removes the spool.
func (in *bulkInput) Close() error { return in.spool.Close() }

// readBulkInput is the first pass over a deletion list. It checks every ID
// before anything is published, so a bad line stops the run with nothing
// deleted, and drops repeats. Memory stays bounded by the number of unique
// IDs times 16 bytes: repeats are found by a prefix of each ID's SHA-256,
// and the IDs themselves go to the spool.
func readBulkInput(ctx context.Context, opts bulkInputOptions) (_ *bulkInput, err error) {
	in := &bulkInput{}
	for _, a := range opts.Args {
		if a == "-" {
			in.Streamed = true
		}
	}
	in.Streamed = in.Streamed || opts.File != ""
	if in.spool, err = newIDSpool(in.Streamed); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			in.spool.Close()
		}
	}()
	ck := &idChecker{ctx: ctx, check: opts.Check, seen: idSet{}, in: in}

	ck.at = func(n int) string { return fmt.Sprintf("argument %d", n) }
	argN := 0
	for _, a := range opts.Args {
		if a == "-" {
			continue
		}
		argN++
		if err := ck.add(a, argN); err != nil {
			return nil, err
		}
	}
	if err := ck.flush(); err != nil {
		return nil, err
	}
	if slices.Contains(opts.Args, "-") {
		if err := ck.stream("stdin", opts.Stdin, opts.Column); err != nil {
			return nil, err
		}
	}
	if opts.File != "" {
		f, err := os.Open(opts.File)
		if err != nil {
			return nil, err
		}
		err = ck.stream(opts.File, f, opts.Column)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if in.Unique == 0 {
		return nil, schemas.ErrNoContacts
	}
	if err := in.spool.finish(); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return in, nil
}

// idSet holds 16-byte prefixes of the SHA-256 of IDs: a sixth of the
// memory of the strings, and a collision, which would drop an ID as a
// repeat, is as likely as a random 128-bit match.
type idSet map[[16]byte]struct{}

// add reports whether id is new.
func (s idSet) add(id string) bool {
	sum := sha256.Sum256([]byte(id))
	k := [16]byte(sum[:16])
	if _, ok := s[k]; ok {
		return false
	}
	s[k] = struct{}{}
	return true
}

// idChecker validates IDs a request's worth at a time, each chunk from
// one source so an error can name its line, then drops repeats and spools
// the rest.
type idChecker struct {
	ctx   context.Context
	check func([]string) error
	seen  idSet
	in    *bulkInput
	ids   []string
	lines []int
	at    func(line int) string // where a line is, as errors say it
	hint  string                // added to an invalid-ID error
}

func (c *idChecker) add(id string, line int) error {
	c.ids = append(c.ids, id)
	c.lines = append(c.lines, line)
	if len(c.ids) == schemas.MaxContactsPerRequest {
		return c.flush()
	}
	return nil
}

func (c *idChecker) flush() error {
	if len(c.ids) == 0 {
		return nil
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if err := c.check(c.ids); err != nil {
		var se *schemas.SubmissionError
		if errors.As(err, &se) && se.Position > 0 && se.Position <= len(c.lines) {
			// The value is not repeated: it could be anything someone typed.
			return fmt.Errorf("%s: %w%s; nothing was submitted", c.at(c.lines[se.Position-1]), schemas.ErrInvalidContactID,
				c.hintFor(c.ids[se.Position-1]))
		}
		return fmt.Errorf("%w; nothing was submitted", err)
	}
	for _, id := range c.ids {
		c.in.Read++
		if !c.seen.add(id) {
			c.in.Duplicates++
			continue
		}
		c.in.Unique++
		if err := c.in.spool.add(id); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	c.ids, c.lines = c.ids[:0], c.lines[:0]
	return nil
}

func (c *idChecker) hintFor(id string) string {
	if c.hint != "" && strings.ContainsAny(id, ",;\t") {
		return c.hint
	}
	return ""
}

// stream reads one file or stdin, as lines or as CSV.
func (c *idChecker) stream(name string, r io.Reader, column string) error {
	c.at = func(n int) string { return fmt.Sprintf("%s line %d", name, n) }
	var err error
	if column != "" {
		c.hint = ""
		err = c.csv(name, r, column)
	} else {
		c.hint = " (a CSV file? name its contact ID column with --column)"
		err = c.lineList(name, r)
	}
	if err != nil {
		return err
	}
	return c.flush()
}

// lineList reads one ID a line; blank lines and # comments are skipped
// but counted, so line numbers match what an editor shows.
func (c *idChecker) lineList(name string, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := c.add(line, n); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s line %d: longer than 1 MiB; nothing was submitted", name, n+1)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// csv reads a CSV file with a header row and takes the IDs from one
// column. Rows with that cell empty are skipped and counted.
func (c *idChecker) csv(name string, r io.Reader, column string) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // exports are often ragged; only our column matters
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: header: %w; nothing was submitted", name, err)
	}
	col := -1
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF") // spreadsheet exports start with a byte order mark
		}
		if strings.TrimSpace(h) == column {
			col = i
			break
		}
	}
	if col < 0 {
		return fmt.Errorf("%s: no column %q in the header row (it has %s); nothing was submitted", name, column, quoteList(header, 20))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// csv.ParseError names the line and column, never the field.
			return fmt.Errorf("%s: %w; nothing was submitted", name, err)
		}
		line, _ := cr.FieldPos(0)
		if col >= len(rec) {
			return fmt.Errorf("%s line %d: no %q field (the row has %d); nothing was submitted", name, line, column, len(rec))
		}
		line, _ = cr.FieldPos(col)
		id := strings.TrimSpace(rec[col])
		if id == "" {
			c.in.BlankCells++
			continue
		}
		if err := c.add(id, line); err != nil {
			return err
		}
	}
}

// quoteList quotes at most max header names, for an error message.
func quoteList(names []string, max int) string {
	var q []string
	for i, n := range names {
		if i == max {
			q = append(q, fmt.Sprintf("and %d more", len(names)-max))
			break
		}
		if i == 0 {
			n = strings.TrimPrefix(n, "\uFEFF")
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	if len(q) == 0 {
		return "no names"
	}
	return strings.Join(q, ", ")
}

// idSpool keeps the checked, unique IDs for the second pass: in memory
// when they came from arguments only, otherwise in a temporary file. The
// second pass reads the spool rather than the input again, so what is
// published is exactly what was checked even if the file changes in
// between, and stdin is handled as a file is.
type idSpool struct {
	f    *os.File
	name string // set while the file still has a name to remove
	w    *bufio.Writer
	mem  []string
}

func newIDSpool(onDisk bool) (*idSpool, error) {
	if !onDisk {
		return &idSpool{}, nil
	}
	f, err := os.CreateTemp("", "erasure-delete-*.ids")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &idSpool{f: f, name: f.Name(), w: bufio.NewWriterSize(f, 256<<10)}
	// Unlinked while open where the system allows it, so not even a
	// killed run leaves the list behind.
	if os.Remove(f.Name()) == nil {
		s.name = ""
	}
	return s, nil
}

func (s *idSpool) add(id string) error {
	if s.f == nil {
		s.mem = append(s.mem, id)
		return nil
	}
	if _, err := s.w.WriteString(id); err != nil {
		return err
	}
	return s.w.WriteByte('\n')
}

func (s *idSpool) finish() error {
	if s.f == nil {
		return nil
	}
	return s.w.Flush()
}

// batches reads the spool from the start in lists of up to n IDs. The
// slice it passes is reused: fn must copy what it keeps.
func (s *idSpool) batches(n int, fn func(ids []string) error) error {
	if s.f == nil {
		for start := 0; start < len(s.mem); start += n {
			if err := fn(s.mem[start:min(start+n, len(s.mem))]); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	sc := bufio.NewScanner(bufio.NewReaderSize(s.f, 256<<10))
	ids := make([]string, 0, n)
	for sc.Scan() {
		ids = append(ids, sc.Text())
		if len(ids) == n {
			if err := fn(ids); err != nil {
				return err
			}
			ids = ids[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if len(ids) > 0 {
		return fn(ids)
	}
	return nil
}

func (s *idSpool) Close() error {
	if s == nil || s.f == nil {
		return nil
	}
	err := s.f.Close()
	if s.name != "" {
		err = errors.Join(err, os.Remove(s.name))
	}
	s.f = nil
	return err
}
