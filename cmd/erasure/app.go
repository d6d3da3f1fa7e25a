package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/consumers/aggregator"
	"github.com/erasure-project/erasure/consumers/contactsearch"
	"github.com/erasure-project/erasure/consumers/datawarehouse"
	"github.com/erasure-project/erasure/consumers/emailwebform"
	"github.com/erasure-project/erasure/consumers/messaging"
	"github.com/erasure-project/erasure/consumers/social"
	"github.com/erasure-project/erasure/consumers/voice"
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
	roleConsumer   = "consumer:"
)

// AllRoles is every role, as `erasure up` runs them.
func AllRoles() []string {
	r := []string{RoleWebAPI, RoleAggregator}
	for _, ch := range schemas.AllChannels {
		r = append(r, roleConsumer+string(ch))
	}
	return r
}

// Stores are the data stores a process uses.
type Stores struct {
	Index     stores.Index
	Objects   stores.Objects
	Warehouse stores.Warehouse
	Ledger    stores.Ledger
	Locator   *locate.Locator
	DataMap   *locate.DataMap
	Rule      schemas.ContactIDRule
}

// openStores opens the configured stores and returns them with a cleanup.
func openStores(ctx context.Context, cfg Config) (*Stores, func(), error) {
	dm, err := cfg.dataMap()
	if err != nil {
		return nil, nil, err
	}
	rule, err := schemas.NewContactIDRule(cfg.ContactIDPattern)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
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
		o := cfg.Index.OpenSearch
		if s.Index, err = opensearch.New(ctx, opensearch.Config{URLs: o.URLs, User: o.User, Password: o.Password,
			InsecureSkipVerify: o.InsecureSkipVerify, IndexPrefix: o.IndexPrefix}); err != nil {
			return fail(err)
		}
	default:
		db, err := open("index.db")
		if err != nil {
			return fail(err)
		}
		s.Index = sqlite.NewIndex(db)
	}
	switch cfg.Objects.Kind {
	case "s3":
		o := cfg.Objects.S3
		if s.Objects, err = s3.New(ctx, s3.Config{Endpoint: o.Endpoint, Region: o.Region, PathStyle: o.PathStyle,
			AccessKey: o.AccessKey, SecretKey: o.SecretKey}); err != nil {
			return fail(err)
		}
	default:
		s.Objects = disk.New(filepath.Join(cfg.DataDir, "objects"))
	}
	switch cfg.Warehouse.Kind {
	case "clickhouse":
		c := cfg.Warehouse.ClickHouse
		ch, err := clickhouse.NewWarehouse(ctx, clickhouse.Config{Addr: c.Addr, Database: c.Database,
			User: c.User, Password: c.Password, Protocol: c.Protocol, TLS: c.TLS})
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
		led, err := clickhouse.NewLedger(ctx, clickhouse.Config{Addr: c.Addr, Database: c.Database,
			User: c.User, Password: c.Password, Protocol: c.Protocol, TLS: c.TLS})
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
		s.Ledger = sqlite.NewLedger(ldb)
	}
	s.Locator = &locate.Locator{Map: dm, Rule: rule, Index: s.Index, Objects: s.Objects, Warehouse: s.Warehouse}
	return s, cleanup, nil
}

// App is one erasure process: the roles it runs and what they share.
type App struct {
	cfg     Config
	roles   []string
	logger  *slog.Logger
	kafka   kafka.Config
	topics  schemas.Topics
	stores  *Stores
	pub     message.Publisher
	router  *message.Router
	agg     *aggregator.Aggregator
	web     *webapi.Server
	feedSub message.Subscriber
	httpLn  net.Listener
}

