package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	chdriver "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/goccy/go-yaml"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/producers"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/clickhouse"
	"github.com/erasure-project/erasure/stores/kafka"
	"github.com/erasure-project/erasure/stores/locate"
)

// benchActor is who the bench's requests name in the audit log.
const benchActor = "erasure-bench"

// benchOptions are the bench's flags.
type benchOptions struct {
	dataDir  string
	contacts int
	bulk     int
	single   int
	batch    int
	inflight int
	deadline time.Duration
	keep     bool
	verbose  bool
	// cpuProfile names the bulk run's CPU profile; the baseline's goes
	// beside it with ".baseline" appended.
	cpuProfile string
}

func cmdBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fl := newCommand("bench", stderr, false)
	fl.Usage = func() {
		fmt.Fprint(stderr, `usage: erasure bench [--config F] [--data DIR] [--contacts N] [--bulk M] [--single K] [--batch B] [--json]

Seeds N demo contacts, then measures: the latency of K single-contact
deletions, request to outcome, one after another; the throughput of a bulk
deletion of M contacts in requests of B; and the raw baseline, the same store
deletes on an identical data set without Kafka or the pipeline. Every role
runs in this process. Without --config the stores and the broker are
embedded, in a fresh data directory; with --config they are the configured
servers, and everything the bench writes goes to names of its own.

`)
		fl.PrintDefaults()
	}
	var o benchOptions
	fl.StringVar(&o.dataDir, "data", "", "directory for this run's local data; must be empty or absent, and is kept (default: a temporary directory, removed afterwards)")
	fl.IntVar(&o.contacts, "contacts", 20000, "contacts seeded into each data set")
	fl.IntVar(&o.bulk, "bulk", 10000, "contacts deleted in the bulk run, and again in the baseline")
	fl.IntVar(&o.single, "single", 100, "single-contact deletions timed one after another")
	fl.IntVar(&o.batch, "batch", schemas.MaxContactsPerRequest, "contacts per bulk request and per baseline batch")
	fl.IntVar(&o.inflight, "inflight", 4, "bulk requests in flight at once")
	fl.DurationVar(&o.deadline, "deadline", 10*time.Minute, "deadline of each request; a request past it fails the bench")
	fl.BoolVar(&o.keep, "keep", false, "leave this run's data behind for inspection (the data directory; on servers its topics, database, indexes and buckets)")
	fl.BoolVar(&o.verbose, "v", false, "log what the pipeline's roles log")
	fl.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the bulk run to this file, and of the baseline to the file with .baseline appended")
	asJSON := fl.Bool("json", false, "print one JSON object instead of the table")
	if err := fl.parse(args); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}
	cfg, err := fl.config()
	if err != nil {
		return err
	}
	res, err := runBench(ctx, cfg, o, newLogger(stderr, slog.LevelInfo))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBench(stdout, res)
	return nil
}

func (o benchOptions) validate() error {
	var errs []error
	if o.batch < 1 || o.batch > schemas.MaxContactsPerRequest {
		errs = append(errs, fmt.Errorf("--batch must be between 1 and %d", schemas.MaxContactsPerRequest))
	}
	if o.bulk < 1 || o.single < 1 {
		errs = append(errs, errors.New("--bulk and --single must be at least 1"))
	}
	if o.inflight < 1 {
		errs = append(errs, errors.New("--inflight must be at least 1"))
	}
	if o.deadline < time.Second || o.deadline > 24*time.Hour {
		errs = append(errs, errors.New("--deadline must be between 1s and 24h"))
	}
	// One more contact than the measured ones: the warm-up request.
	if need := o.single + o.bulk + 1; o.contacts < need {
		errs = append(errs, fmt.Errorf("--contacts must be at least --single + --bulk + 1 (%d)", need))
	}
	return errors.Join(errs...)
}

// benchResult is what a run measured. The first fields are the ones the
// JSON output promises; the rest say how they were obtained.
type benchResult struct {
	P50ms        float64  `json:"p50_ms"`
	P95ms        float64  `json:"p95_ms"`
	P99ms        float64  `json:"p99_ms"`
	BulkPerS     float64  `json:"bulk_contacts_per_s"`
	BaselinePerS float64  `json:"baseline_contacts_per_s"`
	Ratio        float64  `json:"ratio"`
	PeakRSSMiB   *float64 `json:"peak_rss_mib"`
	Contacts     int      `json:"contacts"`
	Stores       string   `json:"stores"`

	SingleRequests       int     `json:"single_requests"`
	WarmupMs             float64 `json:"warmup_ms"`
	BulkContacts         int     `json:"bulk_contacts"`
	Batch                int     `json:"batch"`
	BulkRequests         int     `json:"bulk_requests"`
	InFlight             int     `json:"in_flight"`
	BulkSeconds          float64 `json:"bulk_s"`
	BaselineSeconds      float64 `json:"baseline_s"`
	SeedSeconds          float64 `json:"seed_s"`
	VerifySeconds        float64 `json:"verify_s"`
	CleanupSeconds       float64 `json:"cleanup_s,omitempty"`
	BulkItemsDeleted     int64   `json:"bulk_items_deleted"`
	BaselineItemsDeleted int64   `json:"baseline_items_deleted"`
	SpotChecked          int     `json:"spot_checked"`
	Untouched            int     `json:"untouched_checked"`

	PeakRSSSeedMiB     *float64 `json:"peak_rss_seed_mib,omitempty"`
	PeakRSSPipelineMiB *float64 `json:"peak_rss_pipeline_mib,omitempty"`
	PeakRSSBaselineMiB *float64 `json:"peak_rss_baseline_mib,omitempty"`
	RSSNote            string   `json:"rss_note,omitempty"`

	Machine     benchMachine `json:"machine"`
	Targets     benchTargets `json:"targets"`
	DatasetSeed uint64       `json:"dataset_seed"`
	DataDir     string       `json:"data_dir"`
	DataFS      string       `json:"data_fs,omitempty"`
	Kept        bool         `json:"kept"`
	Namespace   string       `json:"namespace,omitempty"`
	Left        []string     `json:"left_on_servers,omitempty"`
	Notes       []string     `json:"notes,omitempty"`
}

