package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/goccy/go-yaml"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
)

// realServers returns the addresses of the real Kafka, OpenSearch, S3 and
// ClickHouse servers (deploy/local/servers.sh writes them). Under CI they
// must be there.
func realServers(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, k := range []string{"ERASURE_TEST_KAFKA_BROKERS", "ERASURE_TEST_OPENSEARCH_URL", "ERASURE_TEST_S3_ENDPOINT",
		"ERASURE_TEST_S3_ACCESS_KEY", "ERASURE_TEST_S3_SECRET_KEY", "ERASURE_TEST_S3_REGION", "ERASURE_TEST_CLICKHOUSE_ADDR"} {
		v := os.Getenv(k)
		if v == "" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not set: start the servers with deploy/local/servers.sh", k)
			}
			t.Skipf("%s not set", k)
		}
		env[k] = v
	}
	return env
}

// TestRealServersEndToEnd runs the production roles with `erasure serve`
// against real Apache Kafka, OpenSearch, MinIO and ClickHouse: a bulk delete
// of demo contacts covering every channel, then `erasure verify`.
func TestRealServersEndToEnd(t *testing.T) {
	env := realServers(t)
	var b [4]byte
	rand.Read(b[:])
	run := hex.EncodeToString(b[:])
	dir := t.TempDir()

	// Buckets, indexes, database and topics are this run's own.
	dm := strings.ReplaceAll(string(locate.DefaultDataMapYAML()), "bucket: erasure-", "bucket: e2e-"+run+"-")
	if err := os.WriteFile(filepath.Join(dir, "datamap.yaml"), []byte(dm), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgYAML := map[string]any{
		"data_dir":      filepath.Join(dir, "data"),
		"http_addr":     "127.0.0.1:0",
		"topic_prefix":  "e2e" + run + ".",
		"partitions":    3,
		"deadline":      "60s",
		"data_map_file": "datamap.yaml",
		"kafka":         map[string]any{"brokers": strings.Split(env["ERASURE_TEST_KAFKA_BROKERS"], ",")},
		"index":         map[string]any{"kind": "opensearch", "opensearch": map[string]any{"urls": []string{env["ERASURE_TEST_OPENSEARCH_URL"]}, "index_prefix": "e2e" + run + "_"}},
		"objects": map[string]any{"kind": "s3", "s3": map[string]any{"endpoint": env["ERASURE_TEST_S3_ENDPOINT"], "region": env["ERASURE_TEST_S3_REGION"],
			"path_style": true, "access_key": env["ERASURE_TEST_S3_ACCESS_KEY"]}},
		"warehouse": map[string]any{"kind": "clickhouse", "clickhouse": map[string]any{"addr": []string{env["ERASURE_TEST_CLICKHOUSE_ADDR"]}, "database": "e2e_" + run}},
		"ledger":    map[string]any{"kind": "clickhouse"},
		"web":       map[string]any{"api_tokens": []map[string]any{{"name": "e2e", "token_sha256": strings.Repeat("0", 64), "roles": []string{"admin"}}}},
	}
	raw, err := yaml.Marshal(cfgYAML)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "erasure.yaml")
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ERASURE_S3_SECRET_KEY", env["ERASURE_TEST_S3_SECRET_KEY"])
	cfg, err := app.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The ClickHouse database must exist before the warehouse connects.
	if err := createClickHouseDatabase(t, env["ERASURE_TEST_CLICKHOUSE_ADDR"], "e2e_"+run); err != nil {
		t.Fatal(err)
	}
	// Seeded before the start-up check, which needs this run's stores.
	start := time.Now()
	var seeded []demo.Contact
	st, closeStores, err := app.OpenStores(t.Context(), cfg, app.Prepare(func(ctx context.Context, st *app.Stores) error {
		var err error
		seeded, err = demo.Seed(ctx, st.Demo(), demo.Options{Contacts: 36, Seed: uint64(b[0])<<8 | uint64(b[1])})
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer closeStores()
	t.Logf("seeded %d contacts into OpenSearch, MinIO and ClickHouse in %s", len(seeded), time.Since(start).Round(time.Millisecond))
	inventory := func() map[string]locate.Remaining {
		out := map[string]locate.Remaining{}
		for _, c := range seeded {
			r, err := st.Locator.Remaining(t.Context(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			out[c.ID] = r
		}
		return out
	}
	before := inventory()

	// Production roles in two processes, as they would run on two hosts.
	bin := buildBinary(t)
	var consumers []string
	for _, ch := range schemas.AllChannels {
		consumers = append(consumers, app.RoleConsumer+string(ch))
	}
	t.Setenv("ERASURE_S3_SECRET_KEY", env["ERASURE_TEST_S3_SECRET_KEY"])
	startProcess(t, bin, "web UI:", "serve", "--config", cfgPath, "--roles", "webapi,aggregator")
	consumerArgs := []string{"serve", "--config", cfgPath, "--roles", strings.Join(consumers, ",")}
	consumerProc := startProcess(t, bin, "", consumerArgs...)

	targets := pickCoverage(seeded)
	var ids []string
	for _, c := range targets {
		ids = append(ids, c.ID)
	}
	// Every personal string sought afterwards is stored somewhere now, so
	// finding none later means something.
	var strs []string
	for _, c := range targets {
		strs = append(strs, c.PersonalStrings()...)
	}
	f := newFinder(t, env, run)
	for _, s := range strs {
		if f.find(t, s).total() == 0 {
			t.Fatalf("a target's personal string %q is in no store before the delete", s)
		}
	}
	f.close()

	start = time.Now()
	code, stdout, stderr := cli(t, strings.Join(ids, "\n"), "delete", "--config", cfgPath, "--actor", "e2e-real", "--batch", "1", "--wait", "--json", "--timeout", "3m", "-")
	if code != 0 {
		t.Fatalf("delete: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("bulk delete of %d contacts against the real servers took %s", len(ids), time.Since(start).Round(time.Millisecond))
	dec := json.NewDecoder(strings.NewReader(stdout))
	var deleted int64
	var outcomes []schemas.DeletionCompleted
	for dec.More() {
		var o schemas.DeletionCompleted
		if err := dec.Decode(&o); err != nil {
			t.Fatal(err)
		}
		outcomes = append(outcomes, o)
		if o.Status != schemas.StatusSucceeded {
			t.Errorf("request %s: %s %s", o.RequestID, o.Status, o.ErrorCode)
		}
		for _, ch := range o.Channels {
			for _, a := range ch.Artefacts {
				deleted += a.Deleted
			}
		}
	}
	if deleted == 0 {
		t.Fatal("the outcomes report nothing deleted")
	}
	code, out, _ := cli(t, "", append([]string{"verify", "--config", cfgPath}, ids...)...)
	if code != 0 {
		t.Errorf("verify: exit %d\n%s", code, out)
	}
	entries, err := st.Ledger.Audit(t.Context(), stores.AuditFilter{Actor: "e2e-real"})
	if err != nil || len(entries) != len(ids) {
		t.Errorf("%d audit entries in ClickHouse for %d requests (%v)", len(entries), len(ids), err)
	}
	if n, err := st.Ledger.VerifyChain(t.Context()); err != nil {
		t.Errorf("audit chain: %v", err)
	} else {
		t.Logf("audit chain in ClickHouse intact: %d entries", n)
	}
	t.Logf("erasure verify: %s", strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]))
	// SIGKILL the consumers while OpenSearch's expunge of the deleted
	// documents is still pending in them; the next process of those
	// channels resumes it, so the stated purge_by still holds.
	t.Logf("OpenSearch documents deleted but not yet expunged when the consumers are killed: %d", osDocsDeleted(t, env["ERASURE_TEST_OPENSEARCH_URL"], "e2e"+run+"_*"))
	consumerProc.stop(syscall.SIGKILL)
	startProcess(t, bin, "", consumerArgs...)
	purgeReadback(t, env, run, outcomes, strs)
	after := inventory()
	for _, c := range seeded {
		if slices.Contains(ids, c.ID) {
			continue
		}
		for ch, arts := range before[c.ID] {
			for a, n := range arts {
				if after[c.ID][ch][a] != n {
					t.Errorf("contact %s lost data: %s/%s %d -> %d", c.ID, ch, a, n, after[c.ID][ch][a])
				}
			}
		}
	}
}

func createClickHouseDatabase(t *testing.T, addr, name string) error {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := stores.CheckIdent("database", name); err != nil {
		return err
	}
	if err := conn.Exec(t.Context(), "CREATE DATABASE IF NOT EXISTS "+name); err != nil {
		return err
	}
	t.Cleanup(func() {
		c, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
			c.Close()
		}
	})
	return nil
}
