package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/erasure-project/erasure/stores"
)

// Browser tests drive the real UI in headless Chromium against the whole
// pipeline on embedded stores. Screenshots go to $ERASURE_SCREENSHOT_DIR
// (default: erasure-screenshots in the system temp directory).

func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("ERASURE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not installed: browser tests cannot run (apt-get install chromium)")
	}
	t.Skip("chromium not installed")
	return ""
}

func screenshotDir(t *testing.T) string {
	dir := os.Getenv("ERASURE_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "erasure-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts one headless Chromium for a test and returns a function
// that opens a fresh tab.
func browser(t *testing.T) func() context.Context {
	t.Helper()
	path := chromiumPath(t)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900))
	bctx, cancelB := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // start the browser without a timeout
		cancelB()
		cancelA()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cancelB(); cancelA() })
	return func() context.Context {
		tctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext()) // own cookies
		t.Cleanup(cancel)
		// The tab lives as long as the context of its first run: open it
		// here, without the timeouts the steps use.
		if err := chromedp.Do(tctx); err != nil {
			t.Fatalf("open tab: %v", err)
		}
		return tctx
	}
}

func tid(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id)) }

// The UI re-renders parts of the page as data arrives, so an element found
// by one protocol call can be gone by the next. These steps find and act on
// an element in one script, polled until the element is there and visible.

func jsClick(id string) chromedp.Action[chromedp.Void] {
	return jsClickCSS(fmt.Sprintf(`[data-testid=%q]`, id))
}

func jsClickCSS(css string) chromedp.Action[chromedp.Void] {
	return poll(fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		if (!e || !e.offsetParent || e.disabled) return false; e.click(); return true; })()`, css))
}

// jsSet types a value into an input as a user would, firing input and
// change events.
func jsSet(id, value string) chromedp.Action[chromedp.Void] {
	return poll(fmt.Sprintf(`(() => { const e = document.querySelector('[data-testid=%q]');
		if (!e || !e.offsetParent) return false; e.focus(); e.value = %q;
		e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));
		return true; })()`, id, value))
}

func jsFocus(id string) chromedp.Action[chromedp.Void] {
	return poll(fmt.Sprintf(`(() => { const e = document.querySelector('[data-testid=%q]');
		if (!e || !e.offsetParent) return false; e.focus(); return document.activeElement === e; })()`, id))
}

func poll(expr string) chromedp.Action[chromedp.Void] {
	p := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := p(ctx, t)
		return chromedp.Void{}, err
	}
}

// within runs steps with a bounded wait.
func within(t *testing.T, ctx context.Context, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		shot(t, ctx, "failure-"+strings.ReplaceAll(t.Name(), "/", "-"))
		t.Fatal(err)
	}
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(screenshotDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func present(t *testing.T, ctx context.Context, id string) bool {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := chromedp.Run(c, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('[data-testid=%q]').length`, id)))
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func signIn(t *testing.T, ctx context.Context, base, user string) {
	t.Helper()
	within(t, ctx, 20*time.Second,
		chromedp.Navigate(base+"/#/login"),
		chromedp.WaitVisible(tid("login-name")),
		jsSet("login-name", user),
		jsSet("login-password", user+"-pass"),
		jsClick("login-submit"),
		chromedp.WaitVisible(tid("user-name")),
	)
}

