package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/receipt"
)

// TestAuditReceipt: after a real deletion and a late channel result, the
// receipt from `audit receipt` holds both entries and verifies with the
// public key alone; the key the CLI prints is the one the web API
// publishes; a count edited in the file fails verification, naming why.
func TestAuditReceipt(t *testing.T) {
	p := startPipeline(t, 12, nil)
	target := p.demo[0].ID
	code, stdout, stderr := cli(t, "", "delete", "--brokers", p.broker.Addr(), "--data", p.cfg.DataDir, "--actor", "receipt-test", "--wait", "--json", "--timeout", "90s", target)
	if code != 0 {
		t.Fatalf("delete exit %d\n%s\n%s", code, stdout, stderr)
	}
	var out schemas.DeletionCompleted
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	// A result that arrives after the decision is audited as a late entry
	// under the same request ID; the receipt must carry it.
	late, _, err := p.app.Stores.Ledger.Amend(t.Context(), schemas.ChannelCompleted{
		Type: schemas.TypeChannelCompleted, SchemaVersion: schemas.Version, RequestID: out.RequestID,
		Channel: schemas.ChannelVoice, Status: schemas.StatusSucceeded, CompletedAt: time.Now().UTC(),
		Artefacts: []schemas.ArtefactCount{{Artefact: "call_recordings"}}, RequestDigest: out.RequestDigest,
	})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	file, pemFile := filepath.Join(dir, "r.json"), filepath.Join(dir, "pub.pem")
	code, stdout, stderr = cli(t, "", "audit", "receipt", out.RequestID, "--data", p.cfg.DataDir, "--out", file)
	if code != 0 {
		t.Fatalf("audit receipt exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, pemKey, stderr := cli(t, "", "audit", "receipt", "public-key", "--data", p.cfg.DataDir)
	if code != 0 {
		t.Fatalf("audit receipt public-key exit %d: %s", code, stderr)
	}
	if err := os.WriteFile(pemFile, []byte(pemKey), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(p.app.URL() + "/api/v1/receipts/public-key")
	if err != nil {
		t.Fatal(err)
	}
	published, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(published) != pemKey {
		t.Errorf("the web API publishes\n%s\nthe CLI prints\n%s", published, pemKey)
	}

	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("receipt file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	r, err := receipt.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != 2 || !r.Entries[0].IsDecision() || r.Entries[1].Seq != late.Seq || r.Entries[1].Amends != r.Entries[0].Seq {
		t.Fatalf("receipt entries %+v: want the decision and the late entry", r.Entries)
	}
	code, stdout, _ = cli(t, "", "audit", "receipt", "verify", file, "--public-key", pemFile)
	want := fmt.Sprintf("receipt valid: request %s, 2 entries, signed by key %s\n", out.RequestID, r.KeyID)
	if code != 0 || stdout != want {
		t.Fatalf("verify: exit %d %q, want 0 %q", code, stdout, want)
	}
	// Without --out the receipt goes to standard output.
	if code, stdout, _ := cli(t, "", "audit", "receipt", "--data", p.cfg.DataDir, out.RequestID); code != 0 || !strings.Contains(stdout, `"request_id": "`+out.RequestID+`"`) {
		t.Errorf("audit receipt to stdout: exit %d\n%s", code, stdout)
	}

	// One count edited.
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	edited := false
	for _, ch := range doc["entries"].([]any)[0].(map[string]any)["channels"].([]any) {
		for _, a := range ch.(map[string]any)["artefacts"].([]any) {
			if a := a.(map[string]any); !edited && a["deleted"].(float64) > 0 {
				a["deleted"] = a["deleted"].(float64) - 1
				edited = true
			}
		}
	}
	if !edited {
		t.Fatal("the deletion deleted nothing: no count to edit")
	}
	tampered, _ := json.MarshalIndent(doc, "", "  ")
	bad := filepath.Join(dir, "tampered.json")
	if err := os.WriteFile(bad, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = cli(t, "", "audit", "receipt", "verify", bad, "--public-key", pemFile)
	if code != 1 || stdout != "receipt INVALID: signature does not match the receipt\n" {
		t.Errorf("tampered receipt: exit %d %q, want 1 and the reason", code, stdout)
	}
}

func TestAuditReceiptBadInput(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no request ID", []string{"audit", "receipt", "--data", data}, 2, "usage: erasure audit receipt REQUEST-ID"},
		{"two request IDs", []string{"audit", "receipt", "--data", data, "0190aaaa-0000-7000-8000-000000000000", "0190aaaa-0000-7000-8000-000000000001"}, 2, "usage:"},
		{"not a request ID", []string{"audit", "receipt", "--data", data, "0190AAAA-0000-7000-8000-000000000000"}, 1, "request ID: not a request ID"},
		{"wildcard", []string{"audit", "receipt", "--data", data, "*"}, 1, "request ID: not a request ID"},
		{"no key yet", []string{"audit", "receipt", "--data", data, "0190aaaa-0000-7000-8000-000000000000"}, 1, "receipt key"},
		{"public key without a key", []string{"audit", "receipt", "public-key", "--data", data}, 1, "receipt key"},
		{"verify without key", []string{"audit", "receipt", "verify", "r.json"}, 2, "usage: erasure audit receipt verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := cli(t, "", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.want)
			}
			if strings.Contains(stderr, "0190AAAA") {
				t.Error("the error repeats the input")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(data, "receipt.key")); err == nil {
		t.Error("a read-only command created a signing key")
	}
}

// downloadReceipt clicks the receipt link of the audit row of requestID in
// the tab and returns the name the browser saved the file under and its
// content, as a user clicking it would get them.
func downloadReceipt(t *testing.T, ctx context.Context, requestID string) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Subscribed before the click, so no event is missed.
	begins := chromedp.BrowserEvents(c, cdpbrowser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(c, cdpbrowser.DownloadProgress)
	enabled := true
	if _, err := chromedp.CallBrowser(c, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
		DownloadPath: dir, EventsEnabled: &enabled,
	}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	within(t, ctx, 10*time.Second, jsClickCSS(fmt.Sprintf(`[data-testid="audit-row"][data-request-id=%q] [data-testid="audit-receipt"]`, requestID)))
	var name, guid string
	for ev, err := range begins {
		if err != nil {
			t.Fatalf("no download began: %v", err)
		}
		name, guid = ev.SuggestedFilename, ev.GUID
		break
	}
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download did not complete: %v", err)
		}
		if ev.GUID != guid {
			continue
		}
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			t.Fatal("download canceled")
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			break
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, guid))
	if err != nil {
		t.Fatal(err)
	}
	return name, raw
}

// checkReceiptDownload downloads, in the Audit Log open in the tab, the
// receipt of the deletion of contact and verifies it with the key the
// server publishes.
func checkReceiptDownload(t *testing.T, ctx context.Context, p *pipeline, contact string) {
	t.Helper()
	st, err := p.app.Stores.Ledger.ByContact(t.Context(), contact, 1)
	if err != nil || len(st) != 1 {
		t.Fatalf("deletion of %s: %v", contact, err)
	}
	id := st[0].Request.RequestID
	name, raw := downloadReceipt(t, ctx, id)
	if want := "deletion-receipt-" + id + ".json"; name != want {
		t.Errorf("downloaded as %q, want %q", name, want)
	}
	res, err := http.Get(p.app.URL() + "/api/v1/receipts/public-key")
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := io.ReadAll(res.Body)
	res.Body.Close()
	pub, err := receipt.DecodePublicKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	r, err := receipt.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := receipt.Verify(r, pub); err != nil || r.RequestID != id {
		t.Errorf("downloaded receipt of %s: %v", r.RequestID, err)
	}
}
