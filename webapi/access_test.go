package webapi

import (
	"net/http"
	"testing"
)

// Roles of the access table. "token" is an API token with the dpo role.
var roles = []string{"anonymous", "agent", "dpo", "auditor", "admin", "token"}

func (h *harness) as(role string) caller {
	switch role {
	case "anonymous":
		return caller{}
	case "token":
		return h.token()
	default:
		return h.login(role)
	}
}

// TestAccess calls every endpoint as every role and checks the status. For
// cookie sessions, state-changing calls are also made without the CSRF
// token, which must be refused.
func TestAccess(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	del := map[string]any{"contact_ids": []string{contactA}}
	login := map[string]string{"name": "agent", "password": "agent-password"}

	type want map[string]int
	all := func(code int) want {
		w := want{}
		for _, r := range roles {
			w[r] = code
		}
		return w
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		want   want
		// noCSRF is the status for cookie sessions that leave out the CSRF
		// token on a state-changing call; 0 for safe methods.
		noCSRF want
	}{
		{"healthz", "GET", "/healthz", nil, all(200), nil},
		{"index", "GET", "/", nil, all(200), nil},
		{"static", "GET", "/static/js/app.js", nil, all(200), nil},
		{"config", "GET", "/api/v1/config", nil, all(200), nil},
		{"login", "POST", "/api/v1/login", login, all(200), nil},
		{"me", "GET", "/api/v1/me", nil,
			want{"anonymous": 401, "agent": 200, "dpo": 200, "auditor": 200, "admin": 200, "token": 200}, nil},
		{"search", "GET", "/api/v1/contacts?q=example", nil,
			want{"anonymous": 401, "agent": 200, "dpo": 200, "auditor": 403, "admin": 200, "token": 200}, nil},
		{"contact", "GET", "/api/v1/contacts/" + contactA, nil,
			want{"anonymous": 401, "agent": 200, "dpo": 200, "auditor": 403, "admin": 200, "token": 200}, nil},
		{"submit deletion", "POST", "/api/v1/deletions", del,
			want{"anonymous": 401, "agent": 403, "dpo": 202, "auditor": 403, "admin": 202, "token": 202},
			want{"agent": 403, "dpo": 403, "auditor": 403, "admin": 403}},
		{"deletion state", "GET", "/api/v1/deletions/" + requestByDPO, nil,
			want{"anonymous": 401, "agent": 403, "dpo": 200, "auditor": 200, "admin": 200, "token": 200}, nil},
		// Whoever may delete reads the entries of its own requests (the
		// token's are none), auditors all of them.
		{"audit", "GET", "/api/v1/audit", nil,
			want{"anonymous": 401, "agent": 403, "dpo": 200, "auditor": 200, "admin": 200, "token": 200}, nil},
		{"audit csv", "GET", "/api/v1/audit.csv", nil,
			want{"anonymous": 401, "agent": 403, "dpo": 200, "auditor": 200, "admin": 200, "token": 200}, nil},
		{"receipt", "GET", "/api/v1/audit/" + requestByDPO + "/receipt", nil,
			want{"anonymous": 401, "agent": 403, "dpo": 200, "auditor": 200, "admin": 200, "token": 404}, nil},
		{"agent suggestions", "GET", "/api/v1/suggestions?field=agent&prefix=a", nil,
			want{"anonymous": 401, "agent": 200, "dpo": 200, "auditor": 403, "admin": 200, "token": 200}, nil},
		{"user suggestions", "GET", "/api/v1/suggestions?field=user&prefix=d", nil,
			want{"anonymous": 401, "agent": 403, "dpo": 200, "auditor": 200, "admin": 200, "token": 200}, nil},
		{"receipt public key", "GET", "/api/v1/receipts/public-key", nil, all(200), nil},
		{"oidc login (not configured)", "GET", "/api/v1/oidc/login", nil, all(404), nil},
		{"unknown api path", "GET", "/api/v1/nope", nil, all(404), nil},
		{"logout everywhere", "POST", "/api/v1/sessions/logout-all", nil,
			want{"anonymous": 401, "agent": 204, "dpo": 204, "auditor": 204, "admin": 204, "token": 400},
			want{"agent": 403, "dpo": 403, "auditor": 403, "admin": 403}},
		// Logout last in spirit: each role gets a fresh session per call.
		{"logout", "POST", "/api/v1/logout", nil,
			want{"anonymous": 401, "agent": 204, "dpo": 204, "auditor": 204, "admin": 204, "token": 400},
			want{"agent": 403, "dpo": 403, "auditor": 403, "admin": 403}},
	}
	for _, tc := range tests {
		for _, role := range roles {
			t.Run(tc.name+"/"+role, func(t *testing.T) {
				c := h.as(role)
				res := h.do(c, tc.method, tc.path, tc.body, true)
				res.Body.Close()
				if res.StatusCode != tc.want[role] {
					t.Errorf("%s %s as %s: status %d, want %d", tc.method, tc.path, role, res.StatusCode, tc.want[role])
				}
				if code, ok := tc.noCSRF[role]; ok {
					res := h.do(h.as(role), tc.method, tc.path, tc.body, false)
					if res.StatusCode != code {
						t.Errorf("%s %s as %s without CSRF token: status %d, want %d", tc.method, tc.path, role, res.StatusCode, code)
					}
					if code == http.StatusForbidden && tc.want[role] != http.StatusForbidden {
						if e := decodeError(t, res); e.Code != "csrf" {
							t.Errorf("without CSRF token: code %q, want csrf", e.Code)
						}
					} else {
						res.Body.Close()
					}
				}
			})
		}
	}

	// The websocket: deleters may connect; others are refused before the
	// upgrade.
	wsWant := want{"anonymous": 401, "agent": 403, "dpo": 101, "auditor": 403, "admin": 101, "token": 101}
	for _, role := range roles {
		t.Run("websocket/"+role, func(t *testing.T) {
			conn, res, err := h.dial(h.as(role))
			if conn != nil {
				conn.Close()
			}
			if res == nil {
				t.Fatalf("dial as %s: %v", role, err)
			}
			if res.StatusCode != wsWant[role] {
				t.Errorf("websocket as %s: status %d, want %d", role, res.StatusCode, wsWant[role])
			}
		})
	}
}

// TestCSRFWrongToken: a token from another session does not count.
func TestCSRFWrongToken(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	a, b := h.login("dpo"), h.login("admin")
	a.csrf = b.csrf
	res := h.do(a, "POST", "/api/v1/deletions", map[string]any{"contact_ids": []string{contactA}}, true)
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", res.StatusCode)
	}
	if e := decodeError(t, res); e.Code != "csrf" {
		t.Fatalf("code %q, want csrf", e.Code)
	}
	if h.req.count() != 0 {
		t.Fatal("Submit was called")
	}
}

// TestWebsocketOrigin: a cookie session cannot open the socket from another
// site (cross-site websocket hijacking) or without an Origin.
func TestWebsocketOrigin(t *testing.T) {
	h := newHarness(t, defaultSendBuffer)
	c := h.login("dpo")
	for _, origin := range []string{"https://evil.example", ""} {
		hdr := http.Header{}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		hdr.Set("Cookie", c.cookie.String())
		conn, res, _ := websocketDial(h, hdr)
		if conn != nil {
			conn.Close()
			t.Fatalf("origin %q: connected", origin)
		}
		if res == nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q: want 403, got %v", origin, res)
		}
	}
}
