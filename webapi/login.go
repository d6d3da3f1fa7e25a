package webapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/erasure-project/erasure/consumers/aggregator"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
)

// functionalities are the audit log's Functionality values, in filter order.
var functionalities = []string{
	aggregator.Functionality[schemas.SourceUI],
	aggregator.Functionality[schemas.SourceCLI],
	aggregator.Functionality[schemas.SourceUpstream],
	aggregator.Functionality[schemas.SourceReplay],
	stores.FunctionalityLegalHold,
}

type configResponse struct {
	OIDC            bool              `json:"oidc"`
	DeadlineSeconds int               `json:"deadline_seconds"`
	Setting         string            `json:"setting"`
	Functionalities []string          `json:"functionalities"`
	Channels        []schemas.Channel `json:"channels"`
	// Reasons a deletion may give, and those a legal hold may be placed and
	// lifted for; the UI offers no others.
	Reasons         []Reason `json:"reasons"`
	HoldReasons     []Reason `json:"hold_reasons"`
	HoldLiftReasons []Reason `json:"hold_lift_reasons"`
}

// handleConfig tells the sign-in page what it needs before anyone signs in.
func (s *Server) handleConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, configResponse{
		OIDC:            s.oidc != nil,
		DeadlineSeconds: s.deadlineSeconds(),
		Setting:         stores.AuditSetting,
		Functionalities: functionalities,
		Channels:        s.channels(),
		Reasons:         s.cfg.Reasons,
		HoldReasons:     s.cfg.HoldReasons,
		HoldLiftReasons: s.cfg.HoldLiftReasons,
	})
}

func (s *Server) deadlineSeconds() int {
	return int((s.cfg.Deadline + time.Second - 1) / time.Second)
}

// channels lists the mapped channels, contact-search last.
func (s *Server) channels() []schemas.Channel {
	if s.deps.DataMap != nil {
		return s.deps.DataMap.ChannelsFor()
	}
	return schemas.AllChannels
}

type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

type meResponse struct {
	User        string   `json:"user"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
	CSRFToken   string   `json:"csrf_token,omitempty"`
	Auth        string   `json:"auth"` // "session" or "token"
	// Account is "sso" or "local"; DisplayName is an SSO user's name for
	// the UI, while User stays the principal that requests and the audit
	// log carry.
	Account     string `json:"account"`
	DisplayName string `json:"display_name,omitempty"`
}

// handleLogin signs in with name and password. A failed login says the same
// thing, and takes as long, whether or not the user exists.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	if req.Name == "" || req.Password == "" || len(req.Name) > 128 || len(req.Password) > 1024 {
		writeError(w, http.StatusBadRequest, "invalid_credentials_format", "enter a user name and a password")
		return
	}
	// Charged before the password check, so concurrent guesses cannot all
	// pass the limit before any is counted; a success is taken back below.
	keys := newLoginKeys(req.Name, s.clientAddr(r))
	ok, wait, err := s.attempts.ReserveAttempt(r.Context(), s.now(), keys.limits()...)
	if err != nil {
		// Without the counters there is no limit: refuse rather than allow
		// unlimited guessing.
		s.log.ErrorContext(r.Context(), "sign-in attempt counter unavailable", "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "sign-in is unavailable; try again shortly")
		return
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		writeError(w, http.StatusTooManyRequests, "too_many_attempts", "too many failed sign-in attempts; try again later")
		return
	}
	acc, ok := s.checkPassword(req.Name, req.Password)
	if !ok {
		s.log.Info("sign-in failed")
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "wrong user name or password")
		return
	}
	// Detached from the request: a client hanging up must not keep its
	// counters charged.
	ctx := context.WithoutCancel(r.Context())
	if err := s.attempts.ResetAttempts(ctx, keys.pair, keys.account); err != nil {
		s.log.WarnContext(ctx, "resetting sign-in attempt counters failed", "error", err)
	}
	if err := s.attempts.RefundAttempt(ctx, keys.addr); err != nil {
		s.log.WarnContext(ctx, "refunding a sign-in attempt failed", "error", err)
	}
	sess := s.startSession(w, acc.name, "", acc.roles)
	s.log.Info("signed in", "user", acc.name, "method", "password")
	writeJSON(w, http.StatusOK, meResponse{
		User: sess.user, Roles: sess.roles, Permissions: permissionsOf(sess.roles),
		CSRFToken: sess.csrf, Auth: "session", Account: accountKind(sess.user),
	})
}

// startSession creates a session and sets its cookie. display is the SSO
// user's name for the UI, empty for local accounts.
func (s *Server) startSession(w http.ResponseWriter, user, display string, roles []string) *session {
	cookie, sess := s.sessions.createDisplayed(user, display, roles)
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    cookie,
		Path:     "/",
		MaxAge:   int(s.cfg.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   s.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	})
	return sess
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if p.Session == nil {
		writeError(w, http.StatusBadRequest, "not_a_session", "API tokens do not sign out")
		return
	}
	s.sessions.delete(p.Session.id)
	s.hub.dropScope(p.key())
	s.clearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

// handleLogoutAll ends every session of the signed-in user (a lost laptop,
// a shared browser) and closes their websockets: here at once, and on
// every other replica within revocationCheck, through the shared record.
func (s *Server) handleLogoutAll(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if p.Session == nil {
		writeError(w, http.StatusBadRequest, "not_a_session", "API tokens do not sign out")
		return
	}
	if err := s.revoked.revoke(r.Context(), p.Session.user, s.now()); err != nil {
		s.storeFailed(w, "revoke sessions", err)
		return
	}
	ids := s.sessions.deleteUser(p.Session.user)
	for _, id := range ids {
		s.hub.dropScope((&principal{Session: &session{id: id}}).key())
	}
	s.log.InfoContext(r.Context(), "signed out everywhere", "user", p.Name, "sessions", len(ids))
	s.clearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	resp := meResponse{User: p.Name, Roles: p.Roles, Permissions: p.Permissions, Auth: "token", Account: accountKind(p.Name)}
	if p.Session != nil {
		resp.CSRFToken, resp.Auth, resp.DisplayName = p.Session.csrf, "session", p.Session.display
	}
	writeJSON(w, http.StatusOK, resp)
}
