package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/erasure-project/erasure/stores/locate"
)

// upConfig writes a configuration that uses a kfake broker (no embedded one
// to start) and the given data map, and returns its path.
func upConfig(t *testing.T, dir, dataMap string) string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	if err := os.WriteFile(filepath.Join(dir, "datamap.yaml"), []byte(dataMap), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "erasure.yaml")
	body := "kafka:\n  brokers: [" + cluster.ListenAddrs()[0] + "]\npartitions: 1\ndata_map_file: datamap.yaml\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// `erasure up` with a data map whose column is misspelt stops before it
// serves anything, naming the artefact and where it looked.
func TestUpRefusesADataMapThatDoesNotMatchTheStores(t *testing.T) {
	dir := t.TempDir()
	dm := strings.Replace(string(locate.DefaultDataMapYAML()),
		"table: dw_etr\n      column: contact_id", "table: dw_etr\n      column: contatc_id", 1)
	cfg := upConfig(t, dir, dm)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stdout, stderr lockedBuffer
	code := run(ctx, []string{"up", "--config", cfg, "--data", filepath.Join(dir, "data"), "--http", "127.0.0.1:0", "--demo-contacts", "12"},
		strings.NewReader(""), &stdout, &stderr)
	if code == 0 {
		t.Fatal("up started with a misspelt column in the data map")
	}
	want := `data-warehouse/warehouse_etrs (table dw_etr column contatc_id): warehouse: table "dw_etr" has no column "contatc_id"`
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
	}
	if strings.Contains(stdout.String(), "erasure is up") {
		t.Errorf("up reported itself up:\n%s", stdout.String())
	}
}

// The default data map on a fresh data directory passes the start-up
// check with demo data seeded, and again when restarted on that directory.
func TestUpStartsWithTheDefaultDataMap(t *testing.T) {
	dir := t.TempDir()
	cfg := upConfig(t, dir, string(locate.DefaultDataMapYAML()))
	for i, want := range []string{"demo:    12 contacts seeded", "logins:"} {
		out := runUp(t, "--config", cfg, "--data", filepath.Join(dir, "data"), "--http", "127.0.0.1:0", "--demo-contacts", "12")
		if !strings.Contains(out, want) {
			t.Errorf("start %d: stdout does not say %q:\n%s", i+1, want, out)
		}
	}
}
