// Package app wires erasure's roles together: it loads the one
// configuration, opens the stores it names, and builds the consumers, the
// aggregator and the web API of the roles a process runs.
package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/clickhouse"
	"github.com/erasure-project/erasure/stores/kafka"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/stores/opensearch"
	"github.com/erasure-project/erasure/stores/s3"
	"github.com/erasure-project/erasure/webapi"
)

// Config is the one configuration of the erasure binary: YAML from --config,
// then ERASURE_* environment overrides, then flags.
type Config struct {
	// DataDir holds everything the embedded defaults store.
	DataDir  string `yaml:"data_dir"`
	HTTPAddr string `yaml:"http_addr"`
	// MetricsAddr, when set, serves /metrics and /healthz on a listener of
	// their own. /metrics is never served on HTTPAddr, which faces users;
	// the web API's /healthz is.
	MetricsAddr string `yaml:"metrics_addr"`

	TopicPrefix      string        `yaml:"topic_prefix"`
	Partitions       int32         `yaml:"partitions"`
	Replication      int16         `yaml:"replication"`
	Deadline         time.Duration `yaml:"deadline"`
	ContactIDPattern string        `yaml:"contact_id_pattern"`
	// PhoneRegion reads phone numbers written without a country code
	// ("07700 900304"), when contacts are indexed and when they are
	// searched for, as numbers of this region (ISO 3166-1 alpha-2; default
	// GB). Contacts keep what they were indexed with: re-index after a
	// change.
	PhoneRegion string `yaml:"phone_region"`
	// Reasons are the reason codes a deletion may give in the UI and the
	// CLI, with their labels (default webapi.DefaultReasons).
	Reasons []webapi.Reason `yaml:"reasons"`
	// Holds are the reasons a legal hold may be placed and lifted for.
	Holds HoldsConfig `yaml:"holds"`

	Kafka     KafkaConfig     `yaml:"kafka"`
	Index     IndexConfig     `yaml:"index"`
	Objects   ObjectsConfig   `yaml:"objects"`
	Warehouse WarehouseConfig `yaml:"warehouse"`
	Ledger    LedgerConfig    `yaml:"ledger"`

	// DataMapFile replaces the default data map.
	DataMapFile string `yaml:"data_map_file"`

	Web WebConfig `yaml:"web"`

	Receipts ReceiptsConfig `yaml:"receipts"`

	Audit AuditConfig `yaml:"audit"`

	Events EventsConfig `yaml:"events"`

	Upstream UpstreamConfig `yaml:"upstream"`

	// DemoContacts is how many contacts `erasure up` seeds on first start.
	DemoContacts int `yaml:"demo_contacts"`
}

// KafkaConfig is the broker the pipeline uses. An empty broker list means
// the embedded broker, which only `erasure up` runs, on EmbeddedPort.
type KafkaConfig struct {
	kafka.Config `yaml:",inline"`
	EmbeddedPort int `yaml:"embedded_port"`
}

// IndexConfig selects the search index: "sqlite" (embedded) or "opensearch".
type IndexConfig struct {
	Kind       string            `yaml:"kind"`
	OpenSearch opensearch.Config `yaml:"opensearch"`
}

// ObjectsConfig selects object storage: "disk" (embedded) or "s3".
type ObjectsConfig struct {
	Kind string    `yaml:"kind"`
	S3   s3.Config `yaml:"s3"`
}

// WarehouseConfig selects the warehouse: "sqlite" (embedded) or
// "clickhouse".
type WarehouseConfig struct {
	Kind       string            `yaml:"kind"`
	ClickHouse clickhouse.Config `yaml:"clickhouse"`
}

// LedgerConfig selects where join state and the audit log live: "sqlite"
// (in the data directory) or "clickhouse" (the warehouse's server, in
// Database if set). Either may be shared by several aggregators: SQLite's
// transactions, and on ClickHouse the ledger's writer lock, keep one writer
// of the audit chain at a time.
type LedgerConfig struct {
	Kind     string `yaml:"kind"`
	Database string `yaml:"database"`
}

