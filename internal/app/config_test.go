package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// The example production configurations under deploy/ load with the same
// strict loader `erasure serve` uses.
func TestDeployConfigsLoad(t *testing.T) {
	compose := filepath.Join("..", "..", "deploy", "compose", "erasure.yaml")
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The ConfigMap file may hold several documents; the first is the map.
	if err := yaml.Unmarshal([]byte(strings.Split(string(raw), "\n---")[0]), &cm); err != nil {
		t.Fatal(err)
	}
	k8s := filepath.Join(t.TempDir(), "erasure.yaml")
	if err := os.WriteFile(k8s, []byte(cm.Data["erasure.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{compose, k8s} {
		cfg, err := Load(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		if cfg.Index.Kind != "opensearch" || cfg.Objects.Kind != "s3" || cfg.Warehouse.Kind != "clickhouse" || cfg.Ledger.Kind != "clickhouse" {
			t.Errorf("%s: kinds %+v", p, cfg)
		}
	}
}

func TestConfigRejects(t *testing.T) {
	for name, body := range map[string]string{
		"unknown key":      "kafka:\n  brokerz: [x]\n",
		"unknown kind":     "index:\n  kind: elasticsearch\n",
		"loose pattern":    "contact_id_pattern: '.*'\n",
		"no deadline":      "deadline: 0s\n",
		"password in file": "index:\n  opensearch:\n    password: secret\n",
	} {
		p := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(p, []byte(body), 0o644)
		cfg, err := Load(p)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
