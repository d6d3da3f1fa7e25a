package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
)

// The 'Deleting Contact' modal waits as long as the product promises (the
// deadline) plus a short grace, then says there is no result yet and links
// to the Audit Log. An outcome that still arrives while it is open is shown
// with its toast; one for other content under the same request ID is not;
// once the modal is closed, nothing is shown.
func TestBrowserDeletingModalTimesOut(t *testing.T) {
	tab := browser(t)
	var roles []string
	for _, r := range app.AllRoles() {
		if r != app.RoleAggregator { // no outcome comes unless the test sends one
			roles = append(roles, r)
		}
	}
	p := startPipelineWith(t, 6, func(c *app.Config) { c.Deadline = 2 * time.Second }, roles)
	ctx := tab()
	signIn(t, ctx, p.app.URL(), "dpo")

	start := func(id string) string {
		t.Helper()
		openRecord(t, ctx, id)
		within(t, ctx, 10*time.Second,
			jsClick("delete-contact-button"),
			chromedp.WaitVisible(tid("confirm-delete-button")),
			jsClick("confirm-delete-button"),
			chromedp.WaitVisible(tid("deleting-modal")),
		)
		rid, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="deleting-modal"]').dataset.requestId`))
		if err != nil || rid == "" {
			t.Fatalf("request ID of the modal: %q %v", rid, err)
		}
		return rid
	}
	outcome := func(rid, contact, by string, st schemas.Status) {
		t.Helper()
		// The confirmation submits the first configured reason unless another is chosen.
		req := schemas.DeletionRequested{ContactIDs: []string{contact}, RequestedBy: by, Source: schemas.SourceUI, ReasonCode: "gdpr-art17"}
		now := time.Now().UTC()
		out := &schemas.DeletionCompleted{RequestID: rid, ContactIDs: req.ContactIDs, RequestedBy: by, RequestedAt: now,
			CompletedAt: now, Source: req.Source, Status: st, Channels: []schemas.ChannelOutcome{}, AuditSeq: 1,
			AuditHash: strings.Repeat("ab", 32), RequestDigest: req.ContentDigest()}
		if st == schemas.StatusRefused {
			out.ErrorCode = schemas.ErrCodeRequestIDConflict
		}
		if err := producers.Publish(p.app.Publisher, p.app.Topics.Outcomes(), out, rid); err != nil {
			t.Fatal(err)
		}
	}
	noToast := func(when string) {
		t.Helper()
		time.Sleep(time.Second) // give a (wrong) toast time to appear
		for _, id := range []string{"toast-success", "toast-info", "toast-error"} {
			if present(t, ctx, id) {
				t.Fatalf("%s: %s shown", when, id)
			}
		}
	}

	first := p.demo[0].ID
	rid := start(first)
	began := time.Now()
	within(t, ctx, 30*time.Second, chromedp.WaitVisible(tid("deleting-timeout")))
	if waited := time.Since(began); waited < 2*time.Second {
		t.Errorf("the modal gave up after %s, before the 2 s deadline", waited)
	}
	shot(t, ctx, "deleting-modal-timeout")
	text, err := chromedp.Run(ctx, chromedp.Text(tid("deleting-summary")))
	if err != nil || !strings.Contains(text, "Audit Log") || !strings.Contains(text, "2 seconds") {
		t.Errorf("timeout message %q (%v)", text, err)
	}
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="deleting-audit-link"]').getAttribute('href')`))
	if err != nil || href != "#/audit?contact_id="+first+"&request_id="+rid {
		t.Errorf("Audit Log link %q (%v)", href, err)
	}
	title, err := chromedp.Run(ctx, chromedp.Text(tid("deleting-modal-title")))
	if err != nil || title != "No result yet" {
		t.Errorf("modal title %q (%v)", title, err)
	}

	// Someone else's content refused under this request ID: not ours.
	outcome(rid, p.demo[1].ID, "crm-service", schemas.StatusRefused)
	noToast("an outcome for other content")
	if !present(t, ctx, "deleting-timeout") {
		t.Fatal("the modal changed on an outcome for other content")
	}
	// Ours, late: shown in the still-open modal, with its toast.
	outcome(rid, first, "dpo", schemas.StatusNotFound)
	within(t, ctx, 20*time.Second, chromedp.WaitVisible(tid("toast-info")))
	msg, err := chromedp.Run(ctx, chromedp.Text(tid("toast-info")))
	if err != nil || !strings.Contains(msg, "not found") || !strings.Contains(msg, first) {
		t.Errorf("not-found toast %q (%v)", msg, err)
	}
	shot(t, ctx, "toast-not-found")
	within(t, ctx, 10*time.Second, jsClick("toast-dismiss"), chromedp.WaitNotPresent(tid("toast-info")))

	// Closed after the timeout: an outcome arriving later shows nothing.
	second := p.demo[1].ID
	rid2 := start(second)
	within(t, ctx, 30*time.Second, chromedp.WaitVisible(tid("deleting-timeout")))
	within(t, ctx, 10*time.Second, jsClick("deleting-close-button"), chromedp.WaitNotPresent(tid("deleting-modal")))
	outcome(rid2, second, "dpo", schemas.StatusSucceeded)
	noToast("an outcome after the modal was closed")
}