// WebConfig configures sign-in.
type WebConfig struct {
	Users     []webapi.User     `yaml:"users"`
	APITokens []webapi.APIToken `yaml:"api_tokens"`
	// SecureCookies sets the Secure flag and HSTS; on behind TLS.
	SecureCookies bool `yaml:"secure_cookies"`
	// SessionTTL is the longest a sign-in lasts (default 8h); SessionIdle
	// ends one unused for that long (default 30m).
	SessionTTL  time.Duration `yaml:"session_ttl"`
	SessionIdle time.Duration `yaml:"session_idle"`
	// TrustedProxyHeader (X-Forwarded-For, say) names where the client's
	// address is, believed only from the TrustedProxies CIDRs. Without it
	// sign-in limits are per socket address, which behind an ingress is
	// the ingress's.
	TrustedProxyHeader string   `yaml:"trusted_proxy_header"`
	TrustedProxies     []string `yaml:"trusted_proxies"`
	// OIDC enables single sign-on, with group claims mapped to roles; the
	// client secret may come from ERASURE_OIDC_CLIENT_SECRET instead.
	OIDC *webapi.OIDCConfig `yaml:"oidc"`
}

// HoldsConfig lists the reasons for legal holds (defaults
// webapi.DefaultHoldReasons and webapi.DefaultHoldLiftReasons).
type HoldsConfig struct {
	Reasons     []webapi.Reason `yaml:"reasons"`
	LiftReasons []webapi.Reason `yaml:"lift_reasons"`
}

// ReasonCodes are the deletion reason codes in force: the configured ones,
// or the defaults.
func (c Config) ReasonCodes() []webapi.Reason {
	if len(c.Reasons) == 0 {
		return webapi.DefaultReasons
	}
	return c.Reasons
}

// ReceiptsConfig configures signed deletion receipts (see stores/receipt).
type ReceiptsConfig struct {
	// KeyFile is the Ed25519 signing key: PKCS #8 in a PEM "PRIVATE KEY"
	// block, as `openssl genpkey -algorithm ed25519` writes it. Empty means
	// receipt.key in the data directory, created on first start. In production mount the key as a secret and
	// name it here; a named file must exist, so that replicas never each
	// invent a key of their own. The same key signs every audit entry and
	// anchor the aggregator writes, so the aggregator needs it too.
	KeyFile string `yaml:"key_file"`
}

// Default is the configuration of `erasure up`: every store embedded.
func Default() Config {
	return Config{
		DataDir:      "erasure-data",
		HTTPAddr:     "127.0.0.1:8080",
		TopicPrefix:  schemas.DefaultTopicPrefix,
		Partitions:   6,
		Replication:  1,
		Deadline:     30 * time.Second,
		PhoneRegion:  stores.DefaultPhoneRegion,
		Kafka:        KafkaConfig{EmbeddedPort: 9092},
		Index:        IndexConfig{Kind: "sqlite"},
		Objects:      ObjectsConfig{Kind: "disk"},
		Warehouse:    WarehouseConfig{Kind: "sqlite"},
		Ledger:       LedgerConfig{Kind: "sqlite"},
		DemoContacts: 500,
	}
}

