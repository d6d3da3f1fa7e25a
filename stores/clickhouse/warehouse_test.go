package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/storetest"
)

// clickhouseAddrs returns the native address and the HTTP address (host:port)
// of the test server, skipping the test when none is configured (failing in
// CI).
func clickhouseAddrs(t *testing.T) (native, httpAddr string) {
	t.Helper()
	native = os.Getenv("ERASURE_TEST_CLICKHOUSE_ADDR")
	if native == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ERASURE_TEST_CLICKHOUSE_ADDR not set")
		}
		t.Skip("ERASURE_TEST_CLICKHOUSE_ADDR not set")
	}
	if raw := os.Getenv("ERASURE_TEST_CLICKHOUSE_HTTP"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			t.Fatalf("ERASURE_TEST_CLICKHOUSE_HTTP=%q: not a URL", raw)
		}
		httpAddr = u.Host
	}
	return native, httpAddr
}

// newClickHouseTestDB creates a database named prefix plus random hex,
// dropped when the test ends.
func newClickHouseTestDB(t *testing.T, native, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := NewWarehouse(ctx, Config{Addr: []string{native}, Protocol: "native"})
	if err != nil {
		t.Fatalf("connect to ClickHouse at %s: %v", native, err)
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	db := prefix + hex.EncodeToString(b)
	if err := admin.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+chIdent(db)); err != nil {
		admin.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+chIdent(db)); err != nil {
			t.Errorf("drop database %s: %v", db, err)
		}
		admin.Close()
	})
	return db
}

// newClickHouseTestWarehouse returns a warehouse speaking protocol in a
// fresh database.
func newClickHouseTestWarehouse(t *testing.T, native, addr, protocol string) *Warehouse {
	t.Helper()
	db := newClickHouseTestDB(t, native, "erasure_t")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := NewWarehouse(ctx, Config{Addr: []string{addr}, Database: db, Protocol: protocol})
	if err != nil {
		t.Fatalf("connect to ClickHouse at %s (%s): %v", addr, protocol, err)
	}
	w.MutationTimeout = 2 * time.Minute
	t.Cleanup(func() { w.Close() })
	return w
}

// The contract runs over the native protocol. The driver's HTTP transport
// ("protocol: http") needs a server newer than the 18.16 tested here, so it
// is not exercised by this suite.
func TestClickHouseWarehouseContract(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	t.Run("native", func(t *testing.T) {
		storetest.TestWarehouse(t, func(t *testing.T) stores.Warehouse {
			return newClickHouseTestWarehouse(t, native, native, "native")
		})
	})
}

