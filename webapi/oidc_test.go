package webapi

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
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
}

func newFakeIdP(t *testing.T) *fakeIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &fakeIdP{key: key, groups: []string{"privacy-team"}}
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
		groups, _ := json.Marshal(idp.groups)
		claims := fmt.Sprintf(`{"iss":%q,"aud":"erasure","sub":"u-1","preferred_username":"pat.sso","nonce":%q,"groups":%s,"iat":%d,"exp":%d}`,
			idp.URL, idp.nonce, groups, time.Now().Unix(), time.Now().Add(time.Hour).Unix())
		tok := oidctest.SignIDToken(key, "k1", "RS256", claims)
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
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	start := func() (state string, cookie *http.Cookie) {
		res, err := noRedirect.Get(h.ts.URL + "/api/v1/oidc/login")
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
	callback := func(state, code string, cookie *http.Cookie) *http.Response {
		req, _ := http.NewRequest("GET", h.ts.URL+"/api/v1/oidc/callback?state="+url.QueryEscape(state)+"&code="+code, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
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
	if got.User != "pat.sso" || len(got.Roles) != 1 || got.Roles[0] != "dpo" {
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
