package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"golang.org/x/crypto/bcrypt"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/webapi"
)

// withLegal adds a user "legal" (password "legal-pass") who may place and
// lift legal holds.
func withLegal(cfg *app.Config) {
	hash, err := bcrypt.GenerateFromPassword([]byte("legal-pass"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	cfg.Web.Users = append(cfg.Web.Users, webapi.User{Name: "legal", PasswordHash: string(hash), Roles: []string{"legal"}})
}

// shareSubject gives contacts the phone number of the first, each written
// another way, as different systems write one person's number.
func shareSubject(t *testing.T, p *pipeline, contacts ...demo.Contact) string {
	t.Helper()
	e164 := strings.ReplaceAll(contacts[0].Phone, " ", "")
	national := "0" + strings.TrimPrefix(e164, "+44")
	spellings := []string{contacts[0].Phone, national, national[:5] + " " + national[5:]}
	for i, c := range contacts {
		d, err := p.app.Stores.Index.Get(t.Context(), "contacts", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		d.Fields["customer_phone"] = spellings[i%len(spellings)]
		if err := p.app.Stores.Index.Put(t.Context(), "contacts", d); err != nil {
			t.Fatal(err)
		}
	}
	return e164
}

func countOf(t *testing.T, ctx context.Context, css string) int {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := chromedp.Run(c, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, css)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitHeld waits until the ledger shows the hold as wanted.
func waitHeld(t *testing.T, p *pipeline, id string, want bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		h, err := p.app.Stores.Holds.Held(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if _, held := h[id]; held == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hold on %s is not %v after 30s", id, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A data subject's contacts, found by one phone number written three ways,
// are deleted in one request: one confirmation listing each contact with
// its per-channel counts, with a reason and a ticket; one audit entry
// naming every contact; one toast.
func TestBrowserSubjectDeletion(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 12, nil)
	subject := []demo.Contact{p.demo[0], p.demo[1], p.demo[2]}
	e164 := shareSubject(t, p, subject...)
	national := "0" + strings.TrimPrefix(e164, "+44")
	other := p.demo[3]
	before := p.inventory(t)[other.ID]

	ctx := tab()
	signIn(t, ctx, p.app.URL(), "dpo")
	within(t, ctx, 20*time.Second,
		jsClick("nav-subject"),
		chromedp.WaitVisible(tid("subject-form")),
		jsSet("subject-value", national),
		jsClick("subject-find"),
		chromedp.WaitVisible(tid("subject-table")),
	)
	if n := countOf(t, ctx, `[data-testid="subject-row"]`); n != len(subject) {
		t.Fatalf("subject rows = %d, want %d", n, len(subject))
	}
	for _, c := range subject {
		if countOf(t, ctx, fmt.Sprintf(`[data-testid="subject-row"][data-contact-id=%q] input:checked`, c.ID)) != 1 {
			t.Errorf("contact %s of the subject is not selected", c.ID)
		}
	}
	within(t, ctx, 30*time.Second,
		jsClick("subject-delete-button"),
		chromedp.WaitVisible(tid("confirm-contacts-table")),
		chromedp.WaitVisible(tid("confirm-reason")),
	)
	if n := countOf(t, ctx, `[data-testid="confirm-contact-row"]`); n != len(subject) {
		t.Fatalf("confirmation lists %d contacts, want %d", n, len(subject))
	}
	if n := countOf(t, ctx, `[data-testid="confirm-contact-row"] [data-channel]`); n < len(subject) {
		t.Errorf("confirmation shows %d per-channel counts for %d contacts", n, len(subject))
	}
	within(t, ctx, 10*time.Second, jsSet("confirm-reason", "retention"), jsSet("confirm-ticket", "07700900304"), jsClick("confirm-delete-button"),
		chromedp.WaitVisible(tid("confirm-ticket-error")))
	if published := requestsPublished(t, p); published != 0 {
		t.Fatalf("a ticket that is a phone number published %d requests", published)
	}
	within(t, ctx, 10*time.Second, jsSet("confirm-ticket", "INC-20431"))
	shot(t, ctx, "subject-deletion-confirmation")
	checkAxe(t, ctx, "subject deletion confirmation")
	within(t, ctx, 60*time.Second, jsClick("confirm-delete-button"), chromedp.WaitVisible(tid("toast-success")))
	msg := evalString(t, ctx, `document.querySelector('[data-testid="toast-success"]').textContent`)
	if !strings.Contains(msg, "3 contacts") {
		t.Errorf("toast %q does not name the 3 contacts", msg)
	}
	if n := countOf(t, ctx, `#toasts .toast`); n != 1 {
		t.Errorf("%d toasts, want 1", n)
	}

	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Ticket: "INC-20431"})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit entries with the ticket: %d %v", len(entries), err)
	}
	e := entries[0]
	var ids []string
	for _, c := range subject {
		ids = append(ids, c.ID)
	}
	got := slices.Clone(e.ContactIDs)
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) || e.ReasonCode != "retention" || e.Status != schemas.StatusSucceeded || e.Functionality != "Delete Contact" {
		t.Errorf("audit entry %+v", e)
	}
	inv := p.inventory(t)
	for _, c := range subject {
		if n := inv[c.ID].Total(); n != 0 {
			t.Errorf("contact %s of the subject still has %d items", c.ID, n)
		}
	}
	if inv[other.ID].Total() != before.Total() {
		t.Errorf("another person's contact changed: %d -> %d items", before.Total(), inv[other.ID].Total())
	}
	// The phone number typed never reached the audit log.
	for _, e := range entries {
		if s := fmt.Sprintf("%+v", e); strings.Contains(s, national) || strings.Contains(s, e164) {
			t.Error("the audit entry holds the phone number searched for")
		}
	}
}

// Legal places a hold and lifts it with the keyboard only; while it holds,
// the DPO's Delete Contact button is disabled and says why, a deletion
// confirmed in a confirmation opened before the hold is refused with the
// reason, and a request mixing the held contact with a free one deletes the
// free one only; after the lift the DPO deletes with the keyboard only.
func TestBrowserLegalHoldFlow(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 12, withLegal)
	base := p.app.URL()
	target := firstOfKind(t, p.demo, "voice")
	free := firstOfKind(t, p.demo, "chat")
	before := p.inventory(t)[target.ID]

	// The DPO opens the confirmation before any hold exists.
	dpo := tab()
	signIn(t, dpo, base, "dpo")
	openRecord(t, dpo, target.ID)
	within(t, dpo, 20*time.Second, jsClick("delete-contact-button"), chromedp.WaitVisible(tid("confirm-reason")))

	legal := tab()
	signIn(t, legal, base, "legal")
	openRecord(t, legal, target.ID)
	if present(t, legal, "delete-contact-button") {
		t.Error("legal may not delete, yet sees Delete Contact")
	}
	// Keyboard only: focus the button, Enter, pick a reason with the arrow
	// keys, type a ticket, Tab to the confirm button, Enter.
	within(t, legal, 20*time.Second,
		jsFocus("place-hold-button"),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(tid("hold-modal")),
		poll(`document.activeElement && document.activeElement.dataset.testid === 'hold-reason'`),
		chromedp.KeyEvent(kb.ArrowDown),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent("LEGAL-2026-114"),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent("\t"),
		poll(`document.activeElement && document.activeElement.dataset.testid === 'hold-confirm-button'`),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(tid("hold-banner")),
		chromedp.WaitVisible(tid("lift-hold-button")),
	)
	waitHeld(t, p, target.ID, true)
	holds, err := p.app.Stores.Holds.Held(t.Context(), target.ID)
	if err != nil || holds[target.ID].Ticket != "LEGAL-2026-114" || holds[target.ID].PlacedBy != "legal" {
		t.Fatalf("hold %+v %v", holds[target.ID], err)
	}

	// The confirmation the DPO opened earlier: Delete is refused, with the reason.
	within(t, dpo, 30*time.Second, jsClick("confirm-delete-button"), chromedp.WaitVisible(tid("confirm-held")), chromedp.WaitVisible(tid("confirm-error")))
	if txt := evalString(t, dpo, `document.querySelector('[data-testid="confirm-error"]').textContent`); !strings.Contains(txt, "legal hold") {
		t.Errorf("refusal says %q", txt)
	}
	if present(t, dpo, "confirm-delete-button") {
		t.Error("the confirmation still offers to delete a held contact")
	}
	if sub := evalString(t, dpo, `document.querySelector('[data-testid="confirm-delete-modal"] .modal-sub').textContent`); sub != "Nothing was deleted." {
		t.Errorf("the refusal's subtitle says %q", sub)
	}
	shot(t, dpo, "held-contact-deletion-refused")
	checkAxe(t, dpo, "refused deletion of a held contact")
	within(t, dpo, 10*time.Second, chromedp.KeyEvent(kb.Escape), chromedp.WaitNotPresent(tid("confirm-delete-modal")))

	// The record shows the hold and a disabled button that says why.
	openRecord(t, dpo, target.ID)
	within(t, dpo, 10*time.Second, chromedp.WaitVisible(tid("contact-hold-badge")), chromedp.WaitVisible(tid("delete-disabled-reason")))
	disabled := evalString(t, dpo, `String(document.querySelector('[data-testid="delete-contact-button"]').disabled) + ' ' + document.querySelector('[data-testid="delete-contact-button"]').getAttribute('aria-describedby')`)
	if disabled != "true delete-disabled-reason" {
		t.Errorf("Delete Contact on a held contact: disabled/aria-describedby = %q", disabled)
	}
	shot(t, dpo, "held-contact-record")
	checkAxe(t, dpo, "record of a held contact")

	// A subject deletion of the held contact and a free one: the
	// confirmation says the held one is left out, and only the free one goes.
	shareSubject(t, p, target, free)
	within(t, dpo, 30*time.Second,
		jsClick("nav-subject"),
		chromedp.WaitVisible(tid("subject-form")),
		jsSet("subject-value", target.Phone),
		jsClick("subject-find"),
		chromedp.WaitVisible(tid("subject-table")),
		jsClick("subject-delete-button"),
		chromedp.WaitVisible(tid("confirm-held")),
		chromedp.WaitVisible(tid("confirm-reason")),
		jsClick("confirm-delete-button"),
		chromedp.WaitVisible(tid("toast-success")),
	)
	if msg := evalString(t, dpo, `document.querySelector('[data-testid="toast-success"]').textContent`); !strings.Contains(msg, free.ID) {
		t.Errorf("toast of the deletion that left the held contact out: %q", msg)
	}
	dismissToasts(t, dpo)
	inv := p.inventory(t)
	if inv[target.ID].Total() != before.Total() || inv[free.ID].Total() != 0 {
		t.Errorf("after the mixed request: held %d items (was %d), free %d", inv[target.ID].Total(), before.Total(), inv[free.ID].Total())
	}

	// Legal lifts the hold, keyboard only.
	openRecord(t, legal, target.ID)
	within(t, legal, 20*time.Second,
		jsFocus("lift-hold-button"),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(tid("hold-modal")),
		poll(`document.activeElement && document.activeElement.dataset.testid === 'hold-reason'`),
		chromedp.KeyEvent(kb.ArrowDown),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(tid("place-hold-button")),
	)
	waitHeld(t, p, target.ID, false)

	// The DPO deletes it, keyboard only: Delete Contact, Tab from Cancel to
	// Delete permanently, Enter.
	openRecord(t, dpo, target.ID)
	within(t, dpo, 60*time.Second,
		poll(`!document.querySelector('[data-testid="delete-contact-button"]').disabled`),
		jsFocus("delete-contact-button"),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(tid("confirm-reason")),
		poll(`document.activeElement && document.activeElement.dataset.testid === 'confirm-cancel-button'`),
		chromedp.KeyEvent("\t"),
		poll(`document.activeElement && document.activeElement.dataset.testid === 'confirm-delete-button'`),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(tid("toast-success")),
	)
	if n := p.inventory(t)[target.ID].Total(); n != 0 {
		t.Errorf("after the lift and the deletion the contact still has %d items", n)
	}
	places, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Functionality: stores.FunctionalityLegalHold})
	if err != nil || len(places) != 2 || places[0].Status != stores.AuditHoldLifted || places[1].Status != stores.AuditHoldPlaced ||
		places[1].Ticket != "LEGAL-2026-114" || places[0].Signature == "" {
		t.Errorf("legal hold audit entries: %+v %v", places, err)
	}
	verifyChain(t, p)
}

