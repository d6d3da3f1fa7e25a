package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/erasure-project/erasure/internal/demo"
)

// reasonedEntry is a decided request seeded with a reason and a ticket.
type reasonedEntry struct {
	reason, ticket string
	id             string
}

// seedReasoned appends one succeeded audit entry per entry, oldest first,
// each with its reason code and ticket.
func seedReasoned(t *testing.T, p *pipeline, entries []reasonedEntry) []reasonedEntry {
	t.Helper()
	l := p.app.Stores.Ledger
	now := time.Now().UTC()
	for i := range entries {
		e := &entries[i]
		at := now.Add(time.Duration(i-len(entries)) * time.Minute)
		r := storetestRequest("jane.dpo", at)
		r.ReasonCode, r.Ticket = e.reason, e.ticket
		e.id = r.RequestID
		if err := l.PutRequest(t.Context(), r, at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		out := storetestOutcome(r, at, at.Add(8*time.Minute))
		out.ReasonCode, out.Ticket = r.ReasonCode, r.Ticket
		if _, _, err := l.Complete(t.Context(), out, "Delete Contact"); err != nil {
			t.Fatal(err)
		}
		if err := l.MarkPublished(t.Context(), r.RequestID); err != nil {
			t.Fatal(err)
		}
	}
	return entries
}

// waitRows waits until the Audit Log shows exactly the entries of ids, in
// any order, and the page has settled on them (its total agrees).
func waitRows(t *testing.T, ctx context.Context, ids ...string) {
	t.Helper()
	want := slices.Clone(ids)
	slices.Sort(want)
	expr := fmt.Sprintf(`(() => {
		const rows = [...document.querySelectorAll('[data-testid="audit-row"]')].map(r => r.dataset.requestId).sort();
		const total = (document.querySelector('[data-testid="audit-total"]') || {}).textContent || '';
		return JSON.stringify(rows) === %q && total === %q; })()`, jsonList(want), entriesWord(len(want)))
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, poll(expr)); err != nil {
		shot(t, ctx, "failure-"+strings.ReplaceAll(t.Name(), "/", "-"))
		t.Fatalf("audit rows %q, want %q", rowsOf(t, ctx), want)
	}
}

func jsonList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// exportParams is the query of the Export CSV link, and the request IDs of
// the file it downloads.
func exportParams(t *testing.T, ctx context.Context) (url.Values, []string) {
	t.Helper()
	href := js[string](t, ctx, `document.querySelector('[data-testid="audit-export"]').href`)
	u, err := url.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	csv := js[string](t, ctx, `fetch(document.querySelector('[data-testid="audit-export"]').href).then(r => r.text())`)
	var ids []string
	for i, line := range strings.Split(strings.TrimSpace(csv), "\n") {
		if i == 0 {
			continue
		}
		if cols := strings.Split(line, ","); len(cols) > 6 {
			ids = append(ids, cols[6])
		}
	}
	slices.Sort(ids)
	return u.Query(), ids
}

