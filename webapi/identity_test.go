package webapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/erasure-project/erasure/schemas"
)

func TestSSOPrincipal(t *testing.T) {
	const iss = "https://idp.example"
	long := strings.Repeat("a", 116)
	for _, tt := range []struct {
		name, subject string
		hashed        bool
	}{
		{"plain", "u-1", false},
		{"longest plain", long[:115], false},
		{"too long", long, true},
		{"outside the pattern", "auth0|5f7c8ec7c33c6c004bbafe82", true},
		{"a colon", "sha256:" + strings.Repeat("0", 64), true},
		{"non-ASCII", "üser", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := ssoPrincipal(iss, tt.subject)
			if !principalRE.MatchString(p) || !IsSSOName(p) {
				t.Fatalf("%q is not an SSO principal", p)
			}
			if got := strings.Contains(p, ":sha256:"); got != tt.hashed {
				t.Errorf("%q: hashed %v, want %v", p, got, tt.hashed)
			}
			if !tt.hashed && !strings.HasSuffix(p, ":"+tt.subject) {
				t.Errorf("%q does not end with the subject", p)
			}
		})
	}
	if ssoPrincipal(iss, "u-1") == ssoPrincipal("https://other.example", "u-1") {
		t.Error("the same subject of two issuers is one principal")
	}
	// A plain subject can never spell the hashed form of another.
	hashed := ssoPrincipal(iss, long)
	if ssoPlainSubject.MatchString(strings.TrimPrefix(hashed, hashed[:len("sso:01234567:")])) {
		t.Errorf("hashed form %q is also a plain subject", hashed)
	}
}

