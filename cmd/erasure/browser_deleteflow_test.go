package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// progressSample is what the 'Deleting Contact' modal showed at one moment.
type progressSample struct {
	T       float64           `json:"t"` // ms, page clock
	Open    bool              `json:"open"`
	Outcome string            `json:"outcome"`
	Bar     float64           `json:"bar"` // percent
	Rows    map[string]string `json:"rows"`
	Elapsed string            `json:"elapsed"`
}

// recordProgress samples the modal every 20 ms from now on.
const recordProgress = `(() => {
	window.__rec = [];
	clearInterval(window.__recTimer);
	window.__recTimer = setInterval(() => {
		const m = document.querySelector('[data-testid="deleting-modal"]');
		if (!m) { window.__rec.push({ t: performance.now(), open: false }); return; }
		const bar = m.querySelector('[data-testid="deleting-progress-bar"]');
		const rows = {};
		m.querySelectorAll('tr[data-channel]').forEach((r) => { rows[r.dataset.channel] = r.dataset.status; });
		window.__rec.push({ t: performance.now(), open: true, outcome: m.dataset.outcome || '', bar: parseFloat(bar.firstChild.style.width) || 0,
			rows, elapsed: m.querySelector('[data-testid="deleting-elapsed"]').textContent });
	}, 20);
	return true;
})()`

// focusedTestID is the data-testid of the focused element, or its tag.
func focusedTestID(t *testing.T, ctx context.Context) string {
	t.Helper()
	return js[string](t, ctx, `document.activeElement.dataset.testid || document.activeElement.id || document.activeElement.tagName`)
}

// tabTo presses Tab until the element with testid has focus.
func tabTo(t *testing.T, ctx context.Context, testid string, most int) {
	t.Helper()
	for range most {
		if focusedTestID(t, ctx) == testid {
			return
		}
		within(t, ctx, 5*time.Second, chromedp.KeyEvent("\t"))
	}
	t.Fatalf("%d presses of Tab did not reach %s (focus on %s)", most, testid, focusedTestID(t, ctx))
}

var tookRE = regexp.MustCompile(`^Finished in \d+\.\d s$`)