type benchMachine struct {
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	OS         string `json:"goos"`
	Arch       string `json:"goarch"`
	CPU        string `json:"cpu,omitempty"`
	Go         string `json:"go"`
}

// benchTargets are the product's performance targets for this kind of
// deployment, reported and never enforced.
type benchTargets struct {
	Kind     string   `json:"kind"`
	P99MsMax float64  `json:"p99_ms_max"`
	BulkMin  float64  `json:"bulk_contacts_per_s_min"`
	RatioMin float64  `json:"ratio_min,omitempty"`
	Missed   []string `json:"missed"`
}

func targetsFor(embedded bool) benchTargets {
	if embedded {
		return benchTargets{Kind: "embedded", P99MsMax: 1000, BulkMin: 1000, RatioMin: 0.8}
	}
	return benchTargets{Kind: "servers", P99MsMax: 5000, BulkMin: 280, RatioMin: 0.8}
}

func (t *benchTargets) judge(r *benchResult) {
	t.Missed = []string{}
	if r.P99ms > t.P99MsMax {
		t.Missed = append(t.Missed, "p99_ms")
	}
	if r.BulkPerS < t.BulkMin {
		t.Missed = append(t.Missed, "bulk_contacts_per_s")
	}
	if t.RatioMin > 0 && r.Ratio < t.RatioMin {
		t.Missed = append(t.Missed, "ratio")
	}
}

