package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axeFile is axe-core, vendored so the check runs offline (see its README).
var axeFile = filepath.Join("testdata", "axe-core", "axe.min.js")

// axeIntegrity is the npm package's published integrity of axe.min.js 4.10.3.
const axeIntegrity = "sha256-iAlwwIFwc2DmTzTOol/5GJL1vJVnWwd2kluXCd2KaLs="

func TestAxeCoreIsTheReleasedFile(t *testing.T) {
	raw, err := os.ReadFile(axeFile)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if got := "sha256-" + base64.StdEncoding.EncodeToString(sum[:]); got != axeIntegrity {
		t.Fatalf("%s is %s, not the released file %s", axeFile, got, axeIntegrity)
	}
}

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// checkAxe runs axe-core over the page as it is now and fails on serious
// and critical violations; lesser ones are logged.
func checkAxe(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if !js[bool](t, ctx, `typeof window.axe !== 'undefined'`) {
		src, err := os.ReadFile(axeFile)
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err = chromedp.Run(c, chromedp.Evaluate[any](string(src)+"\n;undefined"))
		cancel()
		if err != nil {
			t.Fatalf("load axe-core: %v", err)
		}
	}
	// Colours are judged as they settle, not halfway through a fade-in.
	raw := js[string](t, ctx, `Promise.all(document.getAnimations().filter(a => isFinite(a.effect.getTiming().iterations)).map(a => a.finished.catch(() => {})))
		.then(() => axe.run(document, { resultTypes: ['violations'] })).then(r => JSON.stringify(r.violations))`)
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		var where []string
		for i, n := range v.Nodes {
			if i == 4 {
				where = append(where, fmt.Sprintf("and %d more", len(v.Nodes)-4))
				break
			}
			where = append(where, fmt.Sprintf("%v: %s", n.Target, strings.ReplaceAll(n.Summary, "\n", " ")))
		}
		msg := fmt.Sprintf("%s: %s (%s) %s\n  %s", page, v.ID, v.Impact, v.Help, strings.Join(where, "\n  "))
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
}

// axe-core over the sign-in page, Contact Search (also with an error at a
// field and past its last page), the contact record, the delete
// confirmation, the 'Deleting Contact' modal, toasts and the Audit Log with
// an entry opened, for each role's view, at both widths.
func TestBrowserAccessibility(t *testing.T) {
	tab := browser(t)
	slow := &slowObjects{}
	p := startPipeline(t, 6, nil)
	slow.Objects = p.app.Stores.Locator.Objects
	p.app.Stores.Locator.Objects = slow
	base := p.app.URL()
	seedAudit(t, p, []seededEntry{{actor: "dpo", at: time.Now().Add(-time.Hour).UTC()}, {actor: "jane.dpo", at: time.Now().UTC()}})
	for i, w := range layoutWidths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			page := func(name string) string { return fmt.Sprintf("%s at %d px", name, w) }
			ctx := tab()
			within(t, ctx, 20*time.Second, viewport(w), chromedp.Navigate(base+"/#/login"), chromedp.WaitVisible(tid("login-name")))
			checkAxe(t, ctx, page("sign-in"))
			within(t, ctx, 20*time.Second, jsClick("login-submit"), chromedp.WaitVisible(tid("login-error")))
			checkAxe(t, ctx, page("sign-in with an error"))

			signIn(t, ctx, base, "dpo")
			within(t, ctx, 20*time.Second, jsClick("nav-search"), chromedp.WaitVisible(tid("contact-row")))
			checkAxe(t, ctx, page("Contact Search"))
			within(t, ctx, 20*time.Second, jsSet("search-contact-id", "12345"), jsClick("search-submit"),
				chromedp.WaitVisible(tid("search-contact-id-error")))
			checkAxe(t, ctx, page("Contact Search with an error at a field"))
			within(t, ctx, 20*time.Second, chromedp.Navigate(base+"/#/search?page=99"), chromedp.WaitVisible(tid("search-past-end")))
			checkAxe(t, ctx, page("Contact Search past its last page"))

			openRecord(t, ctx, p.demo[i].ID)
			checkAxe(t, ctx, page("contact record"))
			within(t, ctx, 10*time.Second, jsClick("delete-contact-button"), chromedp.WaitVisible(tid("confirm-delete-modal")))
			checkAxe(t, ctx, page("delete confirmation"))
			slow.delay.Store(int64(4 * time.Second))
			within(t, ctx, 10*time.Second, jsClick("confirm-delete-button"), chromedp.WaitVisible(tid("progress-row-voice")))
			checkAxe(t, ctx, page("Deleting Contact"))
			slow.delay.Store(0)
			// The modal closes itself a moment after the outcome; the toast stays.
			within(t, ctx, 60*time.Second, chromedp.WaitVisible(tid("toast-success")), chromedp.WaitNotPresent(tid("deleting-modal")))
			checkAxe(t, ctx, page("success toast"))

			within(t, ctx, 20*time.Second, jsClick("nav-audit"), chromedp.WaitVisible(tid("audit-row")))
			checkAxe(t, ctx, page("Audit Log of one's own requests"))

			actx := tab()
			within(t, actx, 10*time.Second, viewport(w))
			signIn(t, actx, base, "auditor")
			within(t, actx, 20*time.Second, jsClick("nav-audit"), chromedp.WaitVisible(tid("audit-row")),
				jsClick("audit-expand"), chromedp.WaitVisible(tid("audit-channel-table")))
			js[bool](t, actx, `import('/static/js/toast.js').then(m => { m.toast({ kind: 'error', title: 'Deletion failed', message: 'Contact x: a data store refused the deletion.' }); return true; })`)
			checkAxe(t, actx, page("Audit Log with an entry open and an error toast"))
		})
	}
}
