package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/stores/locate"
)

// TestBenchCommand runs the bench on the embedded defaults with tiny numbers
// and checks that its JSON is complete and consistent. It asserts nothing
// about speed.
func TestBenchCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "--contacts", "60", "--bulk", "40", "--single", "5", "--batch", "20", "--json"}
	if code := run(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, stdout.String())
	}
	for _, k := range []string{"p50_ms", "p95_ms", "p99_ms", "bulk_contacts_per_s", "baseline_contacts_per_s", "ratio", "peak_rss_mib", "contacts", "stores"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %q in %s", k, stdout.String())
		}
	}
	var res benchResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Contacts != 60 || res.Stores != "embedded" || res.BulkContacts != 40 || res.BulkRequests != 2 || res.SingleRequests != 5 {
		t.Errorf("contacts %d, stores %q, bulk %d in %d requests, %d single", res.Contacts, res.Stores, res.BulkContacts, res.BulkRequests, res.SingleRequests)
	}
	if !(res.P50ms > 0 && res.P50ms <= res.P95ms && res.P95ms <= res.P99ms) {
		t.Errorf("latencies p50 %v p95 %v p99 %v", res.P50ms, res.P95ms, res.P99ms)
	}
	if res.BulkPerS <= 0 || res.BaselinePerS <= 0 {
		t.Errorf("bulk %v/s, baseline %v/s", res.BulkPerS, res.BaselinePerS)
	}
	if want := res.BulkPerS / res.BaselinePerS; math.Abs(res.Ratio-want) > 1e-9*want {
		t.Errorf("ratio %v, bulk/baseline %v", res.Ratio, want)
	}
	// Both runs deleted the same contacts from identical data sets.
	if res.BulkItemsDeleted <= 0 || res.BulkItemsDeleted != res.BaselineItemsDeleted {
		t.Errorf("items deleted: bulk %d, baseline %d", res.BulkItemsDeleted, res.BaselineItemsDeleted)
	}
	if res.SpotChecked != 20+5+20 || res.Untouched != 5 {
		t.Errorf("spot-checked %d deleted and %d untouched contacts", res.SpotChecked, res.Untouched)
	}
	if runtime.GOOS == "linux" && (res.PeakRSSMiB == nil || *res.PeakRSSMiB <= 0) {
		t.Errorf("peak RSS %v on Linux (%s)", res.PeakRSSMiB, res.RSSNote)
	}
	if res.Kept {
		t.Error("the temporary data directory is reported kept")
	}
	if _, err := os.Stat(res.DataDir); !os.IsNotExist(err) {
		t.Errorf("temporary data directory %s left behind (%v)", res.DataDir, err)
	}
	if len(res.Notes) > 0 {
		t.Errorf("notes: %v", res.Notes)
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--contacts", "10", "--bulk", "10", "--single", "1"}, "--contacts must be at least"},
		{[]string{"--batch", "1001"}, "--batch must be between"},
		{[]string{"--inflight", "0"}, "--inflight"},
		{[]string{"--deadline", "25h"}, "--deadline"},
		{[]string{"--contacts", "10", "--bulk", "5", "--single", "1", "--data", full}, "not empty"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"bench"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestBenchEnvUsesItsOwnNames: against servers, every name the bench writes
// to carries the run ID, differs between the two data sets and from the
// deployment's, and nothing of the deployment's keys or anchors is used.
func TestBenchEnvUsesItsOwnNames(t *testing.T) {
	cfg := app.Default()
	cfg.Kafka.Brokers = []string{"127.0.0.1:19092"}
	cfg.Index.Kind = "opensearch"
	cfg.Index.OpenSearch.URLs = []string{"http://admin:secret@127.0.0.1:19200"}
	cfg.Index.OpenSearch.IndexPrefix = "prod_"
	cfg.Objects.Kind = "s3"
	cfg.Objects.S3.Endpoint = "http://127.0.0.1:19100"
	cfg.Warehouse.Kind = "clickhouse"
	cfg.Warehouse.ClickHouse.Addr = []string{"127.0.0.1:19000"}
	cfg.Warehouse.ClickHouse.Database = "prod"
	cfg.Ledger.Kind = "clickhouse"
	cfg.Receipts.KeyFile = "/etc/erasure/receipt.key"
	cfg.Events.Keys = []app.EventKeyFile{{ID: "k1", File: "/etc/erasure/event.key"}}
	cfg.Audit.Anchors = app.AnchorsConfig{Kind: "s3", Bucket: "prod-anchors"}
	cfg.MetricsAddr = "127.0.0.1:9100"
	root := t.TempDir()
	const run = "0a1b2c3d"
	env, err := newBenchEnv(cfg, root, run)
	if err != nil {
		t.Fatal(err)
	}
	if env.embedded {
		t.Error("servers taken for embedded stores")
	}
	if strings.Contains(env.stores, "secret") || !strings.Contains(env.stores, "opensearch http://127.0.0.1:19200") {
		t.Errorf("stores %q", env.stores)
	}
	if !slices.Equal(env.databases, []string{"erasure_bench_" + run, "erasure_bench_" + run + "_base"}) {
		t.Errorf("databases %v", env.databases)
	}
	if len(env.topics) != 5 || !strings.HasPrefix(env.topics[0], "erasure.bench-"+run+".") {
		t.Errorf("topics %v", env.topics)
	}
	buckets := map[string]bool{}
	for i, c := range []app.Config{env.pipe, env.base} {
		if !strings.HasPrefix(c.DataDir, root) {
			t.Errorf("data dir %s outside %s", c.DataDir, root)
		}
		if !strings.HasPrefix(c.Index.OpenSearch.IndexPrefix, "prod_bench-"+run+"-") {
			t.Errorf("index prefix %q", c.Index.OpenSearch.IndexPrefix)
		}
		if c.Warehouse.ClickHouse.Database != env.databases[i] {
			t.Errorf("warehouse database %q", c.Warehouse.ClickHouse.Database)
		}
		if c.Receipts.KeyFile != "" || len(c.Events.Keys) != 0 || c.Audit.Anchors.Kind != "" || c.MetricsAddr != "" {
			t.Errorf("the deployment's keys, anchors or listeners are used: %+v %+v %+v %q", c.Receipts, c.Events, c.Audit, c.MetricsAddr)
		}
		raw, err := os.ReadFile(c.DataMapFile)
		if err != nil {
			t.Fatal(err)
		}
		dm, err := locate.ParseDataMap(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, arts := range dm.Channels {
			for _, a := range arts {
				if a.Bucket == "" {
					continue
				}
				if !strings.Contains(a.Bucket, "-bench-"+run) {
					t.Errorf("bucket %q is not the bench's", a.Bucket)
				}
				buckets[a.Bucket] = true
			}
		}
	}
	if env.pipe.Index.OpenSearch.IndexPrefix == env.base.Index.OpenSearch.IndexPrefix {
		t.Error("both data sets in one set of indexes")
	}
	if env.pipe.Ledger.Kind != "clickhouse" || env.pipe.Ledger.Database != env.databases[0] || env.base.Ledger.Kind != "sqlite" {
		t.Errorf("ledgers %+v %+v", env.pipe.Ledger, env.base.Ledger)
	}
	def, err := locate.DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]bool{}
	for _, arts := range def.Channels {
		for _, a := range arts {
			if a.Bucket != "" {
				n[a.Bucket] = true
			}
		}
	}
	if len(buckets) != 2*len(n) {
		t.Errorf("%d bench buckets for %d default ones in two data sets", len(buckets), len(n))
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 95: 95 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := percentile(ds[:1], 99); got != 100*time.Millisecond {
		t.Errorf("p99 of one = %v", got)
	}
}

// Both kinds of deployment are judged on latency, throughput and the
// ratio to the raw baseline.
func TestBenchTargetsJudgeEveryFigure(t *testing.T) {
	for _, embedded := range []bool{true, false} {
		tg := targetsFor(embedded)
		tg.judge(&benchResult{P99ms: tg.P99MsMax + 1, BulkPerS: tg.BulkMin - 1, Ratio: 0.799})
		if want := []string{"p99_ms", "bulk_contacts_per_s", "ratio"}; !slices.Equal(tg.Missed, want) {
			t.Errorf("%s: missed %v, want %v", tg.Kind, tg.Missed, want)
		}
		tg.judge(&benchResult{P99ms: tg.P99MsMax, BulkPerS: tg.BulkMin, Ratio: 0.8})
		if len(tg.Missed) != 0 {
			t.Errorf("%s: at the targets, missed %v", tg.Kind, tg.Missed)
		}
	}
}
