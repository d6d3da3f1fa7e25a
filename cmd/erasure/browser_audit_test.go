package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/receipt"
	"github.com/erasure-project/erasure/stores/storetest"
)

// storetestRequest is a decided request of the given actor, of one contact.
func storetestRequest(actor string, at time.Time) schemas.DeletionRequested {
	r := storetest.Request(at.Add(-5*time.Second), storetest.NewUUID())
	r.RequestedBy = actor
	return r
}

// storetestOutcome succeeds with counts the Audit Log test checks: three
// call recordings before, three deleted, none after, purged by purgeBy.
func storetestOutcome(r schemas.DeletionRequested, at, purgeBy time.Time) schemas.DeletionCompleted {
	out := storetest.Outcome(r, schemas.StatusSucceeded, at)
	purgedAt := at
	out.Channels = []schemas.ChannelOutcome{
		{Channel: schemas.ChannelVoice, Status: schemas.StatusSucceeded, Artefacts: []schemas.ArtefactCount{
			{Artefact: "call_recordings", Before: 3, Deleted: 3, After: 0, Store: "objects", PurgeBy: &purgeBy},
			{Artefact: "transcripts", Before: 2, Deleted: 2, After: 0, Store: "warehouse", PurgedAt: &purgedAt},
		}},
		{Channel: schemas.ChannelMessaging, Status: schemas.StatusSucceeded, Artefacts: []schemas.ArtefactCount{
			{Artefact: "chat_messages", Before: 5, Deleted: 5, After: 0, Store: "warehouse", PurgedAt: &purgedAt},
		}},
		{Channel: schemas.ChannelContactSearch, Status: schemas.StatusSucceeded, Artefacts: []schemas.ArtefactCount{
			{Artefact: "contact_index", Before: 1, Deleted: 1, After: 0, Store: "index", PurgeBy: &purgeBy},
		}},
	}
	return out
}

func timezone(zone string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone})
		return err
	})
}

