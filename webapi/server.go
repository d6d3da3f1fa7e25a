package webapi

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
)

// ContactIndex is the part of the search index the UI reads.
type ContactIndex interface {
	Search(ctx context.Context, index string, q stores.Query) (stores.SearchResult, error)
	Get(ctx context.Context, index, id string) (stores.Doc, error)
	FieldValues(ctx context.Context, index, field, prefix string, limit int) ([]string, error)
}

// Inventory counts a contact's artefacts per channel for display.
type Inventory interface {
	Inventory(ctx context.Context, contactID string) (locate.Remaining, error)
}

// Ledger is the part of the deletion ledger the UI reads.
type Ledger interface {
	State(ctx context.Context, requestID string) (stores.RequestState, error)
	ByContact(ctx context.Context, contactID string, limit int) ([]stores.RequestState, error)
	Audit(ctx context.Context, f stores.AuditFilter) ([]stores.AuditEntry, error)
	AuditCount(ctx context.Context, f stores.AuditFilter) (int64, error)
	AuditActors(ctx context.Context, prefix string, limit int) ([]string, error)
}

// HoldReader reads the legal holds in force; the ledgers are one.
type HoldReader interface {
	Held(ctx context.Context, contactIDs ...string) (map[string]stores.Hold, error)
}

// HoldRequester publishes legal hold changes for the aggregator to apply.
type HoldRequester interface {
	RequestHold(ctx context.Context, ev schemas.HoldRequested) error
}

// Requester publishes deletion requests.
type Requester interface {
	Submit(ctx context.Context, r producers.Request) (schemas.DeletionRequested, error)
}

// Deps are the stores and producers the web API talks to.
type Deps struct {
	Contacts  ContactIndex
	Inventory Inventory
	Ledger    Ledger
	Requests  Requester
	DataMap   *locate.DataMap
	Logger    *slog.Logger
	// Attempts keeps the sign-in attempt counters, shared by every replica
	// (the ledger); without it they are kept in memory, per process.
	Attempts AttemptStore
	// Revocations records "sign out everywhere" for every replica (the
	// ledger); without it a sign-out everywhere ends only the sessions
	// this process holds.
	Revocations SessionRevoker
	// Holds and HoldRequests are the legal holds; without them no contact
	// shows a hold and the hold endpoints answer 503. The pipeline enforces
	// holds whatever the web API knows.
	Holds        HoldReader
	HoldRequests HoldRequester
}

// User is a local account. PasswordHash is a bcrypt hash.
type User struct {
	Name         string   `yaml:"name" json:"name"`
	PasswordHash string   `yaml:"password_hash" json:"password_hash"`
	Roles        []string `yaml:"roles" json:"roles"`
}

// APIToken authenticates scripts with "Authorization: Bearer <token>". Only
// the hex SHA-256 of the token is configured, so the config holds no secret.
type APIToken struct {
	Name        string   `yaml:"name" json:"name"`
	TokenSHA256 string   `yaml:"token_sha256" json:"token_sha256"`
	Roles       []string `yaml:"roles" json:"roles"`
}

// OIDCConfig enables single sign-on with an OpenID Connect provider. Roles
// come from the groups claim through GroupRoles.
type OIDCConfig struct {
	Issuer       string `yaml:"issuer" json:"issuer"`
	ClientID     string `yaml:"client_id" json:"client_id"`
	ClientSecret string `yaml:"client_secret" json:"-"`
	RedirectURL  string `yaml:"redirect_url" json:"redirect_url"`
	// GroupsClaim names the ID token claim listing the user's groups;
	// default "groups".
	GroupsClaim string              `yaml:"groups_claim" json:"groups_claim"`
	GroupRoles  map[string][]string `yaml:"group_roles" json:"group_roles"`
}