// newApp builds every dependency of the given roles and returns the app and
// its cleanup. Brokers must already be reachable.
func newApp(ctx context.Context, cfg Config, roles []string, logger *slog.Logger) (*App, func(), error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
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

	a := &App{cfg: cfg, roles: roles, logger: logger, topics: schemas.Topics{Prefix: cfg.TopicPrefix}}
	a.kafka = kafka.Config{Brokers: cfg.Kafka.Brokers, ClientID: "erasure", Logger: quieter(logger, slog.LevelWarn),
		SASL: kafka.SASL{Mechanism: cfg.Kafka.SASLMechanism, User: cfg.Kafka.SASLUser, Password: cfg.Kafka.SASLPassword}}
	if cfg.Kafka.TLS {
		a.kafka.TLS = defaultTLS()
	}
	if err := kafka.EnsureTopics(ctx, a.kafka, cfg.Partitions, cfg.Replication,
		a.topics.Requests(), a.topics.Finalize(), a.topics.ChannelResults(), a.topics.Outcomes(), a.topics.DLQ()); err != nil {
		return fail(fmt.Errorf("topics: %w", err))
	}
	st, closeStores, err := openStores(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, closeStores)
	a.stores = st

	pub, err := kafka.NewPublisher(a.kafka)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { pub.Close() })
	a.pub = pub

	rcfg := consumers.RouterConfig{DLQTopic: a.topics.DLQ()}
	router, err := consumers.NewRouter(rcfg, pub, quieter(logger, slog.LevelWarn))
	if err != nil {
		return fail(err)
	}
	a.router = router
	subscriber := func(group string, fromStart bool) (message.Subscriber, error) {
		s, err := kafka.NewSubscriber(a.kafka, kafka.SubscriberConfig{ConsumerGroup: group, FromStart: fromStart})
		if err != nil {
			return nil, err
		}
		cleanups = append(cleanups, func() { s.Close() })
		return s, nil
	}

	channels := map[schemas.Channel]func() *consumers.Channel{
		schemas.ChannelDataWarehouse: func() *consumers.Channel { return datawarehouse.New(st.Locator, st.Rule, logger) },
		schemas.ChannelEmailWebform:  func() *consumers.Channel { return emailwebform.New(st.Locator, st.Rule, logger) },
		schemas.ChannelVoice:         func() *consumers.Channel { return voice.New(st.Locator, st.Rule, logger) },
		schemas.ChannelMessaging:     func() *consumers.Channel { return messaging.New(st.Locator, st.Rule, logger) },
		schemas.ChannelSocial:        func() *consumers.Channel { return social.New(st.Locator, st.Rule, logger) },
		schemas.ChannelContactSearch: func() *consumers.Channel { return contactsearch.New(st.Locator, st.Rule, logger) },
	}
	for _, role := range roles {
		ch, ok := strings.CutPrefix(role, roleConsumer)
		if !ok {
			continue
		}
		sub, err := subscriber(schemas.ChannelGroup(schemas.Channel(ch)), true)
		if err != nil {
			return fail(err)
		}
		channels[schemas.Channel(ch)]().Register(router, rcfg, a.topics, sub, pub)
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
		a.agg = &aggregator.Aggregator{Ledger: st.Ledger, Publisher: pub, Topics: a.topics, Rule: st.Rule,
			Required: st.DataMap.ChannelsFor(), Deadline: cfg.Deadline, Logger: logger.With("role", RoleAggregator)}
		a.agg.Register(router, rcfg, reqSub, resSub)
	}
	if slices.Contains(roles, RoleWebAPI) {
		req := &producers.Requester{Publisher: pub, Topics: a.topics, Channels: st.DataMap.ChannelsFor(), Rule: st.Rule}
		web, err := webapi.New(webapi.Config{
			Users: cfg.Web.Users, APITokens: cfg.Web.APITokens, SecureCookies: cfg.Web.SecureCookies,
			Deadline: cfg.Deadline, ContactIDRule: st.Rule, OIDC: cfg.Web.OIDC,
		}, webapi.Deps{Contacts: st.Index, Inventory: st.Locator, Ledger: st.Ledger, Requests: req, DataMap: st.DataMap, Logger: logger.With("role", RoleWebAPI)})
		if err != nil {
			return fail(err)
		}
		a.web = web
		cleanups = append(cleanups, func() { web.Close() })
		// No consumer group: every web API instance must see every event.
		if a.feedSub, err = subscriber("", false); err != nil {
			return fail(err)
		}
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fail(fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err))
		}
		a.httpLn = ln
		cleanups = append(cleanups, func() { ln.Close() })
	} else if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fail(fmt.Errorf("listen %s: %w", cfg.MetricsAddr, err))
		}
		a.httpLn = ln
		cleanups = append(cleanups, func() { ln.Close() })
	}
	return a, cleanup, nil
}

// URL is where the web UI listens.
func (a *App) URL() string {
	if a.httpLn == nil {
		return ""
	}
	return "http://" + a.httpLn.Addr().String()
}

// Run runs every role until ctx ends, then drains within bounds.
func (a *App) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.router.Run(ctx) })
	if a.agg != nil {
		g.Go(func() error { return a.agg.RunDeadlines(ctx, time.Second) })
	}
	if a.httpLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.Handler())
		if a.web != nil {
			g.Go(func() error { return a.web.RunFeed(ctx, a.feedSub, a.topics) })
			mux.Handle("/", a.web.Handler())
		} else {
			// Healthy while the router's handlers run.
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
				if !a.router.IsRunning() {
					http.Error(w, "not consuming", http.StatusServiceUnavailable)
					return
				}
				w.Write([]byte("ok\n"))
			})
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Running reports when the router's handlers are consuming.
func (a *App) Running() chan struct{} { return a.router.Running() }