// The Audit Log as an auditor uses it: how many entries and pages, in
// which time zone, the last day, week or month at a click, users by the
// start of their name, every channel's items before and after, the signed
// receipt of an entry, and every column on screen at both widths.
func TestBrowserAuditLogForAuditors(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 4, nil)
	base := p.app.URL()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}

	// 55 entries over the last four and a half days, 5 weeks apart before
	// that; appended oldest first, as the chain grows.
	now := time.Now()
	actors := []string{"jane.dpo", "Jane.Admin", "bulk.ops"}
	var seed []seededEntry
	for i := range 60 {
		at := now.Add(-time.Duration(i)*2*time.Hour - time.Minute)
		if i >= 55 {
			at = now.AddDate(0, 0, -(10 + (i-55)*7))
		}
		seed = append(seed, seededEntry{actor: actors[i%3], at: at.UTC()})
	}
	slices.Reverse(seed)
	seed = seedAudit(t, p, seed)
	newest := seed[len(seed)-1]
	since := func(days int) int {
		y, m, d := now.In(berlin).Date()
		from := time.Date(y, m, d-(days-1), 0, 0, 0, 0, berlin)
		n := 0
		for _, e := range seed {
			if !e.at.Before(from) {
				n++
			}
		}
		return n
	}

	ctx := tab()
	within(t, ctx, 10*time.Second, timezone("Europe/Berlin"), viewport(1280))
	signIn(t, ctx, base, "auditor")
	within(t, ctx, 20*time.Second, jsClick("nav-audit"), chromedp.WaitVisible(tid("audit-row")))

	waitText(t, ctx, "audit-total", "60 entries")
	if got, rows := textOf(t, ctx, "audit-page"), len(rowsOf(t, ctx)); got != "Page 1 of 2" || rows != 50 {
		t.Errorf("first page: %q with %d rows", got, rows)
	}
	if got := textOf(t, ctx, "audit-timezone"); !strings.Contains(got, "Europe/Berlin") {
		t.Errorf("time zone note %q", got)
	}
	// Times are the zone's: the newest entry's completion in Berlin, not UTC.
	row := fmt.Sprintf(`document.querySelector('[data-testid="audit-row"][data-request-id=%q]')`, newest.id)
	shown := js[[]string](t, ctx, fmt.Sprintf(`(() => {
		const f = (tz) => new Intl.DateTimeFormat(undefined, { timeStyle: 'medium', timeZone: tz }).format(new Date(%q));
		return [%s.children[1].textContent, f('Europe/Berlin'), f('UTC')]; })()`, newest.at.Format(time.RFC3339Nano), row))
	if !strings.Contains(shown[0], shown[1]) || strings.Contains(shown[0], shown[2]) {
		t.Errorf("when %q: want Berlin's %q, not UTC's %q", shown[0], shown[1], shown[2])
	}
	within(t, ctx, 20*time.Second, jsClick("audit-next"), poll(`(document.querySelector('[data-testid="audit-page"]') || {}).textContent === 'Page 2 of 2'`))
	if rows := len(rowsOf(t, ctx)); rows != 10 || !js[bool](t, ctx, `document.querySelector('[data-testid="audit-next"]').disabled`) {
		t.Errorf("last page: %d rows, Next enabled", rows)
	}

	// Shortcuts: today, the last 7 days (today included), in Berlin's days.
	for _, tc := range []struct {
		key  string
		days int
	}{{"7", 7}, {"today", 1}, {"30", 30}} {
		within(t, ctx, 20*time.Second, jsClick("audit-range-"+tc.key),
			poll(fmt.Sprintf(`(document.querySelector('[data-testid="audit-range-%s"]') || { getAttribute: () => '' }).getAttribute('aria-pressed') === 'true'`, tc.key)))
		waitText(t, ctx, "audit-total", entriesWord(since(tc.days)))
		from := now.In(berlin).AddDate(0, 0, -(tc.days - 1)).Format(time.DateOnly)
		if h := js[string](t, ctx, `location.hash`); !strings.Contains(h, "from="+from) || !strings.Contains(h, "to="+now.In(berlin).Format(time.DateOnly)) {
			t.Errorf("range %s: %s, want from %s", tc.key, h, from)
		}
	}

	// Users by the start of their name, in any case, with suggestions.
	within(t, ctx, 20*time.Second, jsClick("audit-clear"), chromedp.WaitVisible(tid("audit-row")),
		jsSet("audit-user", "JANE"),
		poll(`document.querySelectorAll('[data-testid="audit-user-suggestions"] option').length === 2`))
	if got := js[[]string](t, ctx, `[...document.querySelectorAll('[data-testid="audit-user-suggestions"] option')].map(o => o.value)`); !slices.Equal(got, []string{"Jane.Admin", "jane.dpo"}) {
		t.Errorf("user suggestions %q", got)
	}
	within(t, ctx, 20*time.Second, jsClick("audit-apply"))
	waitText(t, ctx, "audit-total", "40 entries")

	// An entry's channels: items before, deleted and after, and when each
	// store removes them physically.
	within(t, ctx, 20*time.Second, jsClick("audit-clear"), chromedp.WaitVisible(tid("audit-row")),
		jsClickCSS(fmt.Sprintf(`[data-testid="audit-row"][data-request-id=%q] [data-testid="audit-expand"]`, newest.id)),
		chromedp.WaitVisible(tid("audit-channel-table")))
	cells := js[[]string](t, ctx, `(() => { const r = document.querySelector('[data-testid="audit-detail"]:not([hidden]) [data-artefact="call_recordings"]');
		return ['audit-before', 'audit-deleted', 'audit-after'].map(id => r.querySelector('[data-testid="' + id + '"]').textContent).concat(r.lastChild.textContent); })()`)
	if len(cells) != 4 || cells[0] != "3" || cells[1] != "3" || cells[2] != "0" || !strings.HasPrefix(cells[3], "Purged by ") {
		t.Errorf("call recordings of the newest entry: %q", cells)
	}
	if got := textOf(t, ctx, "audit-fact-request"); got != newest.id {
		t.Errorf("detail names request %q, want %q", got, newest.id)
	}

	// Its receipt downloads, and verifies with the published key.
	name, raw := downloadReceipt(t, ctx, newest.id)
	if name != "deletion-receipt-"+newest.id+".json" {
		t.Errorf("receipt file %q", name)
	}
	res, err := http.Get(base + "/api/v1/receipts/public-key")
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := io.ReadAll(res.Body)
	res.Body.Close()
	pub, err := receipt.DecodePublicKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := receipt.Parse(raw); err != nil || receipt.Verify(r, pub) != nil || r.RequestID != newest.id {
		t.Errorf("receipt %s: %v", r.RequestID, err)
	}

	// A page past the last one leads back.
	within(t, ctx, 20*time.Second, chromedp.Navigate(base+"/#/audit?page=99"), chromedp.WaitVisible(tid("audit-past-end")))
	if got := textOf(t, ctx, "audit-past-end"); !strings.Contains(got, "Page 99 is past the last page") || !strings.Contains(got, "60 entries on 2 pages") {
		t.Errorf("past the end: %q", got)
	}
	within(t, ctx, 20*time.Second, jsClick("audit-past-end-last"), poll(`(document.querySelector('[data-testid="audit-page"]') || {}).textContent === 'Page 2 of 2'`))

	for i, w := range layoutWidths {
		// Each a page other than the one shown, so the page renders afresh.
		within(t, ctx, 20*time.Second, viewport(w), chromedp.Navigate(base+[]string{"/#/audit?page=1", "/#/audit"}[i]), chromedp.WaitVisible(tid("audit-row")),
			jsClickCSS(fmt.Sprintf(`[data-testid="audit-row"][data-request-id=%q] [data-testid="audit-expand"]`, newest.id)),
			chromedp.WaitVisible(tid("audit-channel-table")))
		if bad := tableFits(t, ctx, "audit-table"); len(bad) > 0 {
			t.Errorf("audit table at %d px: %q", w, bad)
		}
		if bad := tableFits(t, ctx, "audit-channel-table"); len(bad) > 0 {
			t.Errorf("channel table at %d px: %q", w, bad)
		}
		shot(t, ctx, fmt.Sprintf("audit-log-%d", w))
	}
}