// Config configures the web API.
type Config struct {
	// ContactIndex is the search index holding contacts; default "contacts".
	ContactIndex string
	// ContactIDRule validates contact IDs; the zero value is the default rule.
	ContactIDRule schemas.ContactIDRule
	Users         []User
	APITokens     []APIToken
	OIDC          *OIDCConfig
	// SessionTTL is how long a sign-in lasts at most; default 8h.
	SessionTTL time.Duration
	// SessionIdle ends a session unused for this long; default 30 min.
	SessionIdle time.Duration
	// SecureCookies sets the Secure flag on cookies (on behind TLS); it
	// also turns on HSTS, as it means the UI is served over HTTPS.
	SecureCookies bool
	// TrustedProxyHeader names the header (X-Forwarded-For, say) holding
	// the client's address, believed only from TrustedProxies; empty means
	// the socket's peer is the client.
	TrustedProxyHeader string
	// TrustedProxies are the CIDRs (or addresses) of the proxies in front.
	TrustedProxies []string
	// Deadline is how long a deletion may take, as shown to the user;
	// default 30s, the specification's figure.
	Deadline time.Duration
	// EventKeys verify the channel results and outcomes the feed pushes to
	// browsers, so a forged outcome cannot show a false toast. Nil skips
	// the check (tests that feed unsigned events).
	EventKeys *schemas.Keyring
	// ReceiptKey signs deletion receipts; without it the receipt endpoints
	// answer 503.
	ReceiptKey ed25519.PrivateKey
	// Reasons a deletion may give (default DefaultReasons); HoldReasons and
	// HoldLiftReasons those a legal hold may be placed and lifted for.
	Reasons         []Reason
	HoldReasons     []Reason
	HoldLiftReasons []Reason
}

const (
	defaultContactIndex = "contacts"
	defaultSessionTTL   = 8 * time.Hour
	defaultSessionIdle  = 30 * time.Minute
	defaultDeadline     = 30 * time.Second
)

// Server serves the API, the websocket and the embedded UI.
type Server struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	rule     schemas.ContactIDRule
	users    []account
	tokens   []account
	sessions *sessionStore
	revoked  *revocations
	attempts AttemptStore
	trusted  []netip.Prefix
	owners   *ownerMap
	hub      *hub
	oidc     *oidcClient
	handler  http.Handler
	mux      *http.ServeMux
	now      func() time.Time
}

// New validates cfg and deps and builds the server. Its websocket hub runs
// until Close.
func New(cfg Config, deps Deps) (*Server, error) {
	return newServer(cfg, deps, defaultSendBuffer)
}

// newServer is New with the websocket send buffer as a parameter, so tests
// can make a client slow with a few messages.
func newServer(cfg Config, deps Deps, sendBuffer int) (*Server, error) {
	if deps.Contacts == nil || deps.Inventory == nil || deps.Ledger == nil || deps.Requests == nil {
		return nil, errors.New("webapi: Contacts, Inventory, Ledger and Requests are required")
	}
	if cfg.ContactIndex == "" {
		cfg.ContactIndex = defaultContactIndex
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = defaultSessionTTL
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = defaultSessionIdle
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = defaultDeadline
	}
	for _, l := range []struct {
		what string
		rs   *[]Reason
		def  []Reason
	}{{"reason", &cfg.Reasons, DefaultReasons}, {"hold reason", &cfg.HoldReasons, DefaultHoldReasons},
		{"hold lift reason", &cfg.HoldLiftReasons, DefaultHoldLiftReasons}} {
		if err := checkReasons(l.what, *l.rs); err != nil {
			return nil, fmt.Errorf("webapi: %w", err)
		}
		*l.rs = orDefault(*l.rs, l.def)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		deps:     deps,
		log:      log.With("component", "webapi"),
		rule:     cfg.ContactIDRule,
		attempts: deps.Attempts,
		owners:   newOwnerMap(),
		now:      time.Now,
	}
	if s.attempts == nil {
		s.attempts = newMemAttempts()
	}
	var err error
	if s.trusted, err = parseProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("webapi: %w", err)
	}
	if s.users, err = usersFromConfig(cfg.Users); err != nil {
		return nil, fmt.Errorf("webapi: %w", err)
	}
	if s.tokens, err = tokensFromConfig(cfg.APITokens); err != nil {
		return nil, fmt.Errorf("webapi: %w", err)
	}
	if cfg.OIDC != nil {
		if s.oidc, err = newOIDCClient(*cfg.OIDC); err != nil {
			return nil, fmt.Errorf("webapi: %w", err)
		}
	}
	if len(s.users) == 0 && len(s.tokens) == 0 && s.oidc == nil {
		return nil, errors.New("webapi: configure at least one user, API token or OIDC provider")
	}
	s.sessions = newSessionStore(cfg.SessionTTL, cfg.SessionIdle)
	s.revoked = newRevocations(deps.Revocations)
	s.hub = newHub(sendBuffer, s.log)
	go s.hub.run()
	s.handler = s.routes()
	return s, nil
}

