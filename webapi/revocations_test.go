package webapi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// memRevoker is the shared revocation record in memory.
type memRevoker struct {
	mu  sync.Mutex
	at  map[string]time.Time
	err error
}

func (m *memRevoker) RevokeSessions(_ context.Context, user string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if m.at == nil {
		m.at = map[string]time.Time{}
	}
	if at.After(m.at[user]) {
		m.at[user] = at
	}
	return nil
}

func (m *memRevoker) SessionsRevokedAt(_ context.Context, user string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.at[user], m.err
}

func (h *harness) status(c caller, path string) int {
	h.t.Helper()
	res := h.do(c, "GET", path, nil, false)
	res.Body.Close()
	return res.StatusCode
}

// Signing out everywhere on one replica ends the user's sessions and
// websockets on every replica sharing the record, within its check
// interval, and no one else's; a sign-in after it works; when the record
// cannot be read, a session is not taken as still signed in.
func TestLogoutEverywhereReachesOtherReplicas(t *testing.T) {
	shared := &memRevoker{}
	a, b := newHarness(t, 16), newHarness(t, 16)
	for _, h := range []*harness{a, b} {
		h.srv.revoked = &revocations{store: shared, every: 100 * time.Millisecond, seen: map[string]revocationRead{}}
	}
	onA, onB, otherOnB := a.login("dpo"), b.login("dpo"), b.login("dpo2")
	conn := b.mustDial(onB)
	if b.status(onB, "/api/v1/me") != http.StatusOK {
		t.Fatal("the session on B does not work to begin with")
	}

	res := a.do(onA, "POST", "/api/v1/sessions/logout-all", nil, true)
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout-all on A: %d", res.StatusCode)
	}
	if a.status(onA, "/api/v1/me") != http.StatusUnauthorized {
		t.Fatal("the session on A survived its own sign-out everywhere")
	}
	deadline := time.Now().Add(2 * time.Second)
	for b.status(onB, "/api/v1/me") != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the same user's session on B still works 2 s after signing out everywhere on A")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			if isTimeout(err) {
				t.Fatal("the user's websocket on B is still open 2 s after signing out everywhere on A")
			}
			break
		}
	}
	if b.status(otherOnB, "/api/v1/me") != http.StatusOK {
		t.Fatal("another user's session on B was ended")
	}
	time.Sleep(5 * time.Millisecond)
	if again := b.login("dpo"); b.status(again, "/api/v1/me") != http.StatusOK {
		t.Fatal("a sign-in after the sign-out everywhere does not work")
	}

	shared.mu.Lock()
	shared.err = errors.New("ledger down")
	shared.mu.Unlock()
	time.Sleep(150 * time.Millisecond) // past the check interval
	if got := b.status(otherOnB, "/api/v1/me"); got != http.StatusServiceUnavailable {
		t.Fatalf("with the record unreadable: %d, want 503", got)
	}
	if res := a.do(a.login("dpo2"), "POST", "/api/v1/sessions/logout-all", nil, true); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("logout-all with the record unwritable: %d, want 503", res.StatusCode)
	}
}