// dismissToasts closes every toast, so the next one awaited is new.
func dismissToasts(t *testing.T, ctx context.Context) {
	t.Helper()
	within(t, ctx, 10*time.Second,
		poll(`(() => { document.querySelectorAll('[data-testid="toast-dismiss"]').forEach((b) => b.click()); return true; })()`),
		poll(`document.querySelectorAll('#toasts .toast').length === 0`))
}

// Defect 1: a record open in a second tab follows a deletion made in the
// first (it says who deleted it, when, and links the audit entry), and a
// confirmation opened before the deletion and confirmed after it deletes
// nothing and is audited as not found, not as a second success.
func TestBrowserStaleTab(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 8, nil)
	base := p.app.URL()
	target := p.demo[0].ID

	a, b, c := tab(), tab(), tab()
	for _, ctx := range []context.Context{a, b, c} {
		signIn(t, ctx, base, "dpo")
		openRecord(t, ctx, target)
	}
	within(t, b, 20*time.Second, jsClick("delete-contact-button"), chromedp.WaitVisible(tid("confirm-reason")))
	within(t, a, 60*time.Second,
		jsClick("delete-contact-button"),
		chromedp.WaitVisible(tid("confirm-reason")),
		jsClick("confirm-delete-button"),
		chromedp.WaitVisible(tid("toast-success")),
	)
	// The third tab, left alone, shows the deletion without a reload.
	within(t, c, 30*time.Second, chromedp.WaitVisible(tid("contact-deleted-by")))
	txt := evalString(t, c, `document.querySelector('[data-testid="contact-deleted-by"]').textContent`)
	href := evalString(t, c, `document.querySelector('[data-testid="contact-deleted-audit-link"]').getAttribute('href')`)
	if !strings.Contains(txt, "dpo") || !strings.Contains(href, "request_id=") {
		t.Errorf("stale tab says %q, links %q", txt, href)
	}
	if present(t, c, "delete-contact-button") {
		t.Error("the stale tab still offers Delete Contact")
	}
	shot(t, c, "stale-tab-deleted")

	// The second tab confirms what it showed before: nothing is left.
	within(t, b, 60*time.Second, jsClick("confirm-delete-button"), chromedp.WaitVisible(tid("toast-info")))
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{ContactID: target})
	if err != nil || len(entries) != 2 {
		t.Fatalf("audit entries of the contact: %d %v", len(entries), err)
	}
	if entries[0].Status != schemas.StatusNotFound || entries[1].Status != schemas.StatusSucceeded {
		t.Errorf("audit statuses newest first: %s, %s; want not_found, succeeded", entries[0].Status, entries[1].Status)
	}
	// A confirmation opened now names the earlier deletion and offers none.
	openDeleted := tab()
	signIn(t, openDeleted, base, "dpo")
	within(t, openDeleted, 20*time.Second,
		chromedp.Navigate(base+"/#/contacts/"+target),
		chromedp.WaitVisible(tid("contact-deleted-by")),
	)
}