// The Audit Log filters on the reason (any configured deletion or hold
// reason), the ticket and the request a link names: each narrows the
// entries shown and the CSV export alike, the request is shown as a filter
// of its own that can be cleared, and a ticket the server refuses is said
// at its field. At both widths the filters fit without scrolling the page.
func TestBrowserAuditFiltersReasonTicketRequest(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 4, nil)
	base := p.app.URL()
	e := seedReasoned(t, p, []reasonedEntry{
		{reason: "gdpr-art17", ticket: "INC-1"},
		{reason: "retention", ticket: "INC-2"},
		{reason: "retention"},
		{reason: "gdpr-art17", ticket: "INC-2"},
	})
	all := []string{e[0].id, e[1].id, e[2].id, e[3].id}

	ctx := tab()
	within(t, ctx, 10*time.Second, viewport(1280))
	signIn(t, ctx, base, "auditor")
	within(t, ctx, 20*time.Second, jsClick("nav-audit"), chromedp.WaitVisible(tid("audit-reason")))
	waitRows(t, ctx, all...)
	// Every configured reason is offered, the hold reasons too.
	opts := js[[]string](t, ctx, `[...document.querySelectorAll('[data-testid="audit-reason"] option')].map(o => o.value)`)
	for _, want := range []string{"", "gdpr-art17", "retention", "litigation", "matter-closed"} {
		if !slices.Contains(opts, want) {
			t.Errorf("reason options %q lack %q", opts, want)
		}
	}

	within(t, ctx, 20*time.Second, jsSet("audit-reason", "retention"), jsClick("audit-apply"))
	waitRows(t, ctx, e[1].id, e[2].id)
	q, csv := exportParams(t, ctx)
	if q.Get("reason_code") != "retention" || !slices.Equal(csv, sorted(e[1].id, e[2].id)) {
		t.Errorf("export by reason: %v, file holds %q", q, csv)
	}

	within(t, ctx, 20*time.Second, jsSet("audit-ticket", "INC-2"), jsClick("audit-apply"))
	waitRows(t, ctx, e[1].id)
	q, csv = exportParams(t, ctx)
	if q.Get("reason_code") != "retention" || q.Get("ticket") != "INC-2" || !slices.Equal(csv, []string{e[1].id}) {
		t.Errorf("export by reason and ticket: %v, file holds %q", q, csv)
	}
	if h := js[string](t, ctx, `location.hash`); !strings.Contains(h, "reason_code=retention") || !strings.Contains(h, "ticket=INC-2") {
		t.Errorf("the filters are not in the page's address: %s", h)
	}

	// The ticket alone: both requests of INC-2, whatever their reason.
	within(t, ctx, 20*time.Second, jsSet("audit-reason", ""), jsClick("audit-apply"))
	waitRows(t, ctx, e[1].id, e[3].id)

	// A link naming a request: the entry of that request only, shown as a
	// Request ID filter, carried to the export, and cleared like the others.
	within(t, ctx, 20*time.Second, chromedp.Navigate(base+"/#/audit?request_id="+e[3].id))
	waitRows(t, ctx, e[3].id)
	if got := js[string](t, ctx, `document.querySelector('[data-testid="audit-request-id"]').value`); got != e[3].id {
		t.Errorf("Request ID filter shows %q, want %s", got, e[3].id)
	}
	if label := js[string](t, ctx, `document.querySelector('label[for="a-request"]').textContent`); label != "Request ID" {
		t.Errorf("request filter labelled %q", label)
	}
	q, csv = exportParams(t, ctx)
	if q.Get("request_id") != e[3].id || !slices.Equal(csv, []string{e[3].id}) {
		t.Errorf("export of one request: %v, file holds %q", q, csv)
	}
	checkAxe(t, ctx, "Audit Log filtered to one request")
	within(t, ctx, 20*time.Second, jsSet("audit-request-id", ""), jsClick("audit-apply"))
	waitRows(t, ctx, all...)
	if h := js[string](t, ctx, `location.hash`); strings.Contains(h, "request_id") {
		t.Errorf("cleared request filter still in the address: %s", h)
	}

	// A ticket that could be a phone number is refused at its field.
	within(t, ctx, 20*time.Second, jsSet("audit-ticket", "07700900304"), jsClick("audit-apply"),
		chromedp.WaitVisible(tid("audit-ticket-error")))
	if inv := js[string](t, ctx, `document.querySelector('[data-testid="audit-ticket"]').getAttribute('aria-invalid') || ''`); inv != "true" {
		t.Errorf("refused ticket: aria-invalid %q", inv)
	}

	// Every filter set, at both widths: nothing wider than the window.
	for _, w := range layoutWidths {
		within(t, ctx, 20*time.Second, viewport(w),
			chromedp.Navigate(fmt.Sprintf("%s/#/audit?reason_code=retention&ticket=INC-2&request_id=%s&w=%d", base, e[1].id, w)))
		waitRows(t, ctx, e[1].id)
		if over := js[[]string](t, ctx, `(() => {
			const out = [];
			if (document.documentElement.scrollWidth > innerWidth) out.push('page ' + document.documentElement.scrollWidth + ' > ' + innerWidth);
			for (const el of document.querySelectorAll('[data-testid="audit-form"] input, [data-testid="audit-form"] select, [data-testid="audit-form"] button')) {
				const r = el.getBoundingClientRect();
				if (r.right > innerWidth + 1) out.push((el.dataset.testid || el.id) + ' ends at ' + Math.round(r.right));
			}
			return out; })()`); len(over) > 0 {
			t.Errorf("at %d px: %q", w, over)
		}
		if bad := tableFits(t, ctx, "audit-table"); len(bad) > 0 {
			t.Errorf("audit table at %d px: %q", w, bad)
		}
		shot(t, ctx, fmt.Sprintf("audit-log-filters-%d", w))
	}
}

