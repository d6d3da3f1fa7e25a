package app

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/consumers/aggregator"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/clickhouse"
	"github.com/erasure-project/erasure/stores/disk"
	"github.com/erasure-project/erasure/stores/kafka"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/stores/opensearch"
	"github.com/erasure-project/erasure/stores/s3"
	"github.com/erasure-project/erasure/stores/sqlite"
	"github.com/erasure-project/erasure/webapi"
)

// Roles a process can run.
const (
	RoleWebAPI     = "webapi"
	RoleAggregator = "aggregator"
	RoleConsumer   = "consumer:" // followed by a channel name
)

// AllRoles is every role, as `erasure up` runs them.
func AllRoles() []string {
	r := []string{RoleWebAPI, RoleAggregator}
	for _, ch := range schemas.AllChannels {
		r = append(r, RoleConsumer+string(ch))
	}
	return r
}

// Stores are the data stores a process uses.
type Stores struct {
	Index     stores.Index
	Objects   stores.Objects
	Warehouse stores.Warehouse
	Ledger    stores.Ledger
	// Holds are the legal holds, kept by the ledger.
	Holds   stores.Holds
	Locator *locate.Locator
	DataMap *locate.DataMap
	Rule    schemas.ContactIDRule
}

// Option changes how OpenStores (and New) prepare the stores.
type Option func(*options)

type options struct {
	prepare  func(ctx context.Context, st *Stores) error
	logger   *slog.Logger
	auditKey ed25519.PrivateKey
}

// WithAuditKey makes the ledger sign every audit entry it appends with key
// (the receipt key): the aggregator's ledger writes.
func WithAuditKey(key ed25519.PrivateKey) Option {
	return func(o *options) { o.auditKey = key }
}

// WithLogger gives the stores that work in the background (OpenSearch's
// expunge merges) a logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Prepare runs fn on the open stores before they are checked against the
// data map. `erasure up` creates and seeds its demo tables, buckets and
// indexes there, so that a fresh data directory passes the check.
func Prepare(fn func(ctx context.Context, st *Stores) error) Option {
	return func(o *options) { o.prepare = fn }
}

// OpenStores opens the configured stores, checks every location of the
// data map in them (see locate.Locator.Check) and returns them with a
// cleanup. A data map that does not match the stores stops the process
// here, before it deletes anything, with every problem listed.
func OpenStores(ctx context.Context, cfg Config, opts ...Option) (*Stores, func(), error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dm, err := cfg.DataMap()
	if err != nil {
		return nil, nil, err
	}
	rule, err := schemas.NewContactIDRule(cfg.ContactIDPattern)
	if err != nil {
		return nil, nil, err
	}
	if err := PrepareDataDir(cfg.DataDir); err != nil {
		return nil, nil, err
	}
	var closers []func() error
	cleanup := func() {
		for _, c := range closers {
			c()
		}
	}
	open := func(name string) (*sql.DB, error) {
		db, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, name))
		if err != nil {
			return nil, err
		}
		closers = append(closers, db.Close)
		return db, nil
	}
	s := &Stores{DataMap: dm, Rule: rule}
	fail := func(err error) (*Stores, func(), error) { cleanup(); return nil, nil, err }
	switch cfg.Index.Kind {
	case "opensearch":
		oc := cfg.Index.OpenSearch
		oc.Logger = o.logger
		oc.PhoneRegion = cfg.PhoneRegion
		ix, err := opensearch.New(ctx, oc)
		if err != nil {
			return fail(err)
		}
		// Close stops the background expunge; pending ones are left to
		// OpenSearch's own merges.
		closers = append(closers, ix.Close)
		s.Index = ix
	default:
		db, err := open("index.db")
		if err != nil {
			return fail(err)
		}
		s.Index = sqlite.NewIndex(db, sqlite.WithPhoneRegion(cfg.PhoneRegion))
	}
	switch cfg.Objects.Kind {
	case "s3":
		if s.Objects, err = s3.New(ctx, cfg.Objects.S3); err != nil {
			return fail(err)
		}
	default:
		s.Objects = disk.New(filepath.Join(cfg.DataDir, "objects"))
	}
	switch cfg.Warehouse.Kind {
	case "clickhouse":
		ch, err := clickhouse.NewWarehouse(ctx, cfg.Warehouse.ClickHouse)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, ch.Close)
		s.Warehouse = ch
	default:
		db, err := open("warehouse.db")
		if err != nil {
			return fail(err)
		}
		s.Warehouse = sqlite.NewWarehouse(db)
	}
	switch cfg.Ledger.Kind {
	case "clickhouse":
		c := cfg.Warehouse.ClickHouse
		if cfg.Ledger.Database != "" {
			c.Database = cfg.Ledger.Database
		}
		led, err := clickhouse.NewLedger(ctx, c, clickhouse.WithAuditKey(o.auditKey))
		if err != nil {
			return fail(err)
		}
		closers = append(closers, led.Close)
		s.Ledger = led
	default:
		ldb, err := open("ledger.db")
		if err != nil {
			return fail(err)
		}
		s.Ledger = sqlite.NewLedger(ldb, sqlite.WithAuditKey(o.auditKey))
	}
	holds, ok := s.Ledger.(stores.Holds)
	if !ok {
		return fail(errors.New("the ledger keeps no legal holds"))
	}
	s.Holds = holds
	s.Locator = &locate.Locator{Map: dm, Rule: rule, Index: s.Index, Objects: s.Objects, Warehouse: s.Warehouse}
	if o.prepare != nil {
		if err := o.prepare(ctx, s); err != nil {
			return fail(err)
		}
	}
	if err := s.Locator.Check(ctx); err != nil {
		return fail(err)
	}
	return s, cleanup, nil
}

