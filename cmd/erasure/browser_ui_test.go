package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The widths the console is checked at: a common laptop, and a narrow
// window (a browser beside another application, a small tablet).
var layoutWidths = []int64{1280, 800}

func viewport(width int64) chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(width, 900)
}

// js evaluates expr (awaiting a promise) in the page and returns its value.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		shot(t, ctx, "failure-"+strings.ReplaceAll(t.Name(), "/", "-"))
		t.Fatalf("evaluate %.80q: %v", expr, err)
	}
	return v
}

// waitFor polls a boolean expression until it holds.
func waitFor(t *testing.T, ctx context.Context, d time.Duration, expr string) {
	t.Helper()
	within(t, ctx, d, poll(expr))
}

// waitText waits until the element's text is want: pages re-render after
// every navigation, so a text read at once could be the previous page's.
func waitText(t *testing.T, ctx context.Context, testid, want string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	expr := fmt.Sprintf(`((document.querySelector('[data-testid=%q]') || {}).textContent || '') === %q`, testid, want)
	if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Errorf("%s: %q, want %q", testid, textOf(t, ctx, testid), want)
	}
}

func textOf(t *testing.T, ctx context.Context, testid string) string {
	t.Helper()
	return js[string](t, ctx, fmt.Sprintf(`(document.querySelector('[data-testid=%q]') || {}).textContent || ''`, testid))
}

// tableFits reports, for the table under the element with testid, the
// header cells that do not fit: cut off by the scroll box or past the
// window's right edge. None means every column is on screen.
func tableFits(t *testing.T, ctx context.Context, testid string) []string {
	t.Helper()
	return js[[]string](t, ctx, fmt.Sprintf(`(() => {
		const table = document.querySelector('[data-testid=%q]');
		const wrap = table.closest('.table-wrap');
		const out = [];
		if (wrap.scrollWidth > wrap.clientWidth + 1) out.push('scrolls: ' + wrap.scrollWidth + ' > ' + wrap.clientWidth);
		for (const th of table.querySelectorAll(':scope > thead th')) {
			const r = th.getBoundingClientRect();
			if (r.width === 0) continue; // folded into another column at this width
			if (r.right > innerWidth + 1) out.push(th.textContent + ' ends at ' + Math.round(r.right));
		}
		return out;
	})()`, testid))
}

// demoField reads a field of a demo contact from the index.
func demoField(t *testing.T, p *pipeline, id, field string) string {
	t.Helper()
	d, err := p.app.Stores.Index.Get(t.Context(), "contacts", id)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := d.Fields[field].(string)
	return s
}

// countDemo counts the demo contacts whose field starts with prefix in any
// case, as a person expects the filter to work.
func countDemo(t *testing.T, p *pipeline, field, prefix string) int {
	t.Helper()
	n := 0
	for _, c := range p.demo {
		if strings.HasPrefix(strings.ToLower(demoField(t, p, c.ID, field)), strings.ToLower(prefix)) {
			n++
		}
	}
	return n
}

