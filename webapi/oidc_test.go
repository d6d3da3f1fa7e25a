package webapi

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"
)

// fakeIdP is an OpenID provider: discovery and keys from oidctest, plus a
// token endpoint that checks PKCE and issues an ID token with the nonce of
// the last authorization request.
type fakeIdP struct {
	*httptest.Server
	key    *rsa.PrivateKey
	mu     sync.Mutex
	nonce  string
	chall  string
	groups []string
	// ident holds the identity claims of the ID token (sub,
	// preferred_username, email).
	ident map[string]string
}

func newFakeIdP(t *testing.T) *fakeIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &fakeIdP{key: key, groups: []string{"privacy-team"},
		ident: map[string]string{"sub": "u-1", "preferred_username": "pat.sso"}}
	disc := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: "RS256"}}}
	mux := http.NewServeMux()
	mux.Handle("/", disc)
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		idp.mu.Lock()
		defer idp.mu.Unlock()
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		if r.Form.Get("code") != "good-code" || base64.RawURLEncoding.EncodeToString(sum[:]) != idp.chall {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		claims := map[string]any{"iss": idp.URL, "aud": "erasure", "nonce": idp.nonce, "groups": idp.groups,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range idp.ident {
			claims[k] = v
		}
		raw, _ := json.Marshal(claims)
		tok := oidctest.SignIDToken(key, "k1", "RS256", string(raw))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"at","token_type":"Bearer","expires_in":3600,"id_token":%q}`, tok)
	})
	idp.Server = httptest.NewServer(mux)
	disc.SetIssuer(idp.URL)
	t.Cleanup(idp.Close)
	return idp
}

func TestOIDCSignIn(t *testing.T) {
	idp := newFakeIdP(t)
	h := newHarness(t, defaultSendBuffer)
	var err error
	h.srv.oidc, err = newOIDCClient(OIDCConfig{
		Issuer: idp.URL, ClientID: "erasure", ClientSecret: "s", RedirectURL: h.ts.URL + "/api/v1/oidc/callback",
		GroupRoles: map[string][]string{"privacy-team": {"dpo"}, "audit": {"auditor"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := func() (string, *http.Cookie) { return oidcStart(t, h, idp) }
	callback := func(state, code string, cookie *http.Cookie) *http.Response {
		return oidcCallback(t, h, state, code, cookie)
	}
	session := func(res *http.Response) *http.Cookie {
		for _, c := range res.Cookies() {
			if c.Name == sessionCookie && c.Value != "" {
				return c
			}
		}
		return nil
	}

	// The happy path: a session with the roles of the user's groups.
	state, cookie := start()
	res := callback(state, "good-code", cookie)
	sc := session(res)
	if res.StatusCode != http.StatusOK || sc == nil || sc.SameSite != http.SameSiteStrictMode {
		t.Fatalf("callback: %d, session cookie %v", res.StatusCode, sc)
	}
	me := h.do(caller{cookie: sc}, "GET", "/api/v1/me", nil, false)
	var got meResponse
	_ = json.NewDecoder(me.Body).Decode(&got)
	me.Body.Close()
	if got.User != ssoPrincipal(idp.URL, "u-1") || got.DisplayName != "pat.sso" || got.Account != "sso" ||
		len(got.Roles) != 1 || got.Roles[0] != "dpo" {
		t.Fatalf("me: %+v", got)
	}

	// Replayed state, a state without its cookie, a bad code, and a user
	// without mapped groups: no session.
	if res := callback(state, "good-code", cookie); session(res) != nil || res.StatusCode != http.StatusSeeOther {
		t.Error("replayed state signed in")
	}
	state, _ = start()
	if res := callback(state, "good-code", nil); session(res) != nil {
		t.Error("state without cookie signed in")
	}
	state, cookie = start()
	if res := callback(state, "bad-code", cookie); session(res) != nil {
		t.Error("bad code signed in")
	}
	idp.mu.Lock()
	idp.groups = []string{"canteen"}
	idp.mu.Unlock()
	state, cookie = start()
	if res := callback(state, "good-code", cookie); session(res) != nil {
		t.Error("user without roles signed in")
	}
}

// oidcNoRedirect shows the sign-in's redirects instead of following them.
var oidcNoRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// oidcStart begins a sign-in and hands the authorization request's nonce
// and PKCE challenge to idp, as a browser visiting the provider would.
func oidcStart(t *testing.T, h *harness, idp *fakeIdP) (state string, cookie *http.Cookie) {
	t.Helper()
	res, err := oidcNoRedirect.Get(h.ts.URL + "/api/v1/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), idp.URL+"/auth") {
		t.Fatalf("login: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" {
		t.Fatalf("authorization request without PKCE or nonce: %v", q)
	}
	idp.mu.Lock()
	idp.nonce, idp.chall = q.Get("nonce"), q.Get("code_challenge")
	idp.mu.Unlock()
	for _, c := range res.Cookies() {
		if c.Name == oidcStateCookie {
			cookie = c
		}
	}
	return q.Get("state"), cookie
}

// oidcCallback is the provider's redirect back to the app.
func oidcCallback(t *testing.T, h *harness, state, code string, cookie *http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", h.ts.URL+"/api/v1/oidc/callback?state="+url.QueryEscape(state)+"&code="+code, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	res, err := oidcNoRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// syncBuffer is a log sink the server's goroutines can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The sign-in log line names the account by its subject; the email address
// or user name the session shows is personal data and stays out of logs.
func TestOIDCSignInLogsSubjectOnly(t *testing.T) {
	const sub, email, username = "a8f3c2e1-5d4b-4e7a-9c6f-0b1d2e3f4a5b", "pat.example@example.com", "pat.sso"
	for _, tt := range []struct {
		name        string
		ident       map[string]string
		wantDisplay string // the session's display name, unchanged by what is logged
	}{
		{"unverified email only", map[string]string{"sub": sub, "email": email}, ""},
		{"verified email only", map[string]string{"sub": sub, "email": email, "email_verified": "true"}, email},
		{"user name and email", map[string]string{"sub": sub, "preferred_username": username, "email": email}, username},
	} {
		t.Run(tt.name, func(t *testing.T) {
			idp := newFakeIdP(t)
			idp.ident = tt.ident
			h := newHarness(t, defaultSendBuffer)
			var logs syncBuffer
			h.srv.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var err error
			h.srv.oidc, err = newOIDCClient(OIDCConfig{
				Issuer: idp.URL, ClientID: "erasure", ClientSecret: "s", RedirectURL: h.ts.URL + "/api/v1/oidc/callback",
				GroupRoles: map[string][]string{"privacy-team": {"dpo"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			state, cookie := oidcStart(t, h, idp)
			res := oidcCallback(t, h, state, "good-code", cookie)
			var sc *http.Cookie
			for _, c := range res.Cookies() {
				if c.Name == sessionCookie && c.Value != "" {
					sc = c
				}
			}
			if res.StatusCode != http.StatusOK || sc == nil {
				t.Fatalf("callback: %d, session cookie %v; log:\n%s", res.StatusCode, sc, logs.String())
			}
			me := h.do(caller{cookie: sc}, "GET", "/api/v1/me", nil, false)
			var got meResponse
			_ = json.NewDecoder(me.Body).Decode(&got)
			me.Body.Close()
			if want := ssoPrincipal(idp.URL, sub); got.User != want || got.DisplayName != tt.wantDisplay {
				t.Errorf("session user %q, display %q; want %q, %q", got.User, got.DisplayName, want, tt.wantDisplay)
			}

			out := logs.String()
			var line string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, `msg="signed in"`) {
					line = l
				}
			}
			if !strings.Contains(line, "sub="+sub) || !strings.Contains(line, "method=oidc") {
				t.Errorf("sign-in line %q does not name the subject; log:\n%s", line, out)
			}
			for _, personal := range []string{email, username} {
				if strings.Contains(out, personal) {
					t.Errorf("log quotes %q:\n%s", personal, out)
				}
			}
		})
	}
}
