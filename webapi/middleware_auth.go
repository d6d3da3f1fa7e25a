package webapi

import (
	"net/http"
	"strings"
)

// authenticate resolves who is calling — an API token in the Authorization
// header or a session cookie — and puts the principal in the context. It
// refuses nothing by itself, except a bearer token that is wrong: falling
// back to the cookie then would hide a broken script behind a browser's
// sign-in.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p *principal
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, token, _ := strings.Cut(h, " ")
			acc, ok := s.checkToken(strings.TrimSpace(token))
			if !strings.EqualFold(scheme, "Bearer") || !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="erasure"`)
				writeError(w, http.StatusUnauthorized, "invalid_token", "the API token is not valid")
				return
			}
			p = &principal{Name: acc.name, Roles: acc.roles, Permissions: permissionsOf(acc.roles)}
		} else if c, err := r.Cookie(sessionCookie); err == nil {
			if sess := s.sessions.get(c.Value); sess != nil {
				revoked, err := s.revoked.revoked(r.Context(), sess, s.now())
				if err != nil {
					// Unknown is not "still signed in": the caller retries.
					s.storeFailed(w, "session revocations", err)
					return
				}
				if revoked {
					s.sessions.delete(sess.id)
				} else {
					p = &principal{Name: sess.user, Roles: sess.roles, Permissions: permissionsOf(sess.roles), Session: sess}
				}
			}
		}
		if p != nil {
			r = r.WithContext(withPrincipal(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

// authenticated refuses anonymous callers.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if principalFrom(r.Context()) == nil {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "sign in first")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// require refuses callers without perm: 401 when anonymous, 403 otherwise.
func (s *Server) require(perm string, next http.Handler) http.Handler {
	return s.authenticated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !principalFrom(r.Context()).can(perm) {
			writeError(w, http.StatusForbidden, "forbidden", "you do not have permission to do this")
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// requireAny refuses callers with none of perms: 401 when anonymous, 403
// otherwise. The handler narrows what a lesser permission may see.
func (s *Server) requireAny(next http.Handler, perms ...string) http.Handler {
	return s.authenticated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		for _, perm := range perms {
			if p.can(perm) {
				next.ServeHTTP(w, r)
				return
			}
		}
		writeError(w, http.StatusForbidden, "forbidden", "you do not have permission to do this")
	}))
}
