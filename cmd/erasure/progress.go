package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress reports a bulk run's progress on stderr: on a terminal one line
// redrawn in place, with a bar, rate and ETA; otherwise (a log file, a CI
// job) a plain line every interval, so the log stays readable.
type progress struct {
	w        io.Writer
	tty      bool
	quiet    bool
	interval time.Duration // between plain lines
	verb     string        // what counts as done: "done" or "submitted"
	now      func() time.Time

	total, done       int // contacts
	skipped           int // contacts done before this run, left out of the rate
	reqTotal, reqDone int
	start, last       time.Time
	drawn             bool // a terminal line is showing
	changed           bool // since the last plain line
}

// redrawEvery limits terminal redraws: more often is not readable.
const redrawEvery = 200 * time.Millisecond

func newProgress(w io.Writer, quiet bool, interval time.Duration, verb string, contacts, requests int) *progress {
	p := &progress{w: w, tty: isTerminal(w), quiet: quiet, interval: interval, verb: verb, now: time.Now,
		total: contacts, reqTotal: requests}
	p.start = p.now()
	p.last = p.start
	return p
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// add counts finished work and reports it if it is time to.
func (p *progress) add(contacts, requests int) {
	p.done += contacts
	p.reqDone += requests
	p.changed = true
	p.tick()
}

// skip counts work an earlier run finished.
func (p *progress) skip(contacts, requests int) {
	p.skipped += contacts
	p.add(contacts, requests)
}

// tick reports progress if it is time to, even if nothing finished, so
// the rate and ETA on a terminal keep moving.
func (p *progress) tick() {
	if p.quiet {
		return
	}
	now := p.now()
	switch {
	case p.tty && now.Sub(p.last) >= redrawEvery:
		p.draw(now)
	case !p.tty && p.changed && now.Sub(p.last) >= p.interval:
		fmt.Fprintln(p.w, p.line(now))
		p.last, p.changed = now, false
	}
}

func (p *progress) draw(now time.Time) {
	const width = 24
	filled := 0
	if p.total > 0 {
		filled = min(width, width*p.done/p.total)
	}
	fmt.Fprintf(p.w, "\r\x1b[K[%s%s] %s", strings.Repeat("#", filled), strings.Repeat("-", width-filled), p.line(now))
	p.last, p.drawn = now, true
}

// clearFor clears the terminal line before output to stdout when stdout
// is the same terminal.
func (p *progress) clearFor(stdoutIsTTY bool) {
	if stdoutIsTTY {
		p.clear()
	}
}

// clear takes the terminal line away before other output, which redraws
// it on the next tick.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// finish ends the progress output: the terminal line is left showing the
// final figures, and a plain log gets a last line if anything changed.
func (p *progress) finish() {
	if p.quiet {
		return
	}
	now := p.now()
	if p.tty {
		p.draw(now)
		fmt.Fprintln(p.w)
		p.drawn = false
		return
	}
	if p.changed {
		fmt.Fprintln(p.w, p.line(now))
		p.changed = false
	}
}

// line is the figures: contacts done of total, percent, rate, ETA and
// requests.
func (p *progress) line(now time.Time) string {
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	elapsed := now.Sub(p.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done-p.skipped) / elapsed.Seconds()
	}
	eta := "--"
	switch {
	case p.done >= p.total:
		eta = "0s"
	case rate > 0:
		eta = time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%d/%d contacts %s (%.1f%%), %.0f contacts/s, ETA %s, %d/%d requests",
		p.done, p.total, p.verb, pct, rate, eta, p.reqDone, p.reqTotal)
}