// runBench seeds two identical data sets, measures the pipeline on one and
// the raw store deletes on the other, and removes what it wrote unless
// told to keep it.
func runBench(ctx context.Context, cfg app.Config, o benchOptions, logger *slog.Logger) (res *benchResult, err error) {
	// Everything this process creates is its owner's only, as with `up`:
	// the demo data looks personal.
	defer restrictUmask()()
	root, temporary, err := benchRoot(o.dataDir)
	if err != nil {
		return nil, err
	}
	if temporary && !o.keep {
		defer os.RemoveAll(root)
	}
	run, err := randomHex(4)
	if err != nil {
		return nil, err
	}
	env, err := newBenchEnv(cfg, root, run)
	if err != nil {
		return nil, err
	}
	res = &benchResult{
		Contacts: o.contacts, Stores: env.stores, SingleRequests: o.single, BulkContacts: o.bulk, Batch: o.batch,
		BulkRequests: (o.bulk + o.batch - 1) / o.batch, InFlight: o.inflight,
		Machine: machineInfo(), Targets: targetsFor(env.embedded), DataDir: root, Kept: !temporary || o.keep, Notes: env.notes,
		DataFS: fsType(root),
	}
	if res.DataFS == "tmpfs" || res.DataFS == "ramfs" {
		res.Notes = append(res.Notes, "the local data directory is in memory ("+res.DataFS+"): syncs to it cost nothing; --data on a disk measures one")
	}
	if !env.embedded {
		res.Namespace = "bench-" + run
		if o.keep {
			env.left = append(env.left, env.kept()...)
		}
	}
	// Deferred cleanups run whatever happens, bounded, and even after an
	// interrupt: they remove only what this run created.
	var cleanups []func(context.Context) error
	defer func() {
		if !env.embedded && (err != nil || o.keep) {
			logger.WarnContext(ctx, "left on the servers, in the bench's own names", "names", strings.Join(env.left, "; "))
		}
		if o.keep {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		for i := len(cleanups) - 1; i >= 0; i-- {
			if cerr := cleanups[i](cctx); cerr != nil {
				logger.WarnContext(ctx, "bench cleanup failed", "error", cerr)
				if res != nil {
					res.Notes = append(res.Notes, "cleanup: "+cerr.Error())
				}
			}
		}
	}()
	for _, db := range env.databases {
		drop, err := createBenchDatabase(ctx, cfg.Warehouse.ClickHouse, db)
		if err != nil {
			return nil, err
		}
		cleanups = append(cleanups, drop)
	}

	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	res.DatasetSeed = binary.LittleEndian.Uint64(seed[:])
	// Both data sets come from one seed and one clock: the same contacts,
	// dates, threads and data-lake files, byte for byte.
	dataset := demo.Options{Contacts: o.contacts, Seed: res.DatasetSeed, Now: time.Now().UTC()}
	var seedTime time.Duration
	seedInto := func(out *[]demo.Contact) app.Option {
		return app.Prepare(func(ctx context.Context, st *app.Stores) error {
			start := time.Now()
			cs, err := demo.Seed(ctx, st.Demo(), dataset)
			if err != nil {
				return fmt.Errorf("seed: %w", err)
			}
			seedTime += time.Since(start)
			*out = cs
			return nil
		})
	}

	logger.InfoContext(ctx, "seeding the baseline's data set", "contacts", o.contacts)
	var baseSeeded []demo.Contact
	storeLog := app.WithLogger(app.Quieter(logger, slog.LevelWarn).With("component", "stores"))
	base, closeBase, err := app.OpenStores(ctx, env.base, storeLog, seedInto(&baseSeeded))
	if err != nil {
		return nil, fmt.Errorf("baseline stores: %w", err)
	}
	defer closeBase()
	// Its SQLite stores scrub as the pipeline's consumers do.
	defer app.DeferScrubs(base)()
	logger.InfoContext(ctx, "seeding the pipeline's data set and starting the pipeline", "contacts", o.contacts)
	var seeded []demo.Contact
	p, err := startBenchPipeline(ctx, env.pipe, logger, o.verbose, seedInto(&seeded))
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if len(env.topics) > 0 {
		cleanups = append(cleanups, func(ctx context.Context) error { return deleteBenchTopics(ctx, p.app.Kafka, p.app.Topics) })
	}
	res.SeedSeconds = seedTime.Seconds()
	if !slices.EqualFunc(seeded, baseSeeded, func(a, b demo.Contact) bool { return a.ID == b.ID && a.Date.Equal(b.Date) }) {
		return nil, errors.New("the two data sets differ: the baseline would not measure the same work")
	}

	// Who is deleted where: single contacts first, then the bulk, then one
	// warm-up contact; everyone after that is a bystander that must keep
	// every item.
	ids := make([]string, len(seeded))
	for i, c := range seeded {
		ids[i] = c.ID
	}
	singles, bulk := ids[:o.single], ids[o.single:o.single+o.bulk]
	warmup, bystanders := ids[o.single+o.bulk], ids[o.single+o.bulk+1:]
	untouched := sample(bystanders, 5)
	before := map[string]locate.Remaining{}
	for _, id := range untouched {
		r, err := p.app.Stores.Locator.Remaining(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("inventory before: %w", err)
		}
		before[id] = r
	}

	rss := newRSSMeter()
	rss.phase() // seeding's peak, then a fresh one for the pipeline

	b := &benchPipelineRun{p: p, o: o}
	if err := b.subscribe(ctx); err != nil {
		return nil, err
	}
	defer b.stop()
	// The first request also waits for every consumer to join its group
	// and be assigned partitions; it is reported, not counted.
	logger.InfoContext(ctx, "warm-up request")
	warm, err := b.single(ctx, warmup)
	if err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	res.WarmupMs = ms(warm)

	logger.InfoContext(ctx, "single-contact deletions", "requests", o.single)
	lat := make([]time.Duration, 0, len(singles))
	for _, id := range singles {
		d, err := b.single(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("single-contact deletion %d of %d: %w", len(lat)+1, len(singles), err)
		}
		lat = append(lat, d)
	}
	res.P50ms, res.P95ms, res.P99ms = ms(percentile(lat, 50)), ms(percentile(lat, 95)), ms(percentile(lat, 99))

	logger.InfoContext(ctx, "bulk deletion", "contacts", len(bulk), "requests", res.BulkRequests, "in_flight", o.inflight)
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return nil, err
	}
	took, deleted, err := b.bulk(ctx, bulk)
	stopProfile()
	if err != nil {
		return nil, fmt.Errorf("bulk: %w", err)
	}
	res.BulkSeconds, res.BulkItemsDeleted = took.Seconds(), deleted
	res.BulkPerS = float64(len(bulk)) / took.Seconds()
	pipePeak := rss.phase()

	verifyStart := time.Now()
	checks := append(sample(bulk, 20), sample(singles, 5)...)
	if err := spotCheckGone(ctx, p.app.Stores.Locator, checks); err != nil {
		return nil, fmt.Errorf("after the pipeline: %w", err)
	}
	for _, id := range untouched {
		after, err := p.app.Stores.Locator.Remaining(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("inventory after: %w", err)
		}
		if err := sameItems(before[id], after); err != nil {
			return nil, fmt.Errorf("contact %s was not to be deleted: %w", id, err)
		}
	}
	res.SpotChecked, res.Untouched = len(checks), len(untouched)
	verifyTime := time.Since(verifyStart)
	// The baseline gets the machine to itself, as the pipeline had.
	b.stop()
	if err := p.stop(); err != nil {
		return nil, err
	}

	// The baseline's stores lose what the pipeline's lost before the bulk
	// run, untimed, so both bulk deletions start from the same state.
	chans := base.DataMap.ChannelsFor()
	if _, err := baselineErase(ctx, base.Locator, chans, append(slices.Clone(singles), warmup), o.batch); err != nil {
		return nil, fmt.Errorf("baseline: preparing its data set: %w", err)
	}
	rss.phase()
	logger.InfoContext(ctx, "raw baseline", "contacts", len(bulk), "batches", res.BulkRequests)
	baseProfile := ""
	if o.cpuProfile != "" {
		baseProfile = o.cpuProfile + ".baseline"
	}
	stopProfile, err = startCPUProfile(baseProfile)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	baseDeleted, err := baselineErase(ctx, base.Locator, chans, bulk, o.batch)
	stopProfile()
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	baseTook := time.Since(start)
	basePeak := rss.phase()
	res.BaselineSeconds, res.BaselineItemsDeleted = baseTook.Seconds(), baseDeleted
	res.BaselinePerS = float64(len(bulk)) / baseTook.Seconds()
	res.Ratio = res.BulkPerS / res.BaselinePerS
	verifyStart = time.Now()
	if err := spotCheckGone(ctx, base.Locator, sample(bulk, 20)); err != nil {
		return nil, fmt.Errorf("after the baseline: %w", err)
	}
	res.SpotChecked += min(20, len(bulk))
	res.VerifySeconds = (verifyTime + time.Since(verifyStart)).Seconds()
	if res.BulkItemsDeleted != res.BaselineItemsDeleted {
		// Identical data sets give identical counts, unless the pipeline's
		// outcomes lose the counts of an attempt that was retried.
		res.Notes = append(res.Notes, fmt.Sprintf("from identical data sets the pipeline's outcomes report %d items deleted and the baseline %d: "+
			"an outcome counts only the last attempt of a retried channel, or the two runs did not do the same work", res.BulkItemsDeleted, res.BaselineItemsDeleted))
	}

	res.PeakRSSMiB, res.RSSNote = rss.peak()
	if rss.phases {
		res.PeakRSSSeedMiB, res.PeakRSSPipelineMiB, res.PeakRSSBaselineMiB = rss.seed, pipePeak, basePeak
	}
	res.Targets.judge(res)

	if !env.embedded {
		if !o.keep {
			start := time.Now()
			if err := eraseRest(ctx, env.pipe, base.Locator, chans, bystanders, o.batch, logger, storeLog); err != nil {
				// The measurement stands; what is left is in the bench's names.
				logger.WarnContext(ctx, "erasing the rest of the bench's contacts failed", "error", err)
				res.Notes = append(res.Notes, "erasing the rest of the bench's contacts failed, so its indexes and buckets still hold some: "+err.Error())
			}
			res.CleanupSeconds = time.Since(start).Seconds()
		}
		res.Left = env.left
	}
	return res, nil
}