func openRecord(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	within(t, ctx, 20*time.Second,
		chromedp.WaitVisible(tid("nav-search")),
		jsClick("nav-search"),
		chromedp.WaitVisible(tid("search-contact-id")),
		jsSet("search-contact-id", id),
		jsClick("search-submit"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-testid="contact-row"][data-contact-id=%q]`, id))),
		jsClickCSS(fmt.Sprintf(`[data-testid="contact-row"][data-contact-id=%q] [data-testid="contact-link"]`, id)),
		chromedp.WaitVisible(tid("contact-title")),
		chromedp.WaitVisible(tid("artefacts-table")),
	)
}

func TestBrowserSignInAndPermissions(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 8, nil)
	base := p.app.URL()
	id := p.demo[0].ID
	for _, tc := range []struct {
		user             string
		search, audit, x bool // x: the Delete Contact button
	}{
		{"agent", true, false, false},
		{"dpo", true, true, true}, // the Audit Log of its own requests
		{"auditor", false, true, false},
		{"admin", true, true, true},
	} {
		t.Run(tc.user, func(t *testing.T) {
			ctx := tab()
			signIn(t, ctx, base, tc.user)
			if got := present(t, ctx, "nav-audit"); got != tc.audit {
				t.Errorf("audit nav present = %v", got)
			}
			if got := present(t, ctx, "nav-search"); got != tc.search {
				t.Errorf("search nav present = %v", got)
			}
			if !tc.search {
				return
			}
			openRecord(t, ctx, id)
			if tc.user == "dpo" {
				shot(t, ctx, "record-page-dpo")
			}
			if got := present(t, ctx, "delete-contact-button"); got != tc.x {
				t.Errorf("Delete Contact button present = %v, want %v", got, tc.x)
			}
		})
	}
}

func TestBrowserDeleteFlow(t *testing.T) {
	tab := browser(t)
	slow := &slowObjects{}
	p := startPipeline(t, 12, nil)
	slow.Objects = p.app.Stores.Locator.Objects
	p.app.Stores.Locator.Objects = slow
	base := p.app.URL()
	ctx := tab()
	signIn(t, ctx, base, "dpo")
	within(t, ctx, 10*time.Second, jsClick("nav-search"), chromedp.WaitVisible(tid("search-table")))
	shot(t, ctx, "search-page")

	// Success: confirm, live progress, toast, and the contact is gone.
	target := p.demo[0].ID
	openRecord(t, ctx, target)
	within(t, ctx, 10*time.Second,
		jsClick("delete-contact-button"),
		chromedp.WaitVisible(tid("confirm-delete-modal")),
	)
	text, err := chromedp.Run(ctx, chromedp.Text(tid("confirm-delete-modal")))
	if err != nil || !strings.Contains(text, target) {
		t.Errorf("confirmation does not name the contact: %q %v", text, err)
	}
	shot(t, ctx, "confirm-modal")
	slow.delay.Store(int64(1500 * time.Millisecond))
	within(t, ctx, 10*time.Second,
		jsClick("confirm-delete-button"),
		chromedp.WaitVisible(tid("deleting-modal")),
		chromedp.WaitVisible(tid("progress-row-voice")),
	)
	shot(t, ctx, "deleting-modal")
	within(t, ctx, 60*time.Second, chromedp.WaitVisible(tid("toast-success")))
	role, err := chromedp.Run(ctx, chromedp.AttributeValue(tid("toast-success"), "role"))
	if err != nil || role.Value != "status" {
		t.Errorf("success toast role = %q (%v)", role.Value, err)
	}
	shot(t, ctx, "toast-success")
	// The toast sits top-right, over where the record's buttons are.
	within(t, ctx, 10*time.Second, jsClick("toast-dismiss"), chromedp.WaitNotPresent(tid("toast-success")))
	slow.delay.Store(0)
	within(t, ctx, 20*time.Second,
		jsClick("nav-search"),
		chromedp.WaitVisible(tid("search-contact-id")),
		jsSet("search-contact-id", target),
		jsClick("search-submit"),
		chromedp.WaitVisible(tid("search-empty")),
	)
	if rem, err := p.app.Stores.Locator.Remaining(t.Context(), target); err != nil || rem.Total() != 0 {
		t.Errorf("after the UI deletion: %v %v", rem, err)
	}

	// Closing the modal before completion suppresses the toast.
	second := p.demo[1].ID
	openRecord(t, ctx, second)
	slow.delay.Store(int64(2 * time.Second))
	within(t, ctx, 10*time.Second, jsClick("delete-contact-button"))
	within(t, ctx, 10*time.Second, chromedp.WaitVisible(tid("confirm-delete-button")))
	within(t, ctx, 10*time.Second, jsClick("confirm-delete-button"))
	within(t, ctx, 10*time.Second, chromedp.WaitVisible(tid("deleting-close-button")))
	within(t, ctx, 10*time.Second, jsClick("deleting-close-button"))
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := p.app.Stores.Ledger.ByContact(t.Context(), second, 1); err == nil && len(st) == 1 && st[0].Outcome != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // give a (wrong) toast time to appear
	if present(t, ctx, "toast-success") || present(t, ctx, "toast-error") {
		t.Error("a toast appeared after the modal was closed")
	}
	slow.delay.Store(0)

	// Failure: a store refuses deletes; failure toast with the reason.
	slow.fail.Store(true)
	var voice string
	for _, c := range p.demo[2:] {
		if c.Kind == "voice" {
			voice = c.ID
			break
		}
	}
	openRecord(t, ctx, voice)
	within(t, ctx, 60*time.Second,
		jsClick("delete-contact-button"),
		chromedp.WaitVisible(tid("confirm-delete-button")),
		jsClick("confirm-delete-button"),
		chromedp.WaitVisible(tid("toast-error")),
	)
	role, err = chromedp.Run(ctx, chromedp.AttributeValue(tid("toast-error"), "role"))
	if err != nil || role.Value != "alert" {
		t.Errorf("failure toast role = %q (%v)", role.Value, err)
	}
	shot(t, ctx, "toast-failure")
	slow.fail.Store(false)
	if _, err := p.app.Stores.Index.Get(t.Context(), "contacts", voice); err != nil {
		t.Errorf("contact not findable after a failed deletion: %v", err)
	}

	// The auditor sees both outcomes, filters, and exports.
	actx := tab()
	signIn(t, actx, base, "auditor")
	within(t, actx, 20*time.Second,
		jsClick("nav-audit"),
		chromedp.WaitVisible(tid("audit-table")),
		chromedp.WaitVisible(tid("audit-row")),
	)
	setting, err := chromedp.Run(actx, chromedp.Evaluate[string](`document.querySelector('[data-testid="audit-setting"]').value`))
	if err != nil || !strings.Contains(setting, "Data Deletion") {
		t.Errorf("audit page does not show the Setting name: %q %v", setting, err)
	}
	shot(t, actx, "audit-log")
	rows, err := chromedp.Run(actx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="audit-row"]').length`))
	if err != nil || rows != 3 {
		t.Errorf("audit rows = %d (%v), want 3", rows, err)
	}
	// Each entry's Receipt link downloads the signed receipt of its request.
	checkReceiptDownload(t, actx, p, target)
	within(t, actx, 20*time.Second,
		jsSet("audit-user", "nobody"),
		jsClick("audit-apply"),
		chromedp.WaitVisible(tid("audit-empty")),
	)
	csv, err := chromedp.Run(actx, chromedp.Evaluate[string](
		`fetch(document.querySelector('[data-testid="audit-export"]').href).then(r => r.text())`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(csv, target) {
		t.Error("export of a filtered view (user nobody) contains entries")
	}
	entries, err := p.app.Stores.Ledger.Audit(t.Context(), stores.AuditFilter{Actor: "dpo"})
	if err != nil || len(entries) != 3 {
		t.Errorf("audit entries by dpo: %d %v", len(entries), err)
	}
}

// The confirmation modal is keyboard operable: focus moves into it, Tab
// stays inside it, Escape closes it and focus returns to the button.
func TestBrowserModalKeyboard(t *testing.T) {
	tab := browser(t)
	p := startPipeline(t, 4, nil)
	ctx := tab()
	signIn(t, ctx, p.app.URL(), "dpo")
	openRecord(t, ctx, p.demo[0].ID)
	within(t, ctx, 10*time.Second,
		jsFocus("delete-contact-button"),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(tid("confirm-delete-modal")),
	)
	focused := func() (string, bool) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		inModal, err := chromedp.Run(c, chromedp.Evaluate[bool](`!!document.activeElement.closest('[data-testid="confirm-delete-modal"]')`))
		if err != nil {
			t.Fatal(err)
		}
		id, err := chromedp.Run(c, chromedp.Evaluate[string](`document.activeElement.getAttribute('data-testid') || ''`))
		if err != nil {
			t.Fatal(err)
		}
		return id, inModal
	}
	if _, in := focused(); !in {
		t.Fatal("focus did not move into the confirmation modal")
	}
	for range 8 {
		within(t, ctx, 5*time.Second, chromedp.KeyEvent("\t"))
		if id, in := focused(); !in {
			t.Fatalf("Tab left the modal (focus on %q)", id)
		}
	}
	within(t, ctx, 10*time.Second, chromedp.KeyEvent(kb.Escape))
	for deadline := time.Now().Add(10 * time.Second); present(t, ctx, "confirm-delete-modal"); {
		if time.Now().After(deadline) {
			t.Fatal("Escape did not close the confirmation modal")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if id, _ := focused(); id != "delete-contact-button" {
		t.Errorf("focus after Escape is on %q, want the Delete Contact button", id)
	}
}
