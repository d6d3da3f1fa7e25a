package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
)

// demoStores creates the demo tables, buckets and indexes before the check,
// as `erasure up` does.
var demoStores = Prepare(func(ctx context.Context, st *Stores) error { return demo.Ensure(ctx, st.Demo()) })

// OpenStores checks the data map against the stores it opens: the default
// map on a fresh data directory with the demo stores passes; a misspelt
// column or stores nobody created stop it, naming each artefact.
func TestOpenStoresChecksTheDataMap(t *testing.T) {
	t.Run("default data map", func(t *testing.T) {
		cfg := Default()
		cfg.DataDir = t.TempDir()
		_, cleanup, err := OpenStores(t.Context(), cfg, demoStores)
		if err != nil {
			t.Fatalf("OpenStores: %v", err)
		}
		cleanup()
	})

	t.Run("stores nobody created", func(t *testing.T) {
		cfg := Default()
		cfg.DataDir = t.TempDir()
		_, _, err := OpenStores(t.Context(), cfg)
		if !errors.Is(err, stores.ErrPermanent) || !strings.Contains(err.Error(), "data-warehouse/warehouse_records (table dw_contact_records") {
			t.Fatalf("OpenStores on empty stores: %v, want a permanent error naming the artefacts", err)
		}
	})

	t.Run("misspelt column", func(t *testing.T) {
		dir := t.TempDir()
		dm := strings.Replace(string(locate.DefaultDataMapYAML()),
			"table: dw_etr\n      column: contact_id", "table: dw_etr\n      column: contatc_id", 1)
		if err := os.WriteFile(filepath.Join(dir, "datamap.yaml"), []byte(dm), 0o600); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "erasure.yaml")
		if err := os.WriteFile(p, []byte("data_map_file: datamap.yaml\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DataDir = filepath.Join(dir, "data")
		_, _, err = OpenStores(t.Context(), cfg, demoStores)
		if !errors.Is(err, stores.ErrPermanent) {
			t.Fatalf("OpenStores with a misspelt column: %v, want a permanent error", err)
		}
		want := `data-warehouse/warehouse_etrs (table dw_etr column contatc_id): warehouse: table "dw_etr" has no column "contatc_id"`
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "(1 problems)") {
			t.Errorf("error %q does not say only %q", err, want)
		}
	})
}