// eraseRest erases the contacts no measurement deleted from both data
// sets, so that no demo data is left on the servers; the pipeline's stores
// are closed by now and are opened again for it.
func eraseRest(ctx context.Context, pipe app.Config, base *locate.Locator, chans []schemas.Channel, ids []string, batch int, logger *slog.Logger, opts ...app.Option) error {
	logger.InfoContext(ctx, "erasing the rest of the bench's contacts", "contacts", len(ids))
	st, closeStores, err := app.OpenStores(ctx, pipe, opts...)
	if err != nil {
		return err
	}
	defer closeStores()
	if _, err := baselineErase(ctx, st.Locator, chans, ids, batch); err != nil {
		return err
	}
	_, err = baselineErase(ctx, base, chans, ids, batch)
	return err
}

// benchRoot is the run's local directory: dir, which must be empty or
// absent so that the data sets are fresh, or a new temporary one.
func benchRoot(dir string) (string, bool, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "erasure-bench-")
		return d, true, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("--data: %w", err)
	}
	if len(entries) > 0 {
		return "", false, fmt.Errorf("--data %s is not empty: the bench needs fresh data sets", dir)
	}
	return dir, false, os.MkdirAll(dir, 0o700)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// benchEnv is the configuration of the pipeline's data set and of the
// baseline's, each in names of its own.
type benchEnv struct {
	pipe, base app.Config
	embedded   bool
	stores     string
	databases  []string // ClickHouse databases to create and drop
	topics     []string
	left       []string // names left on servers, empty, that no store call removes
	notes      []string
}

// newBenchEnv derives both configurations from cfg. On servers every name
// the bench writes to is its own: topics and OpenSearch indexes get a
// prefix, buckets a suffix, and ClickHouse a database, all carrying the run
// ID. Keys, the audit log's anchors and its ledger (unless on ClickHouse)
// stay in the local directory, so that nothing of the deployment's own is
// signed, anchored or read. The demo dataset fits the default data map, so
// that one is used.
func newBenchEnv(cfg app.Config, root, run string) (benchEnv, error) {
	env := benchEnv{embedded: cfg.Index.Kind == "sqlite" && cfg.Objects.Kind == "disk" &&
		cfg.Warehouse.Kind == "sqlite" && cfg.Ledger.Kind == "sqlite" && len(cfg.Kafka.Brokers) == 0}
	env.stores = describeStores(cfg)
	if cfg.DataMapFile != "" {
		env.notes = append(env.notes, "the configured data map is not used: the demo dataset follows the default data map")
	}
	if len(cfg.Kafka.Brokers) > 0 {
		env.notes = append(env.notes, "consumer groups have fixed names: on a cluster a deployment uses, the bench's consumers join its groups (they read only the bench's topics, but the deployment's consumers rebalance)")
	}
	derive := func(c app.Config, name, suffix string) (app.Config, error) {
		c.DataDir = filepath.Join(root, name)
		c.HTTPAddr, c.MetricsAddr = "127.0.0.1:0", ""
		c.Web, c.Events, c.Receipts, c.Audit = app.WebConfig{}, app.EventsConfig{}, app.ReceiptsConfig{}, app.AuditConfig{}
		c.DemoContacts = 0
		c.DataMapFile = ""
		tag := "bench-" + run + suffix
		if len(c.Kafka.Brokers) > 0 {
			c.TopicPrefix += tag + "."
		}
		if c.Index.Kind == "opensearch" {
			c.Index.OpenSearch.IndexPrefix += tag + "-"
			env.left = append(env.left, "opensearch indexes "+c.Index.OpenSearch.IndexPrefix+"*")
		}
		if c.Warehouse.Kind == "clickhouse" || c.Ledger.Kind == "clickhouse" {
			db := "erasure_" + strings.ReplaceAll(tag, "-", "_")
			if err := stores.CheckIdent("database", db); err != nil {
				return c, err
			}
			c.Warehouse.ClickHouse.Database, c.Ledger.Database = db, db
			env.databases = append(env.databases, db)
		}
		if c.Objects.Kind == "s3" {
			dm, err := locate.DefaultDataMap()
			if err != nil {
				return c, err
			}
			var buckets []string
			for _, arts := range dm.Channels {
				for i := range arts {
					if arts[i].Bucket != "" {
						arts[i].Bucket += "-" + tag
						buckets = append(buckets, arts[i].Bucket)
					}
				}
			}
			slices.Sort(buckets)
			env.left = append(env.left, "s3 buckets "+strings.Join(slices.Compact(buckets), ", "))
			raw, err := yaml.Marshal(dm)
			if err != nil {
				return c, fmt.Errorf("data map: %w", err)
			}
			if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
				return c, err
			}
			c.DataMapFile = filepath.Join(c.DataDir, "datamap.yaml")
			if err := os.WriteFile(c.DataMapFile, raw, 0o600); err != nil {
				return c, err
			}
		}
		return c, nil
	}
	var err error
	if env.pipe, err = derive(cfg, "pipeline", ""); err != nil {
		return env, err
	}
	// The baseline writes no audit entries: its ledger is a local one.
	base := cfg
	base.Ledger = app.LedgerConfig{Kind: "sqlite"}
	if env.base, err = derive(base, "baseline", "-base"); err != nil {
		return env, err
	}
	if len(cfg.Kafka.Brokers) > 0 {
		t := schemas.Topics{Prefix: env.pipe.TopicPrefix}
		env.topics = []string{t.Requests(), t.Finalize(), t.ChannelResults(), t.Outcomes(), t.DLQ()}
	}
	return env, env.pipe.Validate()
}