// An email names the user on screen only when the provider verified it.
func TestSSODisplayName(t *testing.T) {
	const email = "pat@example.com"
	for _, tt := range []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"user name first", map[string]any{"preferred_username": "pat", "email": email, "email_verified": true}, "pat"},
		{"unverified email", map[string]any{"email": email}, ""},
		{"email_verified false", map[string]any{"email": email, "email_verified": false}, ""},
		{"email_verified true", map[string]any{"email": email, "email_verified": true}, email},
		{"email_verified as a string", map[string]any{"email": email, "email_verified": "true"}, email},
		{"control characters", map[string]any{"preferred_username": "pat\n"}, ""},
		{"nothing", map[string]any{"sub": "u-1"}, ""},
	} {
		if got := ssoDisplayName(tt.claims); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// No configured user or API token may be named in the SSO namespace, so
// none can pass for an SSO user (nor inherit one's requests).
func TestSSONamesRefusedForLocalAccounts(t *testing.T) {
	hash := hashFor(t, "pw")
	for name, cfg := range map[string]Config{
		"user":  {Users: []User{{Name: "sso:0a1b2c3d:u-1", PasswordHash: hash, Roles: []string{"dpo"}}}},
		"token": {APITokens: []APIToken{{Name: "SSO:bulk", TokenSHA256: sha256Hex("t"), Roles: []string{"dpo"}}}},
	} {
		deps := Deps{Contacts: &fakeIndex{}, Inventory: fakeInventory{}, Ledger: &fakeLedger{}, Requests: &fakeRequester{}}
		_, err := newServer(cfg, deps, defaultSendBuffer)
		if err == nil || !strings.Contains(err.Error(), "reserved for single sign-on") {
			t.Errorf("%s in the SSO namespace: %v", name, err)
		}
	}
}

// An SSO user whose preferred_username is a local user's name is another
// principal: they get none of the local user's requests over the
// websocket, and their own deletions carry their SSO principal (the
// requested_by the aggregator audits as the entry's user).
func TestSSOUserIsNotTheLocalUserOfTheSameName(t *testing.T) {
	idp := newFakeIdP(t)
	idp.ident = map[string]string{"sub": "u-7", "preferred_username": "dpo", "email": "dpo@example.com"}
	h := newHarness(t, defaultSendBuffer)
	var err error
	h.srv.oidc, err = newOIDCClient(OIDCConfig{
		Issuer: idp.URL, ClientID: "erasure", ClientSecret: "s", RedirectURL: h.ts.URL + "/api/v1/oidc/callback",
		GroupRoles: map[string][]string{"privacy-team": {"admin"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	state, cookie := oidcStart(t, h, idp)
	res := oidcCallback(t, h, state, "good-code", cookie)
	sso := caller{name: "sso dpo"}
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			sso.cookie = c
		}
	}
	if sso.cookie == nil {
		t.Fatalf("callback: %d, no session", res.StatusCode)
	}
	meRes := h.do(sso, "GET", "/api/v1/me", nil, false)
	var me meResponse
	_ = json.NewDecoder(meRes.Body).Decode(&me)
	meRes.Body.Close()
	principal := ssoPrincipal(idp.URL, "u-7")
	if me.User != principal || me.User == "dpo" || me.DisplayName != "dpo" || me.Account != "sso" {
		t.Fatalf("me: %+v, want principal %q shown as dpo", me, principal)
	}
	sso.csrf = me.CSRFToken

	// The local dpo's requests, in memory and in the ledger, stay theirs.
	local := h.login("dpo")
	localWS, ssoWS := h.mustDial(local), h.mustDial(sso)
	rid := h.submit(local, contactA)
	watch(t, ssoWS, rid, requestByDPO)
	h.progress(rid, schemas.ChannelVoice)
	h.outcome(rid, "dpo", []string{contactA})
	if m, ok := read(t, ssoWS, 500*time.Millisecond); ok {
		t.Errorf("SSO user received the local user's %+v", m)
	}
	drain(t, localWS, 2)

	// The SSO user's deletion is requested (and so audited) under the SSO
	// principal, and its outcome reaches them, not the local dpo.
	ssoWS = h.mustDial(sso) // a read that timed out leaves a connection unusable
	own := h.submit(sso, contactB)
	if by := h.req.last().RequestedBy; by != principal {
		t.Errorf("requested_by %q, want %q", by, principal)
	}
	h.outcome(own, principal, []string{contactB})
	if m, ok := read(t, ssoWS, 5*time.Second); !ok || m.RequestID != own || m.Type != "outcome" {
		t.Errorf("SSO user's own outcome: %+v (ok=%v)", m, ok)
	}
	if m, ok := read(t, localWS, 300*time.Millisecond); ok {
		t.Errorf("local dpo received the SSO user's %+v", m)
	}

	// The Audit Log filters by the SSO principal; the CSV names it and its
	// kind, and never the display name.
	res = h.do(sso, "GET", "/api/v1/audit?user="+principal, nil, false)
	res.Body.Close()
	h.ledger.mu.Lock()
	actor := h.ledger.last.ActorPrefix
	h.ledger.mu.Unlock()
	if res.StatusCode != http.StatusOK || actor != principal {
		t.Errorf("audit filter by SSO principal: %d, actor %q", res.StatusCode, actor)
	}
	h.ledger.mu.Lock()
	h.ledger.audit = append(h.ledger.audit, h.ledger.audit[0])
	h.ledger.audit[1].Seq, h.ledger.audit[1].Actor, h.ledger.audit[1].RequestID = 2, principal, own
	h.ledger.mu.Unlock()
	res = h.do(sso, "GET", "/api/v1/audit.csv", nil, false)
	var body strings.Builder
	_, _ = io.Copy(&body, res.Body)
	res.Body.Close()
	// account is followed by reason_code, ticket, held_contact_ids and
	// producer, empty here.
	if !strings.Contains(body.String(), ","+principal+",") || !strings.Contains(body.String(), ",sso,,,,\n") ||
		!strings.Contains(body.String(), ",local,,,,\n") || strings.Contains(body.String(), "example.com") {
		t.Errorf("CSV:\n%s", body.String())
	}
}

// drain reads n messages, whatever they are.
func drain(t *testing.T, conn *websocket.Conn, n int) {
	t.Helper()
	for range n {
		if _, ok := read(t, conn, 5*time.Second); !ok {
			t.Fatal("expected message missing")
		}
	}
}
