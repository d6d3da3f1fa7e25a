package webapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"sync"
	"time"
)

const sessionCookie = "erasure_session"

// session is one browser sign-in. Sessions are held in memory only, so a
// restart signs everyone out.
type session struct {
	id      string // hex SHA-256 of the cookie value; the value itself is not kept
	user    string // the principal: requested_by, the audit log's user
	display string // an SSO user's name for the UI only; empty for local accounts
	roles   []string
	csrf    string
	started time.Time // when it was signed in
	expires time.Time // absolute end
	// lastSeen is when the session was last used; it ends idle after the
	// store's idle timeout. Guarded by the store's mutex.
	lastSeen time.Time
}

type sessionStore struct {
	mu   sync.Mutex
	ttl  time.Duration
	idle time.Duration
	byID map[string]*session
	now  func() time.Time
}

func newSessionStore(ttl, idle time.Duration) *sessionStore {
	return &sessionStore{ttl: ttl, idle: idle, byID: map[string]*session{}, now: time.Now}
}

// live reports whether s has neither reached its end nor sat idle too long.
func (st *sessionStore) live(s *session, now time.Time) bool {
	return now.Before(s.expires) && now.Before(s.lastSeen.Add(st.idle))
}

// randomToken returns 32 random bytes, URL-safe encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics on failure)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionID(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

// create starts a session and returns the cookie value.
func (st *sessionStore) create(user string, roles []string) (string, *session) {
	return st.createDisplayed(user, "", roles)
}

// createDisplayed is create with a display name beside the principal.
func (st *sessionStore) createDisplayed(user, display string, roles []string) (string, *session) {
	cookie := randomToken()
	now := st.now()
	s := &session{
		id:       sessionID(cookie),
		user:     user,
		display:  display,
		roles:    slices.Clone(roles),
		csrf:     randomToken(),
		started:  now,
		expires:  now.Add(st.ttl),
		lastSeen: now,
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweepLocked()
	st.byID[s.id] = s
	return cookie, s
}

// get returns the live session for a cookie value. The map is keyed by a
// hash of the cookie, so the lookup leaks nothing useful through timing.
func (st *sessionStore) get(cookie string) *session {
	if cookie == "" {
		return nil
	}
	id := sessionID(cookie)
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byID[id]
	if s == nil {
		return nil
	}
	now := st.now()
	if !st.live(s, now) {
		delete(st.byID, id)
		return nil
	}
	s.lastSeen = now
	return s
}

// endOf returns when the session id ends if it is not used again (its
// absolute end or its idle timeout, whichever is first); ok is false once
// it has ended or been signed out.
func (st *sessionStore) endOf(id string) (end time.Time, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byID[id]
	if s == nil || !st.live(s, st.now()) {
		return time.Time{}, false
	}
	end = s.lastSeen.Add(st.idle)
	if s.expires.Before(end) {
		end = s.expires
	}
	return end, true
}

// deleteUser ends every session of user and returns their IDs.
func (st *sessionStore) deleteUser(user string) []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var ids []string
	for id, s := range st.byID {
		if s.user == user {
			delete(st.byID, id)
			ids = append(ids, id)
		}
	}
	return ids
}

func (st *sessionStore) delete(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.byID, id)
}

// sweepLocked drops expired sessions; called on create, so the map stays
// bounded by the sign-ins of one TTL.
func (st *sessionStore) sweepLocked() {
	now := st.now()
	for id, s := range st.byID {
		if !st.live(s, now) {
			delete(st.byID, id)
		}
	}
}