// Load reads path (if any) over the defaults and applies environment
// overrides.
func Load(path string) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := yaml.UnmarshalWithOptions(raw, &cfg, yaml.Strict()); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		if cfg.DataMapFile != "" && !filepath.IsAbs(cfg.DataMapFile) {
			cfg.DataMapFile = filepath.Join(filepath.Dir(path), cfg.DataMapFile)
		}
		if cfg.Receipts.KeyFile != "" && !filepath.IsAbs(cfg.Receipts.KeyFile) {
			cfg.Receipts.KeyFile = filepath.Join(filepath.Dir(path), cfg.Receipts.KeyFile)
		}
	}
	if err := cfg.applyEnv(os.LookupEnv); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func (c *Config) applyEnv(lookup func(string) (string, bool)) error {
	str := map[string]*string{
		"ERASURE_DATA_DIR":            &c.DataDir,
		"ERASURE_HTTP_ADDR":           &c.HTTPAddr,
		"ERASURE_METRICS_ADDR":        &c.MetricsAddr,
		"ERASURE_TOPIC_PREFIX":        &c.TopicPrefix,
		"ERASURE_KAFKA_SASL_PASSWORD": &c.Kafka.SASL.Password,
		"ERASURE_KAFKA_INSTANCE_ID":   &c.Kafka.InstanceID,
		"ERASURE_OPENSEARCH_PASSWORD": &c.Index.OpenSearch.Password,
		"ERASURE_S3_SECRET_KEY":       &c.Objects.S3.SecretKey,
		"ERASURE_CLICKHOUSE_PASSWORD": &c.Warehouse.ClickHouse.Password,
		"ERASURE_RECEIPTS_KEY_FILE":   &c.Receipts.KeyFile,
	}
	for k, p := range str {
		if v, ok := lookup(k); ok {
			*p = v
		}
	}
	if err := c.Upstream.applyEnv(lookup); err != nil {
		return err
	}
	if err := c.Events.applyEnv(lookup); err != nil {
		return err
	}
	if v, ok := lookup("ERASURE_OIDC_CLIENT_SECRET"); ok && c.Web.OIDC != nil {
		c.Web.OIDC.ClientSecret = v
	}
	if v, ok := lookup("ERASURE_KAFKA_BROKERS"); ok {
		c.Kafka.Brokers = SplitList(v)
	}
	if v, ok := lookup("ERASURE_DEADLINE"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("ERASURE_DEADLINE: %w", err)
		}
		c.Deadline = d
	}
	if v, ok := lookup("ERASURE_DEMO_CONTACTS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("ERASURE_DEMO_CONTACTS: %w", err)
		}
		c.DemoContacts = n
	}
	return nil
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	if c.Partitions < 1 {
		errs = append(errs, errors.New("partitions must be at least 1"))
	}
	if c.Deadline <= 0 {
		errs = append(errs, errors.New("deadline must be positive"))
	}
	if _, err := schemas.NewContactIDRule(c.ContactIDPattern); err != nil {
		errs = append(errs, err)
	}
	if err := stores.CheckPhoneRegion(c.PhoneRegion); c.PhoneRegion != "" && err != nil {
		errs = append(errs, fmt.Errorf("phone_region: %w", err))
	}
	if err := webapi.CheckReasons(c.Reasons, c.Holds.Reasons, c.Holds.LiftReasons); err != nil {
		errs = append(errs, err)
	}
	if len(c.Kafka.Brokers) > 0 {
		if err := c.Kafka.Config.Validate(); err != nil {
			errs = append(errs, err)
		}
	} else if c.Kafka.TLS || c.Kafka.SASL.Mechanism != "" {
		errs = append(errs, errors.New("kafka.tls and kafka.sasl_mechanism need kafka.brokers: the embedded broker is plaintext"))
	}
	if c.Kafka.EmbeddedPort < 0 || c.Kafka.EmbeddedPort > 65535 {
		errs = append(errs, fmt.Errorf("kafka.embedded_port %d is not a port", c.Kafka.EmbeddedPort))
	}
	if c.TopicPrefix != "" && strings.ContainsAny(c.TopicPrefix, " /\\") {
		errs = append(errs, fmt.Errorf("topic_prefix %q has characters Kafka refuses", c.TopicPrefix))
	}
	if (c.Web.TrustedProxyHeader == "") != (len(c.Web.TrustedProxies) == 0) {
		errs = append(errs, errors.New("web.trusted_proxy_header and web.trusted_proxies go together"))
	}
	if c.Web.SessionTTL < 0 || c.Web.SessionIdle < 0 {
		errs = append(errs, errors.New("web.session_ttl and web.session_idle must not be negative"))
	}
	// Single sign-on principals start with "sso:"; a local account of that
	// name could pass for an SSO user in requests and the audit log.
	for i, u := range c.Web.Users {
		if webapi.IsSSOName(u.Name) {
			errs = append(errs, fmt.Errorf("web.users[%d]: name must not start with \"sso:\": that prefix is reserved for single sign-on accounts", i))
		}
	}
	for i, t := range c.Web.APITokens {
		if webapi.IsSSOName(t.Name) {
			errs = append(errs, fmt.Errorf("web.api_tokens[%d]: name must not start with \"sso:\": that prefix is reserved for single sign-on accounts", i))
		}
	}
	if err := c.Receipts.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Audit.Anchors.validate(); err != nil {
		errs = append(errs, err)
	}
	for kind, v := range map[string]string{"index": c.Index.Kind, "objects": c.Objects.Kind, "warehouse": c.Warehouse.Kind, "ledger": c.Ledger.Kind} {
		if !slices.Contains(supportedKinds[kind], v) {
			errs = append(errs, fmt.Errorf("%s.kind %q: supported: %s", kind, v, strings.Join(supportedKinds[kind], ", ")))
		}
	}
	return errors.Join(errs...)
}

var supportedKinds = map[string][]string{
	"index":     {"sqlite", "opensearch"},
	"objects":   {"disk", "s3"},
	"warehouse": {"sqlite", "clickhouse"},
	"ledger":    {"sqlite", "clickhouse"},
}

// DataMap is the configured data map, or the default one.
func (c Config) DataMap() (*locate.DataMap, error) {
	if c.DataMapFile == "" {
		return locate.DefaultDataMap()
	}
	raw, err := os.ReadFile(c.DataMapFile)
	if err != nil {
		return nil, fmt.Errorf("data map: %w", err)
	}
	return locate.ParseDataMap(raw)
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