// The delete flow with the keyboard alone, at both widths, on stores fast
// enough to finish in a fraction of a second: the 'Deleting Contact' modal
// stays long enough to read, ticks channel by channel, shows a full bar
// only with the outcome and the time the deletion took. The person who
// deleted then verifies it in the Audit Log, which shows their own
// requests only, and downloads its receipt.
func TestBrowserDeleteByKeyboardPacedAndAudited(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 6, nil)
	base := p.app.URL()
	other := seedAudit(t, p, []seededEntry{{actor: "someone.else", at: time.Now().Add(-time.Hour).UTC()}})[0]
	for i, w := range layoutWidths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			ctx := tab()
			within(t, ctx, 10*time.Second, viewport(w))
			signIn(t, ctx, base, "dpo")
			target := p.demo[i].ID
			openRecord(t, ctx, target)

			// From the top of the page, with Tab and Enter only.
			js[bool](t, ctx, `(() => { document.getElementById('main').focus(); return true; })()`)
			tabTo(t, ctx, "delete-contact-button", 20)
			js[bool](t, ctx, recordProgress)
			within(t, ctx, 10*time.Second, chromedp.KeyEvent("\r"), chromedp.WaitVisible(tid("confirm-delete-modal")))
			if f := focusedTestID(t, ctx); f != "confirm-cancel-button" {
				t.Errorf("the confirmation opened with focus on %s, want Cancel", f)
			}
			// The confirmation reads what is stored now before it offers to delete.
			waitFor(t, ctx, 20*time.Second, `(() => { const b = document.querySelector('[data-testid="confirm-delete-button"]'); return !!b && !b.disabled; })()`)
			tabTo(t, ctx, "confirm-delete-button", 6)
			within(t, ctx, 10*time.Second, chromedp.KeyEvent("\r"), chromedp.WaitVisible(tid("deleting-modal")))
			if f := focusedTestID(t, ctx); f != "deleting-close-button" {
				t.Errorf("the progress modal opened with focus on %s, want Close", f)
			}
			within(t, ctx, 60*time.Second, chromedp.WaitVisible(tid("toast-success")), chromedp.WaitNotPresent(tid("deleting-modal")))
			time.Sleep(100 * time.Millisecond)
			var rec []progressSample
			if err := json.Unmarshal([]byte(js[string](t, ctx, `(() => { clearInterval(window.__recTimer); return JSON.stringify(window.__rec); })()`)), &rec); err != nil {
				t.Fatal(err)
			}
			checkPacing(t, rec)
			if f := js[bool](t, ctx, `document.activeElement === document.body || !document.activeElement`); f {
				t.Error("after the deletion focus fell to the page body")
			}

			// The deleting user verifies the deletion in the Audit Log.
			st, err := p.app.Stores.Ledger.ByContact(t.Context(), target, 1)
			if err != nil || len(st) != 1 {
				t.Fatalf("ledger: %v", err)
			}
			rid := st[0].Request.RequestID
			within(t, ctx, 20*time.Second, jsClick("nav-audit"),
				chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-testid="audit-row"][data-request-id=%q]`, rid))))
			rows := rowsOf(t, ctx)
			if slices.Contains(rows, other.id) || len(rows) != i+1 {
				t.Errorf("dpo sees %q: want its %d own entries and not %s's", rows, i+1, other.actor)
			}
			if got := textOf(t, ctx, "audit-scope"); !strings.Contains(got, "you requested") {
				t.Errorf("scope %q", got)
			}
			checkReceiptDownload(t, ctx, p, target)
			shot(t, ctx, fmt.Sprintf("audit-log-dpo-%d", w))
		})
	}
}

// checkPacing reads the samples of one fast deletion.
func checkPacing(t *testing.T, rec []progressSample) {
	t.Helper()
	var opened, decided, closed float64 = -1, -1, -1
	finished := map[string]float64{}
	var elapsed []string
	last := ""
	for _, s := range rec {
		if !s.Open {
			if opened >= 0 && closed < 0 {
				closed = s.T
			}
			continue
		}
		if opened < 0 {
			opened = s.T
		}
		if s.Outcome != "" && decided < 0 {
			decided = s.T
		}
		if s.Outcome == "" && s.Bar >= 100 {
			t.Errorf("at %.0f ms the bar was full before the outcome", s.T-opened)
		}
		for ch, st := range s.Rows {
			if _, ok := finished[ch]; !ok && st != "pending" {
				finished[ch] = s.T
			}
		}
		if s.Outcome == "" && !slices.Contains(elapsed, s.Elapsed) {
			elapsed = append(elapsed, s.Elapsed)
		}
		last = s.Elapsed
	}
	if opened < 0 || decided < 0 || closed < 0 {
		t.Fatalf("modal opened %v, decided %v, closed %v: not seen", opened >= 0, decided >= 0, closed >= 0)
	}
	if d := decided - opened; d < 1400 {
		t.Errorf("the outcome showed %.0f ms after the modal opened, want at least 1.5 s", d)
	}
	if d := closed - decided; d < 1300 {
		t.Errorf("the modal closed %.0f ms after showing the outcome, want about 1.5 s", d)
	}
	var times []float64
	for _, at := range finished {
		times = append(times, at)
	}
	slices.Sort(times)
	if len(times) < 6 {
		t.Errorf("%d channels ticked, want every channel: %v", len(times), finished)
	}
	for i := 1; i < len(times); i++ {
		// 300 ms apart, sampled every 20 ms by a page that is busy too.
		if gap := times[i] - times[i-1]; gap < 200 {
			t.Errorf("channels %d and %d finished %.0f ms apart on screen: too fast to read (%v)", i, i+1, gap, finished)
		}
	}
	if len(times) > 0 && times[len(times)-1] > decided {
		t.Error("a channel ticked after the outcome was shown")
	}
	if len(elapsed) < 3 {
		t.Errorf("the timer showed only %q while the deletion ran", elapsed)
	}
	if !tookRE.MatchString(last) || last == "Finished in 0.0 s" {
		t.Errorf("final time %q, want how long the deletion took", last)
	}
}