// kept lists what --keep leaves on the servers besides indexes and buckets.
func (e benchEnv) kept() []string {
	var out []string
	if len(e.databases) > 0 {
		out = append(out, "clickhouse databases "+strings.Join(e.databases, ", "))
	}
	if len(e.topics) > 0 {
		out = append(out, "kafka topics "+strings.Join(e.topics, ", "))
	}
	return out
}

// describeStores names the stores and broker a configuration uses, without
// credentials.
func describeStores(cfg app.Config) string {
	var parts []string
	embedded := 0
	if len(cfg.Kafka.Brokers) > 0 {
		parts = append(parts, "kafka "+strings.Join(cfg.Kafka.Brokers, ","))
	} else {
		parts, embedded = append(parts, "embedded broker"), embedded+1
	}
	switch cfg.Index.Kind {
	case "opensearch":
		parts = append(parts, "opensearch "+strings.Join(redactURLs(cfg.Index.OpenSearch.URLs), ","))
	default:
		parts, embedded = append(parts, "embedded index"), embedded+1
	}
	switch cfg.Objects.Kind {
	case "s3":
		ep := cfg.Objects.S3.Endpoint
		if ep == "" {
			ep = "aws " + cfg.Objects.S3.Region
		}
		parts = append(parts, "s3 "+strings.Join(redactURLs([]string{ep}), ""))
	default:
		parts, embedded = append(parts, "embedded objects"), embedded+1
	}
	switch cfg.Warehouse.Kind {
	case "clickhouse":
		parts = append(parts, "clickhouse "+strings.Join(cfg.Warehouse.ClickHouse.Addr, ","))
	default:
		parts, embedded = append(parts, "embedded warehouse"), embedded+1
	}
	if cfg.Ledger.Kind == "clickhouse" {
		parts = append(parts, "ledger on clickhouse")
	}
	if embedded == 4 && cfg.Ledger.Kind != "clickhouse" {
		return "embedded"
	}
	return strings.Join(parts, ", ")
}

func redactURLs(us []string) []string {
	out := make([]string, 0, len(us))
	for _, s := range us {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			u.User = nil
			s = u.String()
		}
		out = append(out, s)
	}
	return out
}

// createBenchDatabase creates a ClickHouse database for this run and
// returns how to drop it. CREATE without IF NOT EXISTS: a database that
// exists already is someone else's, and is neither used nor dropped.
func createBenchDatabase(ctx context.Context, c clickhouse.Config, name string) (func(context.Context) error, error) {
	if err := stores.CheckIdent("database", name); err != nil {
		return nil, err
	}
	opts := &chdriver.Options{Addr: c.Addr, Auth: chdriver.Auth{Database: c.Database, Username: c.User, Password: c.Password},
		DialTimeout: 10 * time.Second}
	if strings.EqualFold(c.Protocol, "http") {
		opts.Protocol = chdriver.HTTP
	}
	if c.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conn, err := chdriver.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	if err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse: create the bench's database %s: %w", name, err)
	}
	return func(ctx context.Context) error {
		defer conn.Close()
		if err := conn.Exec(ctx, "DROP DATABASE "+name); err != nil {
			return fmt.Errorf("clickhouse: drop the bench's database %s: %w", name, err)
		}
		return nil
	}, nil
}

