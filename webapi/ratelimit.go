package webapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// Sign-in throttling. Every attempt is charged before the password is
// checked, to three counters at once (all or none, see
// stores.AttemptLimiter), each backing off exponentially past its free
// attempts:
//
//   - account and client address: 5 free, then 1s, 2s, 4s… up to 15 min.
//     This is what slows guessing one account's password.
//   - client address: 20 free, same back-off. It slows spraying many
//     account names from one address. Successful sign-ins are refunded, so
//     colleagues behind one office address do not add up; behind a proxy
//     or ingress this needs web.trusted_proxy_header, or every user shares
//     the proxy's address.
//   - account, from any address: 20 free, 1s doubling up to 1 min, and
//     forgotten after 10 min without attempts. It slows a guess spread
//     over many addresses. The trade-off: such an attacker can make the
//     account's owner wait up to a minute per attempt, never longer, and
//     an attacker at one address cannot reach it at all, since the first
//     counter spaces their attempts out until the account counter forgets
//     them before it reaches 20.
//
// A successful sign-in resets the account's counters. The counters are
// kept in the ledger, so every replica shares them; keys are hashes, so the
// store holds neither account names nor addresses.
var (
	pairPolicy    = stores.AttemptPolicy{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour}
	addrPolicy    = stores.AttemptPolicy{Free: 20, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour}
	accountPolicy = stores.AttemptPolicy{Free: 20, Base: time.Second, Max: time.Minute, Forget: 10 * time.Minute}
)

// AttemptStore keeps the sign-in attempt counters; the ledger implements
// it so that the limits hold across replicas.
type AttemptStore interface {
	ReserveAttempt(ctx context.Context, now time.Time, limits ...stores.AttemptLimit) (allowed bool, retryAfter time.Duration, err error)
	ResetAttempts(ctx context.Context, keys ...string) error
	RefundAttempt(ctx context.Context, key string) error
}

// loginKeys are the counter keys of one sign-in attempt.
type loginKeys struct{ pair, addr, account string }

func newLoginKeys(name, addr string) loginKeys {
	name = strings.ToLower(name)
	return loginKeys{
		pair:    "login:pair:" + keyHash(name, addr),
		addr:    "login:addr:" + keyHash(addr),
		account: "login:account:" + keyHash(name),
	}
}

func (k loginKeys) limits() []stores.AttemptLimit {
	return []stores.AttemptLimit{
		{Key: k.pair, Policy: pairPolicy},
		{Key: k.addr, Policy: addrPolicy},
		{Key: k.account, Policy: accountPolicy},
	}
}

// keyHash is a short hex SHA-256 of the parts, so keys hold no names.
func keyHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// memAttempts keeps the counters in memory, for a server given no shared
// store: the limits then hold per process only.
type memAttempts struct {
	mu   sync.Mutex
	byID map[string]memAttempt
}

type memAttempt struct {
	state    stores.AttemptState
	forgetAt time.Time
}

func newMemAttempts() *memAttempts { return &memAttempts{byID: map[string]memAttempt{}} }

func (m *memAttempts) ReserveAttempt(_ context.Context, now time.Time, limits ...stores.AttemptLimit) (bool, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, a := range m.byID {
		if !now.Before(a.forgetAt) {
			delete(m.byID, k)
		}
	}
	var wait time.Duration
	next := make([]stores.AttemptState, len(limits))
	for i, lim := range limits {
		var w time.Duration
		next[i], w = lim.Policy.Reserve(m.byID[lim.Key].state, now)
		wait = max(wait, w)
	}
	if wait > 0 {
		return false, wait, nil
	}
	for i, lim := range limits {
		m.byID[lim.Key] = memAttempt{state: next[i], forgetAt: next[i].ForgetAt(lim.Policy)}
	}
	return true, 0, nil
}

func (m *memAttempts) ResetAttempts(_ context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.byID, k)
	}
	return nil
}

func (m *memAttempts) RefundAttempt(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.byID[key]; ok && a.state.Count > 0 {
		a.state.Count--
		m.byID[key] = a
	}
	return nil
}
