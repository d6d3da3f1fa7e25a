package webapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/sqlite"
)

// newLoginServer is a server with one user, dpo, over the fakes and the
// given attempt store (nil: in memory), its clock at now.
func newLoginServer(t *testing.T, cfg Config, attempts AttemptStore, now *time.Time) *Server {
	t.Helper()
	cfg.Users = []User{{Name: "dpo", PasswordHash: hashFor(t, "dpo-password"), Roles: []string{"dpo"}}}
	srv, err := newServer(cfg, Deps{Contacts: &fakeIndex{}, Inventory: fakeInventory{},
		Ledger: &fakeLedger{states: map[string]stores.RequestState{}}, Requests: &fakeRequester{}, Attempts: attempts}, defaultSendBuffer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if now != nil {
		srv.now = func() time.Time { return *now }
	}
	return srv
}

// sqliteAttempts is a SQLite ledger in a fresh file.
func sqliteAttempts(t *testing.T) *sqlite.Ledger {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return sqlite.NewLedger(db)
}

// signIn posts a sign-in from peer (host:port) with extra headers.
func signIn(t *testing.T, srv *Server, name, password, peer string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	body, _ := json.Marshal(loginRequest{Name: name, Password: password})
	r := httptest.NewRequest(http.MethodPost, "/api/v1/login", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = peer
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, r)
	return w
}

// TestLoginConcurrentWrongPasswords: 50 concurrent wrong passwords for one
// account from one address; only the free attempts reach the password
// check (answered 401), every other one is refused first (429 with
// Retry-After).
func TestLoginConcurrentWrongPasswords(t *testing.T) {
	for name, store := range map[string]func(t *testing.T) AttemptStore{
		"memory": func(*testing.T) AttemptStore { return nil },
		"sqlite": func(t *testing.T) AttemptStore { return sqliteAttempts(t) },
	} {
		t.Run(name, func(t *testing.T) {
			srv := newLoginServer(t, Config{}, store(t), nil)
			var mu sync.Mutex
			codes := map[int]int{}
			var wg sync.WaitGroup
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w := signIn(t, srv, "dpo", "wrong", "192.0.2.7:5000", nil)
					if w.Code == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
					mu.Lock()
					codes[w.Code]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			checked, refused := codes[http.StatusUnauthorized], codes[http.StatusTooManyRequests]
			t.Logf("50 concurrent wrong passwords: %d reached the password check, %d got 429", checked, refused)
			if checked > pairPolicy.Free || checked+refused != 50 {
				t.Errorf("status counts %v: want at most %d × 401 and the rest 429", codes, pairPolicy.Free)
			}
		})
	}
}

// TestLoginBackOffAndReset: past the free attempts each failure doubles the
// wait; the right password, once allowed, signs in and starts the account
// over.
func TestLoginBackOffAndReset(t *testing.T) {
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	srv := newLoginServer(t, Config{}, sqliteAttempts(t), &now)
	const peer = "192.0.2.7:5000"
	for i := range pairPolicy.Free {
		if w := signIn(t, srv, "dpo", "wrong", peer, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, w.Code)
		}
	}
	for _, wait := range []int{1, 2, 4, 8} {
		w := signIn(t, srv, "dpo", "dpo-password", peer, nil)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != strconv.Itoa(wait) {
			t.Fatalf("in back-off: %d, Retry-After %q; want 429, %d", w.Code, w.Header().Get("Retry-After"), wait)
		}
		now = now.Add(time.Duration(wait) * time.Second)
		if w := signIn(t, srv, "dpo", "wrong", peer, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("after waiting %ds: %d, want 401", wait, w.Code)
		}
	}
	now = now.Add(16 * time.Second)
	if w := signIn(t, srv, "dpo", "dpo-password", peer, nil); w.Code != http.StatusOK {
		t.Fatalf("right password after the wait: %d, want 200", w.Code)
	}
	// Reset: the free attempts are back.
	for i := range pairPolicy.Free {
		if w := signIn(t, srv, "dpo", "wrong", peer, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d after a success: %d, want 401", i+1, w.Code)
		}
	}
}