// deleteBenchTopics deletes the run's own topics.
func deleteBenchTopics(ctx context.Context, cfg kafka.Config, t schemas.Topics) error {
	cl, err := kgo.NewClient(cfg.Opts()...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).DeleteTopics(ctx, t.Requests(), t.Finalize(), t.ChannelResults(), t.Outcomes(), t.DLQ())
	if err != nil {
		return fmt.Errorf("kafka: delete the bench's topics: %w", err)
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("kafka: delete topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// benchPipeline is every role but the web API, in this process.
type benchPipeline struct {
	app    *app.App
	broker *kafka.EmbeddedBroker

	once    sync.Once
	stopErr error
	cancel  context.CancelFunc
	done    chan error
	cleanup func()
}

func startBenchPipeline(ctx context.Context, cfg app.Config, logger *slog.Logger, verbose bool, opts ...app.Option) (*benchPipeline, error) {
	appLogger := app.Quieter(logger, slog.LevelWarn)
	if verbose {
		appLogger = logger
	}
	p := &benchPipeline{done: make(chan error, 1)}
	if len(cfg.Kafka.Brokers) == 0 {
		b, err := kafka.StartEmbedded(ctx, filepath.Join(cfg.DataDir, "kafka"), 0, cfg.Partitions, appLogger)
		if err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		p.broker = b
		cfg.Kafka.Brokers = []string{b.Addr()}
	}
	roles := slices.DeleteFunc(app.AllRoles(), func(r string) bool { return r == app.RoleWebAPI })
	a, cleanup, err := app.New(ctx, cfg, roles, appLogger, opts...)
	if err != nil {
		if p.broker != nil {
			p.broker.Close()
		}
		return nil, err
	}
	p.app, p.cleanup = a, cleanup
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	go func() { p.done <- a.Run(rctx) }()
	select {
	case <-a.Running():
		return p, nil
	case err := <-p.done:
		p.done <- err
		p.stop()
		return nil, fmt.Errorf("pipeline stopped at start: %w", err)
	case <-time.After(time.Minute):
		p.stop()
		return nil, errors.New("pipeline: the router did not start within a minute")
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// stop stops the roles and closes their clients and stores; calls after
// the first return its result.
func (p *benchPipeline) stop() error {
	p.once.Do(func() {
		p.cancel()
		select {
		case err := <-p.done:
			if err != nil {
				p.stopErr = fmt.Errorf("pipeline: %w", err)
			}
		case <-time.After(time.Minute):
			p.stopErr = errors.New("pipeline: the roles did not stop within a minute")
		}
		p.cleanup()
		if p.broker != nil {
			p.broker.Close()
		}
	})
	return p.stopErr
}

// benchPipelineRun submits requests and matches their outcomes.
type benchPipelineRun struct {
	p *benchPipeline
	o benchOptions
	q *producers.Requester

	mu      sync.Mutex
	waiting map[string]benchWaiter
	feedErr chan error
	stop    context.CancelFunc
}

type benchWaiter struct {
	digest string
	ch     chan benchArrival
}

type benchArrival struct {
	out schemas.DeletionCompleted
	at  time.Time
}

// outcomeGrace is how long after a request's deadline its outcome may
// still come: the aggregator fails a request past it within a second or so.
const outcomeGrace = time.Minute

// subscribe reads the outcomes topic from its start (the topics are this
// run's own), keeping the signed outcomes of requests that are waited for.
func (b *benchPipelineRun) subscribe(ctx context.Context) error {
	ctx, b.stop = context.WithCancel(ctx)
	a := b.p.app
	b.q = &producers.Requester{Publisher: a.Publisher, Topics: a.Topics, Channels: a.Stores.DataMap.ChannelsFor(), Rule: a.Stores.Rule}
	b.waiting = map[string]benchWaiter{}
	b.feedErr = make(chan error, 1)
	sub, err := kafka.NewSubscriber(a.Kafka, kafka.SubscriberConfig{FromStart: true})
	if err != nil {
		return err
	}
	msgs, err := sub.Subscribe(ctx, a.Topics.Outcomes())
	if err != nil {
		sub.Close()
		return fmt.Errorf("subscribe to outcomes: %w", err)
	}
	go func() {
		defer sub.Close()
		for m := range msgs {
			at := time.Now()
			var out schemas.DeletionCompleted
			verr := consumers.VerifyMessage(a.EventKeys, a.Topics.Outcomes(), m)
			derr := schemas.Decode(m.Payload, a.Stores.Rule, &out)
			m.Ack()
			if verr != nil || derr != nil {
				continue
			}
			b.mu.Lock()
			w, ok := b.waiting[out.RequestID]
			if ok && (out.RequestDigest == "" || out.RequestDigest == w.digest) {
				delete(b.waiting, out.RequestID)
				w.ch <- benchArrival{out: out, at: at}
			}
			b.mu.Unlock()
		}
		if ctx.Err() == nil {
			b.feedErr <- errors.New("the outcome stream closed")
		}
	}()
	return nil
}

// submit publishes one request and returns when it was published and where
// its outcome will arrive.
func (b *benchPipelineRun) submit(ids []string) (schemas.DeletionRequested, <-chan benchArrival, time.Time, error) {
	ev, err := b.q.Build(producers.Request{ContactIDs: ids, RequestedBy: benchActor, Source: schemas.SourceCLI, Deadline: b.o.deadline})
	if err != nil {
		return ev, nil, time.Time{}, err
	}
	msg, err := producers.NewMessage(&ev, ev.RequestID)
	if err != nil {
		return ev, nil, time.Time{}, err
	}
	ch := make(chan benchArrival, 1)
	b.mu.Lock()
	b.waiting[ev.RequestID] = benchWaiter{digest: ev.ContentDigest(), ch: ch}
	b.mu.Unlock()
	start := time.Now()
	if err := b.p.app.Publisher.Publish(b.p.app.Topics.Requests(), msg); err != nil {
		return ev, nil, start, fmt.Errorf("publish: %w", err)
	}
	return ev, ch, start, nil
}

// await waits for a request's outcome; anything but a success of every
// contact fails the bench, since a failure is no throughput.
func (b *benchPipelineRun) await(ctx context.Context, ev schemas.DeletionRequested, ch <-chan benchArrival) (benchArrival, error) {
	t := time.NewTimer(b.o.deadline + outcomeGrace)
	defer t.Stop()
	select {
	case a := <-ch:
		return a, checkOutcome(ev, a.out)
	case err := <-b.feedErr:
		b.feedErr <- err
		return benchArrival{}, err
	case <-t.C:
		return benchArrival{}, fmt.Errorf("request %s: no outcome within %s", ev.RequestID, b.o.deadline+outcomeGrace)
	case <-ctx.Done():
		return benchArrival{}, ctx.Err()
	}
}

func checkOutcome(ev schemas.DeletionRequested, out schemas.DeletionCompleted) error {
	if out.Status == schemas.StatusSucceeded && len(out.ContactIDs) == len(ev.ContactIDs) {
		return nil
	}
	why := string(out.Status)
	if out.ErrorCode != "" {
		why += " (" + out.ErrorCode + ")"
	}
	var chans []string
	for _, c := range out.Channels {
		if c.Status != schemas.StatusSucceeded {
			s := string(c.Channel) + " " + string(c.Status)
			if c.ErrorCode != "" {
				s += " (" + c.ErrorCode + ")"
			}
			chans = append(chans, s)
		}
	}
	if len(chans) > 0 {
		why += "; channels: " + strings.Join(chans, ", ")
	}
	if out.Status == schemas.StatusSucceeded {
		why += fmt.Sprintf("; %d of %d contacts", len(out.ContactIDs), len(ev.ContactIDs))
	}
	if out.ErrorCode == schemas.ErrCodeDeadline {
		why += "; a longer --deadline lets a slow run finish"
	}
	return fmt.Errorf("request %s (%d contacts): %s", ev.RequestID, len(ev.ContactIDs), why)
}

// single deletes one contact and returns the time from publishing the
// request to receiving its outcome.
func (b *benchPipelineRun) single(ctx context.Context, id string) (time.Duration, error) {
	ev, ch, start, err := b.submit([]string{id})
	if err != nil {
		return 0, err
	}
	a, err := b.await(ctx, ev, ch)
	if err != nil {
		return 0, err
	}
	return a.at.Sub(start), nil
}

// bulk deletes ids in requests of the batch size, at most inflight at a
// time, and returns the time from the first publish to the last outcome
// and the items the outcomes report deleted.
func (b *benchPipelineRun) bulk(ctx context.Context, ids []string) (time.Duration, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := slices.Collect(slices.Chunk(ids, b.o.batch))
	type result struct {
		a   benchArrival
		err error
	}
	results := make(chan result, len(batches)+1)
	slots := make(chan struct{}, b.o.inflight)
	start := time.Now()
	go func() {
		for _, batch := range batches {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			ev, ch, _, err := b.submit(batch)
			if err != nil {
				results <- result{err: err}
				return
			}
			go func() {
				a, err := b.await(ctx, ev, ch)
				results <- result{a, err}
				<-slots
			}()
		}
	}()
	var last time.Time
	var deleted int64
	for range batches {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		if r.err != nil {
			return 0, 0, r.err
		}
		if r.a.at.After(last) {
			last = r.a.at
		}
		deleted += itemsDeleted(r.a.out)
	}
	return last.Sub(start), deleted, nil
}

func itemsDeleted(out schemas.DeletionCompleted) int64 {
	var n int64
	for _, c := range out.Channels {
		for _, a := range c.Artefacts {
			n += a.Deleted
		}
	}
	return n
}

// baselineErase issues the pipeline's store deletes directly: per batch,
// every channel in the order a request names them (contact-search last),
// one after another. It returns the items deleted.
func baselineErase(ctx context.Context, l *locate.Locator, chans []schemas.Channel, ids []string, batch int) (int64, error) {
	var deleted int64
	for part := range slices.Chunk(ids, batch) {
		for _, ch := range chans {
			counts, err := l.EraseChannel(ctx, ch, part, nil)
			if err != nil {
				return deleted, fmt.Errorf("%s: %w", ch, err)
			}
			for _, c := range counts {
				deleted += c.Deleted
				if c.After != 0 {
					return deleted, fmt.Errorf("%s/%s: %d items left", ch, c.Artefact, c.After)
				}
			}
		}
	}
	return deleted, nil
}

// spotCheckGone fails unless every store has nothing left of ids, scanning
// every date the data map allows.
func spotCheckGone(ctx context.Context, l *locate.Locator, ids []string) error {
	for _, id := range ids {
		r, err := l.Remaining(ctx, id)
		if err != nil {
			return fmt.Errorf("verify %s: %w", id, err)
		}
		if r.Total() != 0 {
			return fmt.Errorf("contact %s reported deleted still has %d items: %s", id, r.Total(), describeRemaining(r))
		}
	}
	return nil
}

// sameItems fails unless a bystander kept every item.
func sameItems(before, after locate.Remaining) error {
	var lost []string
	for ch, arts := range before {
		for a, n := range arts {
			if m := after[ch][a]; m != n {
				lost = append(lost, fmt.Sprintf("%s/%s %d -> %d", ch, a, n, m))
			}
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		return errors.New(strings.Join(lost, ", "))
	}
	return nil
}

func describeRemaining(r locate.Remaining) string {
	var s []string
	for ch, arts := range r {
		for a, n := range arts {
			if n > 0 {
				s = append(s, fmt.Sprintf("%s/%s %d", ch, a, n))
			}
		}
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// sample picks up to n of ids, spread evenly.
func sample(ids []string, n int) []string {
	if len(ids) <= n {
		return slices.Clone(ids)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = ids[i*len(ids)/n]
	}
	return out
}

// percentile is the nearest-rank percentile: the smallest value with at
// least p% of the values at or below it.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// startCPUProfile profiles the process into file until the returned
// function is called; without a file it does nothing.
func startCPUProfile(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeHeapProfile writes the heap profile of what is live now (after a
// collection) to file, saying so on stderr if it cannot.
func writeHeapProfile(file string, stderr io.Writer) {
	f, err := os.Create(file)
	if err == nil {
		runtime.GC()
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "heap profile: %v\n", err)
	}
}

// rssMeter reads the process's peak resident set (VmHWM) per phase. The
// kernel resets the peak on writing 5 to clear_refs; where that is refused
// only the whole run's peak is known.
type rssMeter struct {
	phases  bool
	seed    *float64
	max     float64
	err     error
	started bool
}

const procStatus = "/proc/self/status"

func newRSSMeter() *rssMeter { return &rssMeter{} }

// phase returns the peak since the last phase (MiB, nil if unknown) and
// starts a new one.
func (m *rssMeter) phase() *float64 {
	// Memory the seeding freed is returned first, so the next phase's peak
	// is its own.
	debug.FreeOSMemory()
	v, err := vmHWM()
	if err != nil {
		m.err = err
		return nil
	}
	m.max = max(m.max, v)
	first := !m.started
	m.started = true
	resetErr := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	if first {
		m.phases = resetErr == nil
		m.seed = &v
	}
	return &v
}

// peak is the whole run's peak, or nil and why not.
func (m *rssMeter) peak() (*float64, string) {
	if m.err != nil {
		return nil, fmt.Sprintf("peak RSS is read from %s, which this system does not have (%s)", procStatus, runtime.GOOS)
	}
	v, err := vmHWM()
	if err != nil {
		return nil, err.Error()
	}
	v = max(v, m.max)
	if !m.phases {
		return &v, "the kernel refused to reset the peak RSS: only the whole run's peak is known"
	}
	return &v, ""
}

// vmHWM is the process's peak resident set in MiB.
func vmHWM() (float64, error) {
	f, err := os.Open(procStatus)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("%s: VmHWM: %w", procStatus, err)
			}
			return kb / 1024, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no VmHWM", procStatus)
}

// fsType is the type of the file system dir is on, from the longest mount
// point that holds it in /proc/self/mountinfo ("" where there is none).
func fsType(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	best, typ := -1, ""
	for line := range strings.Lines(string(raw)) {
		// ID parent major:minor root mount-point options... - type source ...
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 1 {
			continue
		}
		mp := f[4]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, typ = len(mp), g[0]
		}
	}
	return typ
}

func machineInfo() benchMachine {
	m := benchMachine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(raw)) {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func printBench(w io.Writer, r *benchResult) {
	m := r.Machine
	cpu := m.CPU
	if cpu == "" {
		cpu = "CPU model unknown"
	}
	fmt.Fprintf(w, "erasure bench\n")
	fmt.Fprintf(w, "  machine   %d cores (GOMAXPROCS %d), %s/%s, %s, %s\n", m.Cores, m.GOMAXPROCS, m.OS, m.Arch, cpu, m.Go)
	fmt.Fprintf(w, "  stores    %s\n", r.Stores)
	where := r.DataDir + " (removed afterwards"
	if r.Kept {
		where = r.DataDir + " (kept"
	}
	if r.DataFS != "" {
		where += ", " + r.DataFS
	}
	where += ")"
	fmt.Fprintf(w, "  local     %s\n", where)
	fmt.Fprintf(w, "  seeding   %d contacts into each of two identical data sets in %.1f s (not measured)\n\n", r.Contacts, r.SeedSeconds)

	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	t := r.Targets
	mark := func(field string) string {
		if slices.Contains(t.Missed, field) {
			return "  missed"
		}
		return "  met"
	}
	rss := func(v *float64) string {
		if v == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.0f MiB", *v)
	}
	single := fmt.Sprintf("single contact, request to outcome (%d requests)", r.SingleRequests)
	fmt.Fprintf(tw, "  measure\tresult\ttarget (%s)\n", t.Kind)
	fmt.Fprintf(tw, "  %s p50\t%.0f ms\t\n", single, r.P50ms)
	fmt.Fprintf(tw, "  %s p95\t%.0f ms\t\n", single, r.P95ms)
	fmt.Fprintf(tw, "  %s p99\t%.0f ms\t≤ %.0f ms%s\n", single, r.P99ms, t.P99MsMax, mark("p99_ms"))
	fmt.Fprintf(tw, "  bulk: %d contacts, %d requests of ≤ %d, ≤ %d in flight\t%.1f contacts/s\t≥ %.0f/s%s\n",
		r.BulkContacts, r.BulkRequests, r.Batch, r.InFlight, r.BulkPerS, t.BulkMin, mark("bulk_contacts_per_s"))
	fmt.Fprintf(tw, "  raw baseline: the same deletes and batches, no Kafka or pipeline\t%.1f contacts/s\t\n", r.BaselinePerS)
	ratioTarget := ""
	if t.RatioMin > 0 {
		ratioTarget = fmt.Sprintf("≥ %.2f%s", t.RatioMin, mark("ratio"))
	}
	fmt.Fprintf(tw, "  ratio bulk / baseline\t%.2f\t%s\n", r.Ratio, ratioTarget)
	fmt.Fprintf(tw, "  peak RSS, whole run\t%s\t\n", rss(r.PeakRSSMiB))
	if r.PeakRSSPipelineMiB != nil {
		fmt.Fprintf(tw, "  peak RSS while seeding / pipeline / baseline\t%s / %s / %s\t\n", rss(r.PeakRSSSeedMiB), rss(r.PeakRSSPipelineMiB), rss(r.PeakRSSBaselineMiB))
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
	fmt.Fprintf(w, "\n  warm-up request %.0f ms (not counted); bulk %.1f s, baseline %.1f s; items deleted: bulk %d, baseline %d\n",
		r.WarmupMs, r.BulkSeconds, r.BaselineSeconds, r.BulkItemsDeleted, r.BaselineItemsDeleted)
	fmt.Fprintf(w, "  verified: %d deleted contacts gone from every store, %d other contacts untouched (%.1f s)\n",
		r.SpotChecked, r.Untouched, r.VerifySeconds)
	if r.RSSNote != "" {
		fmt.Fprintf(w, "  note: %s\n", r.RSSNote)
	}
	if r.CleanupSeconds > 0 {
		fmt.Fprintf(w, "  the rest of the bench's contacts were erased in %.1f s\n", r.CleanupSeconds)
	}
	for _, l := range r.Left {
		fmt.Fprintf(w, "  left on the servers: %s\n", l)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}
