package webapi

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ssoPrefix starts every single sign-on principal. Local accounts and API
// tokens may not use it, so an SSO user can never be taken for a local one
// (or the reverse) in requested_by, the audit log or request ownership.
const ssoPrefix = "sso:"

// IsSSOName reports whether name is in the single sign-on namespace. The
// check ignores case, so that "SSO:x" cannot pass for an SSO account on a
// screen either.
func IsSSOName(name string) bool {
	return len(name) >= len(ssoPrefix) && strings.EqualFold(name[:len(ssoPrefix)], ssoPrefix)
}

// ssoPlainSubject is a subject used as it is: within the principal pattern
// and the 128 characters once prefixed. It has no colon, so no plain subject
// can spell the hashed form, which has one.
var ssoPlainSubject = regexp.MustCompile(`^[A-Za-z0-9._@+-]{1,115}$`)

// ssoPrincipal names an SSO account by what OIDC guarantees to be unique and
// stable, the issuer and the subject: "sso:<8 hex>:<subject>", the hex being
// the start of SHA-256(issuer). A subject that is too long, has a colon or
// characters the principal pattern refuses is replaced by
// "sha256:<64 hex of SHA-256(subject)>". The user name and email are never
// part of it: they can change, collide with local accounts, and are
// personal data that would otherwise reach events and the audit chain.
func ssoPrincipal(issuer, subject string) string {
	iss := sha256.Sum256([]byte(issuer))
	prefix := ssoPrefix + hex.EncodeToString(iss[:4]) + ":"
	if ssoPlainSubject.MatchString(subject) {
		return prefix + subject
	}
	sub := sha256.Sum256([]byte(subject))
	return prefix + "sha256:" + hex.EncodeToString(sub[:])
}

// maxDisplayName bounds the display name kept in a session.
const maxDisplayName = 128

// ssoDisplayName is what the UI shows for an SSO user: preferred_username,
// else the email only when the provider says it verified it (anyone can
// type any address into an account of their own). It names no one in events,
// logs or the audit log; it lives in the session only. Empty when there is
// nothing usable; the UI then shows the principal.
func ssoDisplayName(claims map[string]any) string {
	if v, _ := claims["preferred_username"].(string); usableDisplay(v) {
		return v
	}
	if v, _ := claims["email"].(string); usableDisplay(v) && emailVerified(claims) {
		return v
	}
	return ""
}

// emailVerified reads email_verified: a boolean by the specification, a
// string at some providers.
func emailVerified(claims map[string]any) bool {
	switch v := claims["email_verified"].(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

func usableDisplay(v string) bool {
	if v == "" || !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxDisplayName {
		return false
	}
	return strings.IndexFunc(v, unicode.IsControl) < 0
}

// accountKind is "sso" or "local" (a configured user or API token).
func accountKind(name string) string {
	if IsSSOName(name) {
		return "sso"
	}
	return "local"
}