// App is one erasure process: the roles it runs and what they share.
type App struct {
	Stores    *Stores
	Publisher message.Publisher
	Topics    schemas.Topics
	// Kafka is the broker configuration every client of this process uses.
	Kafka kafka.Config
	// EventKeys sign what Publisher publishes and verify internal events.
	EventKeys *schemas.Keyring

	logger    *slog.Logger
	router    *message.Router
	agg       *aggregator.Aggregator
	anchorer  *anchorer
	web       *webapi.Server
	feedSub   message.Subscriber
	webLn     net.Listener
	metricsLn net.Listener
	deadline  time.Duration
}

// KafkaClient is cfg's broker configuration for a client named id, logging
// warnings and errors only.
func KafkaClient(cfg Config, id string, logger *slog.Logger) kafka.Config {
	k := cfg.Kafka.Config
	k.ClientID = id
	k.Logger = Quieter(logger, slog.LevelWarn)
	return k
}

// New builds every dependency of the given roles and returns the app and
// its cleanup; opts go to OpenStores. Brokers that cannot be reached are
// waited for up to topicsWait.
func New(ctx context.Context, cfg Config, roles []string, logger *slog.Logger, opts ...Option) (*App, func(), error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return nil, nil, errors.New("kafka.brokers is empty: start the embedded broker first or configure one")
	}
	for _, r := range roles {
		if !slices.Contains(AllRoles(), r) {
			return nil, nil, fmt.Errorf("unknown role %q: roles are %s", r, strings.Join(AllRoles(), ", "))
		}
	}
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(err error) (*App, func(), error) { cleanup(); return nil, nil, err }

	a := &App{logger: logger, Topics: schemas.Topics{Prefix: cfg.TopicPrefix}, Kafka: KafkaClient(cfg, "erasure", logger), deadline: cfg.Deadline}
	if err := ensureTopics(ctx, a.Kafka, cfg.Partitions, cfg.Replication, logger,
		a.Topics.Requests(), a.Topics.Finalize(), a.Topics.ChannelResults(), a.Topics.Outcomes(), a.Topics.DLQ(),
		a.Topics.Holds()); err != nil {
		return fail(fmt.Errorf("topics: %w", err))
	}
	opts = append(opts, WithLogger(logger.With("component", "stores")))
	var auditKey ed25519.PrivateKey
	if slices.Contains(roles, RoleAggregator) {
		// The aggregator is the audit log's writer: it signs each entry.
		k, err := cfg.ReceiptKey()
		if err != nil {
			return fail(fmt.Errorf("audit signing key: %w", err))
		}
		auditKey = k
		opts = append(opts, WithAuditKey(k))
	}
	st, closeStores, err := OpenStores(ctx, cfg, opts...)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, closeStores)
	a.Stores = st
	var channels []schemas.Channel
	for _, role := range roles {
		if ch, ok := strings.CutPrefix(role, RoleConsumer); ok {
			channels = append(channels, schemas.Channel(ch))
		}
	}
	// Purges a crashed process left pending are this process's now; a
	// failure here is a store problem the next deletion reports too.
	if err := st.Locator.ResumePurges(ctx, channels); err != nil {
		logger.WarnContext(ctx, "resuming pending purges failed", "error", err)
	}

	pub, err := kafka.NewPublisher(a.Kafka)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { pub.Close() })
	if a.EventKeys, err = cfg.EventKeys(true); err != nil {
		return fail(fmt.Errorf("event keys: %w", err))
	}
	// Every event this process publishes is signed here; the dlq is fed
	// unsigned, so that a refused event never leaves with our signature.
	signed := producers.SigningPublisher{Publisher: pub, Keys: a.EventKeys}
	a.Publisher = signed

	allowed, err := cfg.Producers(a.EventKeys)
	if err != nil {
		return fail(err)
	}
	rcfg := consumers.RouterConfig{DLQTopic: a.Topics.DLQ(), Keys: a.EventKeys, Producers: allowed}
	router, err := consumers.NewRouter(rcfg, pub, Quieter(logger, slog.LevelWarn))
	if err != nil {
		return fail(err)
	}
	a.router = router
	subscriber := func(group string, fromStart bool) (message.Subscriber, error) {
		s, err := kafka.NewSubscriber(a.Kafka, kafka.SubscriberConfig{ConsumerGroup: group, FromStart: fromStart})
		if err != nil {
			return nil, err
		}
		cleanups = append(cleanups, func() { s.Close() })
		return s, nil
	}

	// Channels are data: every channel runs the same handler over the
	// artefacts the data map gives it.
	cleanups = append(cleanups, deferScrubs(st, roles))
	for _, role := range roles {
		ch, ok := strings.CutPrefix(role, RoleConsumer)
		if !ok {
			continue
		}
		sub, err := subscriber(schemas.ChannelGroup(schemas.Channel(ch)), true)
		if err != nil {
			return fail(err)
		}
		c := &consumers.Channel{Name: schemas.Channel(ch), Eraser: st.Locator, Binder: st.Ledger, States: st.Ledger, Holds: st.Holds,
			Required: st.DataMap.ChannelsFor(), Rule: st.Rule, Deadline: cfg.Deadline, Logger: logger}
		c.Register(router, rcfg, a.Topics, sub, signed)
	}
	if slices.Contains(roles, RoleAggregator) {
		reqSub, err := subscriber(schemas.GroupAggregatorRequests, true)
		if err != nil {
			return fail(err)
		}
		resSub, err := subscriber(schemas.GroupAggregatorResults, true)
		if err != nil {
			return fail(err)
		}
		a.agg = &aggregator.Aggregator{Ledger: st.Ledger, Publisher: signed, Topics: a.Topics, Rule: st.Rule,
			Required: st.DataMap.ChannelsFor(), Deadline: cfg.Deadline, Logger: logger.With("role", RoleAggregator)}
		a.agg.Register(router, rcfg, reqSub, resSub)
		holdSub, err := subscriber(schemas.GroupAggregatorHolds, true)
		if err != nil {
			return fail(err)
		}
		holds := &aggregator.Holds{Ledger: st.Holds, Topics: a.Topics, Rule: st.Rule, Logger: logger.With("role", RoleAggregator)}
		holds.Register(router, rcfg, holdSub)
		anchors, err := cfg.AuditAnchors(ctx)
		if err != nil {
			return fail(fmt.Errorf("audit anchors: %w", err))
		}
		a.anchorer = &anchorer{ledger: st.Ledger, anchors: anchors, key: auditKey, logger: logger.With("role", RoleAggregator)}
	}
	listen := func(addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		cleanups = append(cleanups, func() { ln.Close() })
		return ln, nil
	}
	if slices.Contains(roles, RoleWebAPI) {
		req := &producers.Requester{Publisher: signed, Topics: a.Topics, Channels: st.DataMap.ChannelsFor(), Rule: st.Rule}
		receiptKey, err := cfg.ReceiptKey()
		if err != nil {
			return fail(err)
		}
		// Sign-in limits live in the ledger, so every replica shares them.
		attempts, ok := st.Ledger.(webapi.AttemptStore)
		if !ok {
			return fail(errors.New("the ledger keeps no sign-in attempt counters"))
		}
		revoker, ok := st.Ledger.(webapi.SessionRevoker)
		if !ok {
			return fail(errors.New("the ledger keeps no session revocations"))
		}
		web, err := webapi.New(webapi.Config{
			Users: cfg.Web.Users, APITokens: cfg.Web.APITokens, SecureCookies: cfg.Web.SecureCookies,
			SessionTTL: cfg.Web.SessionTTL, SessionIdle: cfg.Web.SessionIdle,
			TrustedProxyHeader: cfg.Web.TrustedProxyHeader, TrustedProxies: cfg.Web.TrustedProxies,
			Deadline: cfg.Deadline, ContactIDRule: st.Rule, OIDC: cfg.Web.OIDC, ReceiptKey: receiptKey, EventKeys: a.EventKeys,
			Reasons: cfg.Reasons, HoldReasons: cfg.Holds.Reasons, HoldLiftReasons: cfg.Holds.LiftReasons,
		}, webapi.Deps{Contacts: st.Index, Inventory: st.Locator, Ledger: st.Ledger, Requests: req, DataMap: st.DataMap,
			Attempts: attempts, Revocations: revoker, Logger: logger.With("role", RoleWebAPI),
			Holds: st.Holds, HoldRequests: &producers.HoldRequester{Publisher: signed, Topics: a.Topics}})
		if err != nil {
			return fail(err)
		}
		a.web = web
		cleanups = append(cleanups, func() { web.Close() })
		// No consumer group: every web API instance must see every event.
		if a.feedSub, err = subscriber("", false); err != nil {
			return fail(err)
		}
		if a.webLn, err = listen(cfg.HTTPAddr); err != nil {
			return fail(err)
		}
	}
	if cfg.MetricsAddr != "" {
		if a.metricsLn, err = listen(cfg.MetricsAddr); err != nil {
			return fail(err)
		}
	}
	return a, cleanup, nil
}