// Agent, queue and user filters match what a person types: any case, the
// start of the name, with the names that exist offered while typing.
func TestBrowserFiltersMatchAnyCaseAndSuggest(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 30, nil)
	ctx := tab()
	signIn(t, ctx, p.app.URL(), "agent")

	agent := demoField(t, p, p.demo[0].ID, "agent") // e.g. agent.dale
	queue := demoField(t, p, p.demo[0].ID, "queue") // e.g. Sales
	typed := strings.ToUpper(agent[:len(agent)-2])
	for _, tc := range []struct{ field, value string }{{"agent", typed}, {"queue", strings.ToLower(queue)}} {
		want := countDemo(t, p, tc.field, tc.value)
		if want < 2 || want == len(p.demo) {
			t.Fatalf("%d of %d demo contacts have %s %q: the test proves nothing", want, len(p.demo), tc.field, tc.value)
		}
		within(t, ctx, 20*time.Second,
			chromedp.Navigate(p.app.URL()+"/#/search"), chromedp.WaitVisible(tid("search-total")),
			jsSet("search-"+tc.field, tc.value), jsClick("search-submit"))
		waitText(t, ctx, "search-total", fmt.Sprintf("%d contacts", want))
	}

	// Suggestions of the agents that exist, by what has been typed.
	within(t, ctx, 20*time.Second,
		jsClick("search-clear"), chromedp.WaitVisible(tid("search-agent")),
		jsSet("search-agent", strings.ToUpper(agent[:7])),
		// Focus first offers every agent; typing narrows the list.
		poll(fmt.Sprintf(`(() => { const o = [...document.querySelectorAll('[data-testid="search-agent-suggestions"] option')];
			return o.length > 0 && o.every(e => e.value.toLowerCase().startsWith(%q)); })()`, strings.ToLower(agent[:7]))),
	)
	opts := js[[]string](t, ctx, `[...document.querySelectorAll('[data-testid="search-agent-suggestions"] option')].map(o => o.value)`)
	found := false
	for _, o := range opts {
		found = found || o == agent
		if !strings.HasPrefix(strings.ToLower(o), strings.ToLower(agent[:7])) {
			t.Errorf("suggestion %q does not start with %q", o, agent[:7])
		}
	}
	if !found {
		t.Errorf("suggestions %q lack %q", opts, agent)
	}
	if list := js[string](t, ctx, `document.querySelector('[data-testid="search-agent"]').getAttribute('list')`); list == "" {
		t.Error("the agent input is not tied to its suggestions")
	}
}

// Errors are said at the field they are about, as sentences; a page past
// the last one says so and leads back; every column fits at both widths.
func TestBrowserSearchErrorsPagingAndLayout(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 60, nil)
	ctx := tab()
	base := p.app.URL()
	signIn(t, ctx, base, "dpo")

	fieldError := func(testid string) (msg string, invalid bool, described bool) {
		t.Helper()
		waitFor(t, ctx, 20*time.Second, fmt.Sprintf(`!!document.querySelector('[data-testid=%q]')`, testid+"-error"))
		msg = textOf(t, ctx, testid+"-error")
		invalid = js[bool](t, ctx, fmt.Sprintf(`document.querySelector('[data-testid=%q]').getAttribute('aria-invalid') === 'true'`, testid))
		described = js[bool](t, ctx, fmt.Sprintf(`(() => { const i = document.querySelector('[data-testid=%q]');
			const e = document.querySelector('[data-testid=%q]');
			return (i.getAttribute('aria-describedby') || '').split(' ').includes(e.id); })()`, testid, testid+"-error"))
		return
	}

	// An end before the start, typed: refused at the end date, nothing sent.
	within(t, ctx, 20*time.Second, jsClick("nav-search"), chromedp.WaitVisible(tid("search-form")),
		jsSet("search-from", "2026-12-05"), jsSet("search-to", "2026-12-01"), jsClick("search-submit"))
	msg, invalid, described := fieldError("search-to")
	if !strings.Contains(msg, "end date is before the start date") || !invalid || !described {
		t.Errorf("typed range: %q invalid=%v described=%v", msg, invalid, described)
	}
	if h := js[string](t, ctx, `location.hash`); strings.Contains(h, "from=") {
		t.Errorf("a refused range was searched: %s", h)
	}
	if focus := js[string](t, ctx, `document.activeElement.dataset.testid || ''`); focus != "search-to" {
		t.Errorf("focus on %q, want the end date", focus)
	}
	// The same range from a link: the server's answer, at the same field.
	within(t, ctx, 20*time.Second, chromedp.Navigate(base+"/#/search?from=2026-12-05&to=2026-12-01"), chromedp.WaitVisible(tid("search-form")))
	if msg, invalid, _ = fieldError("search-to"); !strings.Contains(msg, "end date is before the start date") || !invalid {
		t.Errorf("linked range: %q invalid=%v", msg, invalid)
	}
	// A contact ID that is not one.
	within(t, ctx, 20*time.Second, jsClick("search-clear"), chromedp.WaitVisible(tid("search-table")),
		jsSet("search-contact-id", "12345"), jsClick("search-submit"))
	if msg, invalid, described = fieldError("search-contact-id"); !strings.HasPrefix(msg, "This is not a valid contact ID.") || !invalid || !described {
		t.Errorf("bad contact ID: %q invalid=%v described=%v", msg, invalid, described)
	}
	// Typing again clears the message.
	within(t, ctx, 10*time.Second, jsSet("search-contact-id", "1234"),
		poll(`!document.querySelector('[data-testid="search-contact-id-error"]')`))

	// Past the last page: said, with the way back.
	within(t, ctx, 20*time.Second, chromedp.Navigate(base+"/#/search?page=99"), chromedp.WaitVisible(tid("search-past-end")))
	if got := textOf(t, ctx, "search-past-end"); !strings.Contains(got, "Page 99 is past the last page") || !strings.Contains(got, "3 pages") {
		t.Errorf("past the end: %q", got)
	}
	within(t, ctx, 20*time.Second, jsClick("search-past-end-last"), chromedp.WaitVisible(tid("search-table")))
	if got := textOf(t, ctx, "search-page"); got != "Page 3 of 3" {
		t.Errorf("after Go to page 3: %q", got)
	}

	for _, w := range layoutWidths {
		within(t, ctx, 20*time.Second, viewport(w), chromedp.Navigate(base+"/#/search"), chromedp.WaitVisible(tid("contact-row")))
		if bad := tableFits(t, ctx, "search-table"); len(bad) > 0 {
			t.Errorf("search table at %d px: %q", w, bad)
		}
		shot(t, ctx, fmt.Sprintf("search-%d", w))
	}
}

