package webapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Permissions checked by the API.
const (
	permContactsRead   = "contacts.read"
	permContactsDelete = "contacts.delete"
	// permContactsHold places and lifts legal holds. It is not the DPO's: who
	// deletes does not also decide what may not be deleted.
	permContactsHold = "contacts.hold"
	permAuditRead    = "audit.read"
	// permAuditReadOwn is the audit log restricted to the entries of the
	// caller's own requests: whoever deletes verifies there that it was done.
	permAuditReadOwn = "audit.read_own"
)

// rolePermissions maps each role to what it may do.
var rolePermissions = map[string][]string{
	"agent":   {permContactsRead},
	"dpo":     {permContactsRead, permContactsDelete, permAuditReadOwn},
	"auditor": {permAuditRead},
	"admin":   {permContactsRead, permContactsDelete, permAuditRead, permContactsHold},
	// legal (counsel, compliance) places and lifts legal holds.
	"legal": {permContactsRead, permContactsHold},
}

// permissionsOf returns the sorted union of the roles' permissions.
func permissionsOf(roles []string) []string {
	var out []string
	for _, r := range roles {
		for _, p := range rolePermissions[r] {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// principalRE is the principal pattern of the event schema: a name that goes
// into requested_by must pass it, so it is checked when accounts are loaded.
var principalRE = regexp.MustCompile(`^[A-Za-z0-9._@:+-]{1,128}$`)

func checkRoles(roles []string) error {
	if len(roles) == 0 {
		return errors.New("no roles")
	}
	for _, r := range roles {
		if _, ok := rolePermissions[r]; !ok {
			return fmt.Errorf("unknown role %q (known: agent, dpo, auditor, legal, admin)", r)
		}
	}
	return nil
}

// account is a configured user or API token.
type account struct {
	name   string
	secret []byte // bcrypt hash for users; raw SHA-256 for tokens
	roles  []string
}

func usersFromConfig(users []User) ([]account, error) {
	var out []account
	seen := map[string]bool{}
	for i, u := range users {
		if !principalRE.MatchString(u.Name) {
			return nil, fmt.Errorf("user #%d: name must match %s", i+1, principalRE)
		}
		if IsSSOName(u.Name) {
			return nil, fmt.Errorf("user #%d: name must not start with %q: that prefix is reserved for single sign-on accounts", i+1, ssoPrefix)
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("user %q configured twice", u.Name)
		}
		seen[u.Name] = true
		if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			return nil, fmt.Errorf("user %q: password_hash is not a bcrypt hash: %w", u.Name, err)
		}
		if err := checkRoles(u.Roles); err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		out = append(out, account{name: u.Name, secret: []byte(u.PasswordHash), roles: slices.Clone(u.Roles)})
	}
	return out, nil
}

func tokensFromConfig(tokens []APIToken) ([]account, error) {
	var out []account
	seen := map[string]bool{}
	for i, t := range tokens {
		if !principalRE.MatchString(t.Name) {
			return nil, fmt.Errorf("API token #%d: name must match %s", i+1, principalRE)
		}
		if IsSSOName(t.Name) {
			return nil, fmt.Errorf("API token #%d: name must not start with %q: that prefix is reserved for single sign-on accounts", i+1, ssoPrefix)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("API token %q configured twice", t.Name)
		}
		seen[t.Name] = true
		sum, err := hex.DecodeString(strings.ToLower(t.TokenSHA256))
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("API token %q: token_sha256 must be 64 hex digits", t.Name)
		}
		if err := checkRoles(t.Roles); err != nil {
			return nil, fmt.Errorf("API token %q: %w", t.Name, err)
		}
		out = append(out, account{name: t.Name, secret: sum, roles: slices.Clone(t.Roles)})
	}
	return out, nil
}

// dummyHash is compared against when a login names no known user, so a
// failed login takes as long whether or not the user exists.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("erasure-no-such-user"), bcrypt.DefaultCost)

// checkPassword returns the user for name and password, or ok=false.
// Every account name is compared in constant time.
func (s *Server) checkPassword(name, password string) (account, bool) {
	var found *account
	for i := range s.users {
		if subtle.ConstantTimeCompare([]byte(s.users[i].name), []byte(name)) == 1 {
			found = &s.users[i]
		}
	}
	hash := dummyHash
	if found != nil {
		hash = found.secret
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if found == nil || err != nil {
		return account{}, false
	}
	return *found, true
}

// checkToken returns the API token account for a bearer token.
func (s *Server) checkToken(token string) (account, bool) {
	sum := sha256.Sum256([]byte(token))
	var found *account
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(s.tokens[i].secret, sum[:]) == 1 {
			found = &s.tokens[i]
		}
	}
	if found == nil {
		return account{}, false
	}
	return *found, true
}

// principal is who is making a request.
type principal struct {
	Name        string
	Roles       []string
	Permissions []string
	// Session is set for browser sessions, nil for API tokens.
	Session *session
}

func (p *principal) can(perm string) bool { return p != nil && slices.Contains(p.Permissions, perm) }

// key identifies the principal's connection scope: its session, or its
// token name. Progress of a request goes to the scope that submitted it.
func (p *principal) key() string {
	if p.Session != nil {
		return "session:" + p.Session.id
	}
	return "token:" + p.Name
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	return p
}
