package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/webapi"
)

// Config is the one configuration of the erasure binary: YAML from --config,
// then ERASURE_* environment overrides, then flags.
type Config struct {
	// DataDir holds everything the embedded defaults store.
	DataDir  string `yaml:"data_dir"`
	HTTPAddr string `yaml:"http_addr"`
	// MetricsAddr, when set, serves /metrics and /healthz for a process
	// without the web API (which serves both on HTTPAddr).
	MetricsAddr string `yaml:"metrics_addr"`

	TopicPrefix      string        `yaml:"topic_prefix"`
	Partitions       int32         `yaml:"partitions"`
	Replication      int16         `yaml:"replication"`
	Deadline         time.Duration `yaml:"deadline"`
	ContactIDPattern string        `yaml:"contact_id_pattern"`

	Kafka     KafkaConfig     `yaml:"kafka"`
	Index     IndexConfig     `yaml:"index"`
	Objects   ObjectsConfig   `yaml:"objects"`
	Warehouse WarehouseConfig `yaml:"warehouse"`
	Ledger    LedgerConfig    `yaml:"ledger"`

	// DataMapFile replaces the default data map.
	DataMapFile string `yaml:"data_map_file"`

	Web WebConfig `yaml:"web"`

	// DemoContacts is how many contacts `erasure up` seeds on first start.
	DemoContacts int `yaml:"demo_contacts"`
}

// KafkaConfig: an empty broker list means the embedded broker.
type KafkaConfig struct {
	Brokers       []string `yaml:"brokers"`
	EmbeddedPort  int      `yaml:"embedded_port"`
	TLS           bool     `yaml:"tls"`
	SASLMechanism string   `yaml:"sasl_mechanism"`
	SASLUser      string   `yaml:"sasl_user"`
	SASLPassword  string   `yaml:"-"`
}

// IndexConfig selects the search index: "sqlite" (embedded) or "opensearch".
type IndexConfig struct {
	Kind       string           `yaml:"kind"`
	OpenSearch OpenSearchConfig `yaml:"opensearch"`
}

// OpenSearchConfig; the password comes from ERASURE_OPENSEARCH_PASSWORD.
type OpenSearchConfig struct {
	URLs               []string `yaml:"urls"`
	User               string   `yaml:"user"`
	Password           string   `yaml:"-"`
	InsecureSkipVerify bool     `yaml:"insecure_skip_verify"`
	IndexPrefix        string   `yaml:"index_prefix"`
}

// ObjectsConfig selects object storage: "disk" (embedded) or "s3".
type ObjectsConfig struct {
	Kind string   `yaml:"kind"`
	S3   S3Config `yaml:"s3"`
}

// S3Config; with no access key the standard AWS credential chain is used,
// and the secret key comes from ERASURE_S3_SECRET_KEY.
type S3Config struct {
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	PathStyle bool   `yaml:"path_style"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"-"`
}

// WarehouseConfig selects the warehouse: "sqlite" (embedded) or
// "clickhouse".
type WarehouseConfig struct {
	Kind       string           `yaml:"kind"`
	ClickHouse ClickHouseConfig `yaml:"clickhouse"`
}

// LedgerConfig selects where join state and the audit log live: "sqlite"
// (in the data directory) or "clickhouse" (the warehouse's server, in
// Database if set). With ClickHouse exactly one aggregator may run: the
// audit log's hash chain has a single writer.
type LedgerConfig struct {
	Kind     string `yaml:"kind"`
	Database string `yaml:"database"`
}

// ClickHouseConfig; the password comes from ERASURE_CLICKHOUSE_PASSWORD.
type ClickHouseConfig struct {
	Addr     []string `yaml:"addr"`
	Database string   `yaml:"database"`
	User     string   `yaml:"user"`
	Password string   `yaml:"-"`
	Protocol string   `yaml:"protocol"`
	TLS      bool     `yaml:"tls"`
}

// WebConfig configures sign-in.
type WebConfig struct {
	Users     []webapi.User     `yaml:"users"`
	APITokens []webapi.APIToken `yaml:"api_tokens"`
	// SecureCookies sets the Secure flag; on behind TLS.
	SecureCookies bool `yaml:"secure_cookies"`
	// OIDC enables single sign-on, with group claims mapped to roles; the
	// client secret may come from ERASURE_OIDC_CLIENT_SECRET instead.
	OIDC *webapi.OIDCConfig `yaml:"oidc"`
}

func defaultConfig() Config {
	return Config{
		DataDir:      "erasure-data",
		HTTPAddr:     "127.0.0.1:8080",
		TopicPrefix:  schemas.DefaultTopicPrefix,
		Partitions:   6,
		Replication:  1,
		Deadline:     30 * time.Second,
		Kafka:        KafkaConfig{EmbeddedPort: 9092},
		Index:        IndexConfig{Kind: "sqlite"},
		Objects:      ObjectsConfig{Kind: "disk"},
		Warehouse:    WarehouseConfig{Kind: "sqlite"},
		Ledger:       LedgerConfig{Kind: "sqlite"},
		DemoContacts: 500,
	}
}

// loadConfig reads path (if any) over the defaults and applies environment
// overrides.
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
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
		"ERASURE_TOPIC_PREFIX":        &c.TopicPrefix,
		"ERASURE_KAFKA_SASL_PASSWORD": &c.Kafka.SASLPassword,
		"ERASURE_OPENSEARCH_PASSWORD": &c.Index.OpenSearch.Password,
		"ERASURE_S3_SECRET_KEY":       &c.Objects.S3.SecretKey,
		"ERASURE_CLICKHOUSE_PASSWORD": &c.Warehouse.ClickHouse.Password,
	}
	for k, p := range str {
		if v, ok := lookup(k); ok {
			*p = v
		}
	}
	if v, ok := lookup("ERASURE_OIDC_CLIENT_SECRET"); ok && c.Web.OIDC != nil {
		c.Web.OIDC.ClientSecret = v
	}
	if v, ok := lookup("ERASURE_KAFKA_BROKERS"); ok {
		c.Kafka.Brokers = splitList(v)
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
	if c.TopicPrefix != "" && strings.ContainsAny(c.TopicPrefix, " /\\") {
		errs = append(errs, fmt.Errorf("topic_prefix %q has characters Kafka refuses", c.TopicPrefix))
	}
	for kind, v := range map[string]string{"index": c.Index.Kind, "objects": c.Objects.Kind, "warehouse": c.Warehouse.Kind, "ledger": c.Ledger.Kind} {
		if !slicesContains(supportedKinds[kind], v) {
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

func (c Config) dataMap() (*locate.DataMap, error) {
	if c.DataMapFile == "" {
		return locate.DefaultDataMap()
	}
	raw, err := os.ReadFile(c.DataMapFile)
	if err != nil {
		return nil, fmt.Errorf("data map: %w", err)
	}
	return locate.ParseDataMap(raw)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func slicesContains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