// Toasts sit below the header: the user menu and Sign out stay usable.
// Every toast leaves by itself, an error later; hover and focus hold it;
// Escape dismisses it; the stack is a live region.
func TestBrowserToastsStayClearOfTheHeader(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 30, nil) // a search page long enough to scroll
	base := p.app.URL()
	for _, w := range layoutWidths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			ctx := tab()
			within(t, ctx, 10*time.Second, viewport(w))
			signIn(t, ctx, base, "dpo")
			show := func(kind string, timeout int) {
				t.Helper()
				opt := ""
				if timeout > 0 {
					opt = fmt.Sprintf(", timeout: %d", timeout)
				}
				js[bool](t, ctx, fmt.Sprintf(`import('/static/js/toast.js').then(m => { m.toast({kind: %q, title: 'Deletion failed',
					message: 'Contact 0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b: a data store refused the deletion.'%s}); return true; })`, kind, opt))
			}
			// Toasts on a long page, the same page scrolled, and a short page
			// (the navigation row must not grow into a taller header).
			for _, where := range []struct{ name, hash string }{{"search", "#/search"}, {"scrolled", ""}, {"short page", "#/audit"}} {
				switch {
				case where.hash != "":
					within(t, ctx, 20*time.Second, chromedp.Navigate(base+"/"+where.hash), chromedp.WaitVisible(tid("user-name")),
						poll(`!document.querySelector('[aria-busy="true"]')`))
				default:
					js[bool](t, ctx, `(() => { window.scrollTo(0, 400); return true; })()`)
				}
				js[bool](t, ctx, `document.querySelectorAll('#toasts .toast').forEach(e => e.remove()) || true`)
				show("error", 0)
				show("success", 0)
				waitFor(t, ctx, 5*time.Second, `document.querySelectorAll('#toasts .toast').length === 2`)
				overlaps := js[[]string](t, ctx, `(() => {
					const out = [];
					const bar = document.querySelector('.topbar').getBoundingClientRect();
					const covered = ['logout-button', 'logout-all-button', 'user-name', 'nav-search', 'nav-audit'];
					for (const toast of document.querySelectorAll('#toasts .toast')) {
						const r = toast.getBoundingClientRect();
						if (r.top < bar.bottom) out.push(toast.dataset.testid + ' starts at ' + r.top + ', above the header end ' + bar.bottom);
						for (const id of covered) {
							const e = document.querySelector('[data-testid="' + id + '"]');
							if (!e) continue;
							const b = e.getBoundingClientRect();
							if (r.left < b.right && b.left < r.right && r.top < b.bottom && b.top < r.bottom) out.push(toast.dataset.testid + ' covers ' + id);
						}
					}
					return out;
				})()`)
				if len(overlaps) > 0 {
					t.Errorf("%s at %d px: %q", where.name, w, overlaps)
				}
				time.Sleep(300 * time.Millisecond) // the slide-in, for the screenshot
				shot(t, ctx, fmt.Sprintf("toasts-%s-%d", strings.ReplaceAll(where.name, " ", "-"), w))
			}
			if live := js[string](t, ctx, `document.getElementById('toasts').getAttribute('aria-live')`); live != "polite" {
				t.Errorf("toast region aria-live = %q", live)
			}
			if ms := js[int](t, ctx, `+document.querySelector('[data-testid="toast-error"]').dataset.timeout`); ms <= 0 {
				t.Error("an error toast has no timer: it stays until dismissed")
			}

			// Focus holds a toast; it goes once focus leaves.
			js[bool](t, ctx, `document.querySelectorAll('#toasts .toast').forEach(e => e.remove()) || true`)
			show("success", 1200)
			js[bool](t, ctx, `(() => { document.querySelector('[data-testid="toast-success"] [data-testid="toast-dismiss"]').focus(); return true; })()`)
			time.Sleep(2 * time.Second)
			if !present(t, ctx, "toast-success") {
				t.Fatal("a focused toast went away")
			}
			js[bool](t, ctx, `(() => { document.getElementById('main').focus(); return true; })()`)
			within(t, ctx, 10*time.Second, chromedp.WaitNotPresent(tid("toast-success")))

			// The pointer over a toast holds it.
			show("success", 1200)
			c := js[[]float64](t, ctx, `(() => { const r = document.querySelector('[data-testid="toast-success"]').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`)
			within(t, ctx, 5*time.Second, chromedp.MouseEvent(chromedp.MouseMoved, c[0], c[1]))
			time.Sleep(2 * time.Second)
			if !present(t, ctx, "toast-success") {
				t.Fatal("a hovered toast went away")
			}
			within(t, ctx, 5*time.Second, chromedp.MouseEvent(chromedp.MouseMoved, 5, 400))
			within(t, ctx, 10*time.Second, chromedp.WaitNotPresent(tid("toast-success")))

			// Escape dismisses the focused toast; focus stays on the page.
			show("error", 0)
			js[bool](t, ctx, `(() => { document.querySelector('[data-testid="toast-error"] [data-testid="toast-dismiss"]').focus(); return true; })()`)
			within(t, ctx, 10*time.Second, chromedp.KeyEvent(kb.Escape), chromedp.WaitNotPresent(tid("toast-error")))
			if focus := js[string](t, ctx, `document.activeElement.id`); focus != "main" {
				t.Errorf("focus after Escape on %q, want main", focus)
			}

			// With an error toast up, Sign out is clicked as a user would.
			show("error", 0)
			b := js[[]float64](t, ctx, `(() => { const r = document.querySelector('[data-testid="logout-button"]').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`)
			within(t, ctx, 20*time.Second, chromedp.MouseClickXY(b[0], b[1]), chromedp.WaitVisible(tid("login-name")))
		})
	}
}

// seedAudit writes decided requests straight into the ledger (the audit
// chain is the real one): actors, completion times and channel counts the
// Audit Log tests know.
type seededEntry struct {
	id, actor string
	at        time.Time
}

func seedAudit(t *testing.T, p *pipeline, entries []seededEntry) []seededEntry {
	t.Helper()
	l := p.app.Stores.Ledger
	purgeBy := time.Now().Add(8 * time.Minute).UTC()
	for i := range entries {
		e := &entries[i]
		r := storetestRequest(e.actor, e.at)
		e.id = r.RequestID
		if err := l.PutRequest(t.Context(), r, e.at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		out := storetestOutcome(r, e.at, purgeBy)
		if _, _, err := l.Complete(t.Context(), out, "Delete Contact"); err != nil {
			t.Fatal(err)
		}
		// Already told: the aggregator must not publish these again.
		if err := l.MarkPublished(t.Context(), r.RequestID); err != nil {
			t.Fatal(err)
		}
	}
	return entries
}

func entriesWord(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}

// rowsOf returns the request IDs of the Audit Log rows shown.
func rowsOf(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return js[[]string](t, ctx, `[...document.querySelectorAll('[data-testid="audit-row"]')].map(r => r.dataset.requestId)`)
}