// TestClickHouseDeleteIsAFinishedMutation checks that Delete removes rows
// physically: when it returns, the rows are not counted any more and the
// table's ALTER … DELETE mutation is recorded as done, so the rows were
// rewritten away rather than masked.
func TestClickHouseDeleteIsAFinishedMutation(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	w := newClickHouseTestWarehouse(t, native, native, "native")
	ctx := t.Context()
	table := storetest.UniqueName("wh")
	if err := w.EnsureTable(ctx, table, []string{"row_id", "contact_id", "payload"}); err != nil {
		t.Fatal(err)
	}
	target, other := storetest.NewUUID(), storetest.NewUUID()
	if err := w.Insert(ctx, table,
		stores.Row{"row_id": "r1", "contact_id": target, "payload": "secret 1"},
		stores.Row{"row_id": "r2", "contact_id": target, "payload": "secret 2"},
		stores.Row{"row_id": "r3", "contact_id": other, "payload": "keep"}); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Delete(ctx, table, "contact_id", target); err != nil || n != 2 {
		t.Fatalf("Delete = %d, %v; want 2, nil", n, err)
	}

	// Immediately after Delete: nothing left, checked straight in SQL.
	var left uint64
	if err := w.conn.QueryRow(ctx, "SELECT count() FROM "+w.table(table)+" WHERE contact_id = ?", target).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d rows left right after Delete, want 0", left)
	}
	var done, pending uint64
	var command string
	if err := w.conn.QueryRow(ctx, `SELECT countIf(is_done = 1), countIf(is_done = 0), any(command) FROM system.mutations
		WHERE database = ? AND table = ?`, w.db, table).Scan(&done, &pending, &command); err != nil {
		t.Fatal(err)
	}
	if done != 1 || pending != 0 {
		t.Fatalf("system.mutations for %s: %d done, %d pending; want exactly one finished mutation", table, done, pending)
	}
	if !strings.Contains(command, "DELETE") || !strings.Contains(command, "contact_id") {
		t.Errorf("mutation command = %q, want an ALTER DELETE on contact_id", command)
	}
	// The value does not survive in any active part either.
	var inParts uint64
	if err := w.conn.QueryRow(ctx, "SELECT count() FROM "+w.table(table)+" WHERE payload LIKE 'secret%'").Scan(&inParts); err != nil {
		t.Fatal(err)
	}
	if inParts != 0 {
		t.Errorf("%d deleted payloads still readable", inParts)
	}
	if n, err := w.Count(ctx, table, "contact_id", other); err != nil || n != 1 {
		t.Errorf("Count(other) = %d, %v; want 1", n, err)
	}

	// Deleting what is gone issues no further mutation.
	if n, err := w.Delete(ctx, table, "contact_id", target); err != nil || n != 0 {
		t.Fatalf("second Delete = %d, %v; want 0, nil", n, err)
	}
	var total uint64
	if err := w.conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND table = ?", w.db, table).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != 1 {
		t.Errorf("%d mutations after a no-op Delete, want still 1", total)
	}
}

// TestClickHouseInsertEscapesValues round-trips values that would break
// naive quoting.
func TestClickHouseInsertEscapesValues(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	for proto, addr := range map[string]string{"native": native} {
		t.Run(proto, func(t *testing.T) {
			w := newClickHouseTestWarehouse(t, native, addr, proto)
			ctx := t.Context()
			table := storetest.UniqueName("esc")
			if err := w.EnsureTable(ctx, table, []string{"row_id", "v"}); err != nil {
				t.Fatal(err)
			}
			values := []string{`'`, `\`, `\'`, `'); DROP TABLE x; --`, "a\x00b", "line\nbreak\ttab", `?`, `{x}`, "ünïcödé", `"`, "`", `\N`, "NULL"}
			rows := make([]stores.Row, len(values))
			for i, v := range values {
				rows[i] = stores.Row{"row_id": string(rune('a' + i)), "v": v}
			}
			if err := w.Insert(ctx, table, rows...); err != nil {
				t.Fatalf("Insert: %v", err)
			}
			for i, v := range values {
				got, err := w.Distinct(ctx, table, "v", "row_id", string(rune('a'+i)))
				if err != nil || len(got) != 1 || got[0] != v {
					t.Errorf("value %q read back as %q, %v", v, got, err)
				}
				if n, err := w.Count(ctx, table, "v", v); err != nil || n != 1 {
					t.Errorf("Count(%q) = %d, %v; want 1", v, n, err)
				}
			}
		})
	}
}

func TestClickHouseErrorClassification(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		msg       string
		permanent bool
		retryable bool
	}{
		{"code: 62, message: Syntax error", true, false},
		{"code: 60, message: Table x doesn't exist", true, false},
		{"code: 47, message: Unknown identifier", true, false},
		{"code: 252, message: Too many parts", false, true},
		{"code: 159, message: Timeout exceeded", false, true},
		{"code: 210, message: Connection refused", false, true},
	} {
		err := clickhouseErr(ctx, "op", errors.New(c.msg))
		if errors.Is(err, stores.ErrPermanent) != c.permanent || errors.Is(err, stores.ErrRetryable) != c.retryable {
			t.Errorf("%q: permanent=%v retryable=%v", c.msg, errors.Is(err, stores.ErrPermanent), errors.Is(err, stores.ErrRetryable))
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := clickhouseErr(cctx, "op", errors.New("code: 62")); !errors.Is(err, context.Canceled) || errors.Is(err, stores.ErrPermanent) {
		t.Errorf("cancelled: %v", err)
	}
}