// Handler returns the HTTP handler for the API, websocket and UI.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the websocket hub and disconnects every browser.
func (s *Server) Close() error {
	s.hub.stop()
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	read, del, audit, auditOwn := permContactsRead, permContactsDelete, permAuditRead, permAuditReadOwn

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})

	mux.HandleFunc("GET /api/v1/config", s.handleConfig)
	mux.HandleFunc("POST /api/v1/login", s.handleLogin)
	mux.Handle("POST /api/v1/logout", s.authenticated(s.csrf(http.HandlerFunc(s.handleLogout))))
	mux.Handle("POST /api/v1/sessions/logout-all", s.authenticated(s.csrf(http.HandlerFunc(s.handleLogoutAll))))
	mux.Handle("GET /api/v1/me", s.authenticated(http.HandlerFunc(s.handleMe)))
	mux.HandleFunc("GET /api/v1/oidc/login", s.handleOIDCLogin)
	mux.HandleFunc("GET /api/v1/oidc/callback", s.handleOIDCCallback)

	mux.Handle("GET /api/v1/contacts", s.require(read, http.HandlerFunc(s.handleSearch)))
	mux.Handle("GET /api/v1/contacts/{id}", s.require(read, http.HandlerFunc(s.handleContact)))
	mux.Handle("POST /api/v1/deletions", s.require(del, s.csrf(http.HandlerFunc(s.handleSubmit))))
	// A data subject's contacts, found by exact phone or email; POST keeps
	// the phone number or address out of URLs.
	mux.Handle("POST /api/v1/subjects/contacts", s.require(read, s.csrf(http.HandlerFunc(s.handleSubjectContacts))))
	mux.Handle("POST /api/v1/contacts/inventory", s.require(read, s.csrf(http.HandlerFunc(s.handleInventories))))
	mux.Handle("POST /api/v1/contacts/{id}/hold", s.require(permContactsHold, s.csrf(http.HandlerFunc(s.handlePlaceHold))))
	mux.Handle("POST /api/v1/contacts/{id}/hold/lift", s.require(permContactsHold, s.csrf(http.HandlerFunc(s.handleLiftHold))))
	// Anyone signed in may ask; the handler allows the requester, deleters
	// and auditors.
	mux.Handle("GET /api/v1/deletions/{id}", s.authenticated(http.HandlerFunc(s.handleDeletion)))
	// With audit.read_own the handlers answer only the caller's own entries.
	mux.Handle("GET /api/v1/audit", s.requireAny(http.HandlerFunc(s.handleAudit), audit, auditOwn))
	mux.Handle("GET /api/v1/audit.csv", s.requireAny(http.HandlerFunc(s.handleAuditCSV), audit, auditOwn))
	mux.Handle("GET /api/v1/audit/{request_id}/receipt", s.requireAny(http.HandlerFunc(s.handleReceipt), audit, auditOwn))
	// The handler checks the permission of the field asked for.
	mux.Handle("GET /api/v1/suggestions", s.requireAny(http.HandlerFunc(s.handleSuggestions), read, audit, auditOwn))
	// Public: whoever is handed a receipt (the person, a regulator) needs
	// the key to check it, and a public key discloses nothing.
	mux.HandleFunc("GET /api/v1/receipts/public-key", s.handlePublicKey)
	// Progress only ever concerns deletions the user asked for.
	mux.Handle("GET /api/v1/ws", s.require(del, http.HandlerFunc(s.handleWS)))

	mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /{$}", serveIndex)

	s.mux = mux
	var h http.Handler = mux
	h = s.authenticate(h)
	h = s.accessLog(h)
	h = securityHeaders(h)
	h = hsts(s.cfg.SecureCookies, h)
	h = s.recoverer(h)
	return h
}