func sorted(ss ...string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// followOutcomeLink waits until the 'Deleting Contact' modal shows a
// success and follows its audit link while the modal is still open, and
// returns the link and the request it was for.
func followOutcomeLink(t *testing.T, ctx context.Context) (href, rid string) {
	t.Helper()
	within(t, ctx, 60*time.Second, poll(`(() => {
		const a = document.querySelector('[data-testid="deleting-modal"][data-outcome="succeeded"] [data-testid="deleting-audit-link"]');
		if (!a) return false;
		window.__followed = { href: a.getAttribute('href'), rid: a.closest('[data-testid="deleting-modal"]').dataset.requestId };
		a.click();
		return true; })()`))
	got := js[map[string]string](t, ctx, `window.__followed`)
	return got["href"], got["rid"]
}

// recordHashes notes every later change of the page's address.
const recordHashes = `(() => {
	window.__hashes = [];
	if (!window.__hashListener) {
		window.__hashListener = () => window.__hashes.push(location.hash);
		window.addEventListener('hashchange', window.__hashListener);
	}
	return true; })()`

// stayed checks that, past the moment the success modal would have closed
// itself, the page is still the Audit Log of the request and never left it.
func stayed(t *testing.T, ctx context.Context, rid string) {
	t.Helper()
	waitRows(t, ctx, rid)
	// The modal closes itself 1.5 s after the outcome; what it did then
	// (or when the page closed it) would have happened by now.
	time.Sleep(2500 * time.Millisecond)
	if hs := js[[]string](t, ctx, `window.__hashes`); len(hs) != 1 || !strings.HasPrefix(hs[0], "#/audit?") {
		t.Errorf("after leaving for the Audit Log the address went %q", hs)
	}
	if h := js[string](t, ctx, `location.hash`); !strings.HasPrefix(h, "#/audit") {
		t.Errorf("the user was taken to %s", h)
	}
	if present(t, ctx, "deleting-modal") {
		t.Error("the 'Deleting Contact' modal is still open on the Audit Log")
	}
	waitRows(t, ctx, rid)
}

// The outcome of a deletion links to its audit entry: the Audit Log
// filtered to that request (and contact), for one contact and for a data
// subject's several. Following the link, or going to another page, while
// the success modal is open leaves the user there: closing the modal does
// not take them back to the record or the search.
func TestBrowserDeleteOutcomeLinksToItsAuditEntry(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 12, nil)
	base := p.app.URL()
	ctx := tab()
	signIn(t, ctx, base, "dpo")

	// One contact: the link names the request and the contact.
	target := p.demo[0].ID
	openRecord(t, ctx, target)
	js[bool](t, ctx, recordHashes)
	within(t, ctx, 20*time.Second, jsClick("delete-contact-button"), chromedp.WaitVisible(tid("confirm-reason")),
		jsClick("confirm-delete-button"), chromedp.WaitVisible(tid("deleting-modal")))
	href, rid := followOutcomeLink(t, ctx)
	st, err := p.app.Stores.Ledger.ByContact(t.Context(), target, 1)
	if err != nil || len(st) != 1 || st[0].Request.RequestID != rid {
		t.Fatalf("the modal's request %s is not the contact's: %v", rid, err)
	}
	if q, err := url.ParseQuery(strings.TrimPrefix(href, "#/audit?")); err != nil || q.Get("request_id") != rid || q.Get("contact_id") != target {
		t.Errorf("audit link %q: want request %s and contact %s", href, rid, target)
	}
	stayed(t, ctx, rid)
	if got := js[string](t, ctx, `document.querySelector('[data-testid="audit-request-id"]').value`); got != rid {
		t.Errorf("Request ID filter shows %q", got)
	}

	// Going elsewhere (the browser's Back, a bookmark, the address bar)
	// while the success modal is open: the user stays where they went.
	second := p.demo[1].ID
	openRecord(t, ctx, second)
	js[bool](t, ctx, recordHashes)
	within(t, ctx, 20*time.Second, jsClick("delete-contact-button"), chromedp.WaitVisible(tid("confirm-reason")),
		jsClick("confirm-delete-button"),
		poll(`(() => { if (!document.querySelector('[data-testid="deleting-modal"][data-outcome="succeeded"]')) return false;
			location.hash = '#/audit?functionality=Delete+Contact'; return true; })()`))
	// The Audit Log's entries, or (wrongly) a page the user did not ask for.
	waitFor(t, ctx, 20*time.Second, `!!document.querySelector('[data-testid="audit-row"]') || !location.hash.startsWith('#/audit')`)
	time.Sleep(2500 * time.Millisecond) // past the modal's own close, as above
	if hs := js[[]string](t, ctx, `window.__hashes`); len(hs) != 1 || hs[0] != "#/audit?functionality=Delete+Contact" {
		t.Errorf("after going to the Audit Log during the success modal the address went %q", hs)
	}
	dismissToasts(t, ctx)

	// A data subject's contacts: one request, and the link names it alone.
	subject := []demo.Contact{p.demo[2], p.demo[3], p.demo[4]}
	e164 := shareSubject(t, p, subject...)
	within(t, ctx, 20*time.Second, jsClick("nav-subject"), chromedp.WaitVisible(tid("subject-form")),
		jsSet("subject-value", e164), jsClick("subject-find"), chromedp.WaitVisible(tid("subject-table")))
	js[bool](t, ctx, recordHashes)
	within(t, ctx, 30*time.Second, jsClick("subject-delete-button"), chromedp.WaitVisible(tid("confirm-reason")),
		jsClick("confirm-delete-button"), chromedp.WaitVisible(tid("deleting-modal")))
	href, rid = followOutcomeLink(t, ctx)
	if q, err := url.ParseQuery(strings.TrimPrefix(href, "#/audit?")); err != nil || q.Get("request_id") != rid || q.Has("contact_id") {
		t.Errorf("subject deletion's audit link %q: want request %s only", href, rid)
	}
	stayed(t, ctx, rid)
	contacts := js[string](t, ctx, fmt.Sprintf(`document.querySelector('[data-testid="audit-row"][data-request-id=%q] [data-testid="audit-contacts"]').textContent`, rid))
	if !strings.Contains(contacts, "and 2 more") {
		t.Errorf("the subject's entry names %q, want its 3 contacts", contacts)
	}
}
