package webapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	oidcStateCookie = "erasure_oidc_state"
	oidcPendingTTL  = 10 * time.Minute
	oidcMaxPending  = 10_000
)

// oidcClient signs users in with an OpenID Connect provider (authorization
// code flow with PKCE, state and nonce). The provider is discovered on first
// use, so a provider that is down at start-up does not stop the server.
type oidcClient struct {
	cfg OIDCConfig

	mu       sync.Mutex
	provider *oidc.Provider
	pending  map[string]oidcPending // by state
	now      func() time.Time
}

type oidcPending struct {
	nonce    string
	verifier string
	expires  time.Time
}

func newOIDCClient(cfg OIDCConfig) (*oidcClient, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oidc: issuer, client_id and redirect_url are required")
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if len(cfg.GroupRoles) == 0 {
		return nil, errors.New("oidc: group_roles must map at least one group to roles")
	}
	for g, roles := range cfg.GroupRoles {
		if err := checkRoles(roles); err != nil {
			return nil, fmt.Errorf("oidc: group %q: %w", g, err)
		}
	}
	return &oidcClient{cfg: cfg, pending: map[string]oidcPending{}, now: time.Now}, nil
}

func (o *oidcClient) setup(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("oidc discovery: %w", err)
		}
		o.provider = p
	}
	return o.provider, &oauth2.Config{
		ClientID:     o.cfg.ClientID,
		ClientSecret: o.cfg.ClientSecret,
		RedirectURL:  o.cfg.RedirectURL,
		Endpoint:     o.provider.Endpoint(),
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email"},
	}, nil
}

func (o *oidcClient) remember(state string, p oidcPending) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	if len(o.pending) >= oidcMaxPending {
		for k, v := range o.pending {
			if now.After(v.expires) {
				delete(o.pending, k)
			}
		}
		if len(o.pending) >= oidcMaxPending {
			return // the sign-in will fail; better than unbounded memory
		}
	}
	o.pending[state] = p
}

// take returns and forgets the pending sign-in of state: each is used once.
func (o *oidcClient) take(state string) (oidcPending, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.pending[state]
	delete(o.pending, state)
	if !ok || o.now().After(p.expires) {
		return oidcPending{}, false
	}
	return p, true
}

// rolesOf maps the user's groups to roles.
func (o *oidcClient) rolesOf(groups []string) []string {
	var roles []string
	for _, g := range groups {
		for _, r := range o.cfg.GroupRoles[g] {
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
	}
	slices.Sort(roles)
	return roles
}

func (s *Server) handleOIDCLogin(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		writeError(w, http.StatusNotFound, "not_found", "single sign-on is not configured")
		return
	}
	_, oc, err := s.oidc.setup(r.Context())
	if err != nil {
		s.log.Warn("oidc setup", "err", err)
		writeError(w, http.StatusServiceUnavailable, "sso_unavailable", "the sign-in provider is not reachable")
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	s.oidc.remember(state, oidcPending{nonce: nonce, verifier: verifier, expires: s.oidc.now().Add(oidcPendingTTL)})
	// Lax, not Strict: the provider's redirect back is a cross-site
	// navigation, on which a Strict cookie would not be sent.
	http.SetCookie(w, &http.Cookie{
		Name: oidcStateCookie, Value: state, Path: "/api/v1/oidc/", MaxAge: int(oidcPendingTTL / time.Second),
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// handleOIDCCallback completes the sign-in. It answers with a page that
// navigates to the app rather than a redirect: after a cross-site redirect
// chain the browser would withhold the new SameSite=Strict session cookie.
func (s *Server) handleOIDCCallback(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		writeError(w, http.StatusNotFound, "not_found", "single sign-on is not configured")
		return
	}
	fail := func(reason string, err error) {
		s.log.Warn("oidc sign-in failed", "reason", reason, "err", err)
		http.Redirect(w, r, "/#/login?sso=failed", http.StatusSeeOther)
	}
	http.SetCookie(w, &http.Cookie{Name: oidcStateCookie, Value: "", Path: "/api/v1/oidc/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	state := q.Get("state")
	c, err := r.Cookie(oidcStateCookie)
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		fail("state mismatch", nil)
		return
	}
	pend, ok := s.oidc.take(state)
	if !ok {
		fail("unknown or expired state", nil)
		return
	}
	if q.Get("error") != "" || q.Get("code") == "" {
		fail("provider refused", nil)
		return
	}
	provider, oc, err := s.oidc.setup(r.Context())
	if err != nil {
		fail("setup", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pend.verifier))
	if err != nil {
		fail("code exchange", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		fail("no id_token", nil)
		return
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: s.oidc.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		fail("id_token verification", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pend.nonce)) != 1 {
		fail("nonce mismatch", nil)
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		fail("claims", err)
		return
	}
	if idt.Subject == "" {
		fail("no subject", nil)
		return
	}
	// Identified by issuer and subject, in a namespace no local account can
	// take; the user name or email is only shown, never trusted as a name.
	name := ssoPrincipal(idt.Issuer, idt.Subject)
	if !principalRE.MatchString(name) {
		fail("principal does not match the principal pattern", nil)
		return
	}
	roles := s.oidc.rolesOf(stringsOf(claims[s.oidc.cfg.GroupsClaim]))
	if len(roles) == 0 {
		fail("no roles for the user's groups", nil)
		return
	}
	s.startSession(w, name, ssoDisplayName(claims), roles)
	// Logged by subject: an opaque, stable ID for the account, where the
	// display name is often an email address or a personal user name.
	s.log.Info("signed in", "sub", idt.Subject, "method", "oidc")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(`<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/"><title>Signing in</title><a href="/">Continue</a>`))
}

// stringsOf reads a claim that is a string or a list of strings.
func stringsOf(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
