package webapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSessionIdleAndAbsoluteExpiry: a session ends after the idle timeout
// without use, and at its absolute end however busy it is.
func TestSessionIdleAndAbsoluteExpiry(t *testing.T) {
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	st := newSessionStore(8*time.Hour, 30*time.Minute)
	st.now = func() time.Time { return now }
	idle, _ := st.create("dpo", []string{"dpo"})
	busy, _ := st.create("dpo", []string{"dpo"})
	// busy is used every 20 minutes; idle not at all.
	for range 3 {
		now = now.Add(20 * time.Minute)
		if st.get(busy) == nil {
			t.Fatal("a session in use ended")
		}
	}
	if st.get(idle) != nil {
		t.Error("a session unused for an hour is still live")
	}
	for now.Before(time.Date(2026, 11, 1, 17, 59, 0, 0, time.UTC)) {
		now = now.Add(20 * time.Minute)
		st.get(busy)
	}
	now = time.Date(2026, 11, 1, 18, 0, 0, 0, time.UTC)
	if st.get(busy) != nil {
		t.Error("a session outlived its absolute lifetime")
	}
}

// TestLogoutAll ends every session of the user, and only theirs.
func TestLogoutAll(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	a, b, other := h.login("dpo"), h.login("dpo"), h.login("admin")
	ws := h.mustDial(b)
	waitClients(t, h, 1)
	res := h.do(a, "POST", "/api/v1/sessions/logout-all", nil, false)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("without CSRF token: %d, want 403", res.StatusCode)
	}
	res = h.do(a, "POST", "/api/v1/sessions/logout-all", nil, true)
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout-all: %d, want 204", res.StatusCode)
	}
	for name, c := range map[string]caller{"this session": a, "another session": b} {
		res := h.do(c, "GET", "/api/v1/me", nil, false)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s after logout-all: %d, want 401", name, res.StatusCode)
		}
	}
	res = h.do(other, "GET", "/api/v1/me", nil, false)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("another user's session: %d, want 200", res.StatusCode)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Error("websocket of a revoked session still open")
	}
}

func TestHSTS(t *testing.T) {
	for _, tc := range []struct {
		name          string
		secureCookies bool
		tls           bool
		want          string
	}{
		{"plain HTTP", false, false, ""},
		{"secure cookies behind a proxy", true, false, hstsValue},
		{"served over TLS", false, true, hstsValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newLoginServer(t, Config{SecureCookies: tc.secureCookies}, nil, nil)
			target := "http://erasure.test/healthz"
			if tc.tls {
				target = "https://erasure.test/healthz"
			}
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
			if got := w.Header().Get("Strict-Transport-Security"); got != tc.want {
				t.Errorf("Strict-Transport-Security %q, want %q", got, tc.want)
			}
		})
	}
}