// TestLoginAttackerDoesNotLockOutOwner: an attacker hammering an account
// from one address backs off; its owner signing in from elsewhere does not.
func TestLoginAttackerDoesNotLockOutOwner(t *testing.T) {
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	cfg := Config{TrustedProxyHeader: "X-Forwarded-For", TrustedProxies: []string{"10.0.0.0/8"}}
	srv := newLoginServer(t, cfg, sqliteAttempts(t), &now)
	const ingress = "10.1.2.3:443"
	attacker := map[string]string{"X-Forwarded-For": "203.0.113.66"}
	refused := 0
	// An hour of hammering, one attempt a second.
	for range 3600 {
		if w := signIn(t, srv, "dpo", "guess", ingress, attacker); w.Code == http.StatusTooManyRequests {
			refused++
		}
		now = now.Add(time.Second)
	}
	if refused < 3500 {
		t.Errorf("attacker refused %d of 3600 times, want nearly all", refused)
	}
	if w := signIn(t, srv, "dpo", "guess", ingress, attacker); w.Code != http.StatusTooManyRequests {
		t.Errorf("attacker: %d, want 429", w.Code)
	}
	owner := map[string]string{"X-Forwarded-For": "198.51.100.20"}
	if w := signIn(t, srv, "dpo", "dpo-password", ingress, owner); w.Code != http.StatusOK {
		t.Errorf("owner from another address: %d, want 200", w.Code)
	}
}

// TestLoginLimitSharedAcrossServers: two servers over one SQLite ledger
// share the counters, as replicas do.
func TestLoginLimitSharedAcrossServers(t *testing.T) {
	ledger := sqliteAttempts(t)
	a := newLoginServer(t, Config{}, ledger, nil)
	b := newLoginServer(t, Config{}, ledger, nil)
	const peer = "192.0.2.7:5000"
	for i := range pairPolicy.Free {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		if w := signIn(t, srv, "dpo", "wrong", peer, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, w.Code)
		}
	}
	for name, srv := range map[string]*Server{"a": a, "b": b} {
		if w := signIn(t, srv, "dpo", "dpo-password", peer, nil); w.Code != http.StatusTooManyRequests {
			t.Errorf("server %s after failures spread over both: %d, want 429", name, w.Code)
		}
	}
}

func TestClientAddr(t *testing.T) {
	cfg := Config{TrustedProxyHeader: "X-Forwarded-For", TrustedProxies: []string{"10.0.0.0/8", "192.0.2.1"}}
	proxied := newLoginServer(t, cfg, nil, nil)
	direct := newLoginServer(t, Config{}, nil, nil)
	tests := []struct {
		name string
		srv  *Server
		peer string
		xff  []string
		want string
	}{
		{"no proxy configured: the socket", direct, "10.1.1.1:1", []string{"203.0.113.9"}, "10.1.1.1"},
		{"trusted peer: the header", proxied, "10.1.1.1:1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"trusted single address", proxied, "192.0.2.1:1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"untrusted peer: header ignored", proxied, "198.51.100.5:1", []string{"203.0.113.9"}, "198.51.100.5"},
		{"spoofed left entries ignored", proxied, "10.1.1.1:1", []string{"1.2.3.4, 203.0.113.9"}, "203.0.113.9"},
		{"proxy chain skipped", proxied, "10.1.1.1:1", []string{"203.0.113.9, 10.2.2.2", "10.3.3.3"}, "203.0.113.9"},
		{"no header: the peer", proxied, "10.1.1.1:1", nil, "10.1.1.1"},
		{"garbage: last vouched address", proxied, "10.1.1.1:1", []string{"203.0.113.9, bogus, 10.2.2.2"}, "10.2.2.2"},
		{"IPv6 peer", direct, "[2001:db8::1]:443", nil, "2001:db8::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.srv.clientAddr(r); got != tc.want {
				t.Errorf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := newServer(Config{TrustedProxies: []string{"not-a-cidr"}, Users: []User{{Name: "x", PasswordHash: hashFor(t, "p"), Roles: []string{"dpo"}}}},
		Deps{Contacts: &fakeIndex{}, Inventory: fakeInventory{}, Ledger: &fakeLedger{}, Requests: &fakeRequester{}}, 1); err == nil {
		t.Error("a bad trusted proxy was accepted")
	}
}