// URL is where the web UI listens, or "" without the web API.
func (a *App) URL() string { return httpURL(a.webLn) }

// MetricsURL is where /metrics and /healthz are served on their own
// listener, or "" when metrics_addr is not set.
func (a *App) MetricsURL() string { return httpURL(a.metricsLn) }

func httpURL(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return "http://" + ln.Addr().String()
}

// Run runs every role until ctx ends, then drains within bounds.
func (a *App) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.router.Run(ctx) })
	// The router stops by itself once its handlers have; one without
	// handlers (a web API alone) only when closed.
	g.Go(func() error {
		<-ctx.Done()
		return a.router.Close()
	})
	if a.agg != nil {
		g.Go(func() error { return a.agg.RunDeadlines(ctx, time.Second) })
		g.Go(func() error { return a.anchorer.run(ctx) })
	}
	serve := func(ln net.Listener, h http.Handler) {
		// Slow or idle clients cannot hold connections open. The websocket
		// is unaffected: the upgrade clears these deadlines on the hijacked
		// connection and its pumps set their own. The write timeout leaves
		// room for a deletion's deadline and a large audit export.
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 2*time.Minute + a.deadline, IdleTimeout: 2 * time.Minute}
		g.Go(func() error {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	if a.web != nil {
		g.Go(func() error { return a.web.RunFeed(ctx, a.feedSub, a.Topics) })
		// No /metrics here: this port faces users; see metrics_addr.
		serve(a.webLn, a.web.Handler())
		// Contacts indexed before phone numbers were normalised are brought
		// up to date in the background, so a data subject's search finds
		// them; the embedded index does it when first used.
		if bf, ok := a.Stores.Index.(subjectBackfiller); ok {
			g.Go(func() error {
				n, err := bf.BackfillSubjectFields(ctx, contactIndex)
				if err != nil && ctx.Err() == nil {
					a.logger.WarnContext(ctx, "contact index: bringing subject fields up to date failed; restart to try again", "error", err)
				} else if n > 0 {
					a.logger.InfoContext(ctx, "contact index: subject fields brought up to date", "documents", n)
				}
				return nil
			})
		}
	}
	if a.metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.Handler())
		// Healthy while the router's handlers run.
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if !a.router.IsRunning() {
				http.Error(w, "not consuming", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ok\n"))
		})
		serve(a.metricsLn, mux)
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Running reports when the router's handlers are consuming.
func (a *App) Running() chan struct{} { return a.router.Running() }

// atLeast drops records below min: the Kafka client and the router are
// chatty at info level, and their debugging detail is rarely what an
// operator needs.
type atLeast struct {
	min slog.Level
	slog.Handler
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return atLeast{h.min, h.Handler.WithAttrs(as)}
}
func (h atLeast) WithGroup(g string) slog.Handler { return atLeast{h.min, h.Handler.WithGroup(g)} }

// Quieter is l without the records below min.
func Quieter(l *slog.Logger, min slog.Level) *slog.Logger {
	return slog.New(atLeast{min: min, Handler: l.Handler()})
}

// Demo is where demo data goes in these stores.
func (s *Stores) Demo() demo.Stores {
	return demo.Stores{Index: s.Index, Objects: s.Objects, Warehouse: s.Warehouse, DataMap: s.DataMap}
}

// scrubDelay is how long the embedded SQLite stores gather deletes before
// one background scrub rewrites the file for all of them (see
// sqlite.Index.DeferScrub): every deletion then says by when its rows are
// physically gone instead of waiting for a rewrite of the whole file.
const scrubDelay = 30 * time.Second

// deferScrubs turns on background scrubbing in a process that runs channel
// consumers, which keeps running to honour it; commands that only read
// never scrub.
func deferScrubs(st *Stores, roles []string) func() {
	for _, role := range roles {
		if strings.HasPrefix(role, RoleConsumer) {
			return DeferScrubs(st)
		}
	}
	return func() {}
}

// DeferScrubs makes the embedded SQLite stores of st scrub in the
// background (see scrubDelay) and returns what runs the scrubs still owed,
// so a process that stops keeps its promises (one that is killed keeps
// them when it starts again: a scrub is owed after opening).
func DeferScrubs(st *Stores) (flush func()) {
	type deferred interface {
		DeferScrub(time.Duration)
		FlushScrub(context.Context) error
	}
	var ds []deferred
	for _, s := range []any{st.Index, st.Warehouse} {
		if d, ok := s.(deferred); ok {
			d.DeferScrub(scrubDelay)
			ds = append(ds, d)
		}
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, d := range ds {
			_ = d.FlushScrub(ctx) // what fails stays owed for the next start
		}
	}
}

// topicsWait bounds how long a process starting waits for the brokers: a
// role started while the broker restarts, or before it is up, waits for it
// instead of exiting with nothing to restart it.
const topicsWait = time.Minute

// ensureTopics creates the topics, trying again with back-off while the
// brokers cannot be reached (a retryable error), up to topicsWait.
func ensureTopics(ctx context.Context, cfg kafka.Config, partitions int32, replication int16, logger *slog.Logger, topics ...string) error {
	give := time.Now().Add(topicsWait)
	wait := 250 * time.Millisecond
	for {
		err := kafka.EnsureTopics(ctx, cfg, partitions, replication, topics...)
		if err == nil || !stores.IsRetryable(err) || time.Now().Add(wait).After(give) {
			return err
		}
		logger.WarnContext(ctx, "kafka: brokers not reachable yet, trying again", "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}
