package clickhouse

import (
	"context"
	"regexp"
	"strconv"
	"time"

	"github.com/erasure-project/erasure/stores"
)

var _ stores.Purger = (*Warehouse)(nil)

// A finished DELETE mutation has written new parts without the rows, but
// the parts it replaced stay on disk, inactive, for old_parts_lifetime
// (480 s by default) after they were replaced, and until no running query
// reads them; then the cleanup removes their directories. Measured here on
// 18.16: a table with the default setting kept its pre-mutation parts, and
// the deleted values in them, for 478–483 s; one created with SETTINGS
// old_parts_lifetime = 5 dropped them about 10 s after the mutation.
//
// Nothing sooner is on offer: OPTIMIZE TABLE … FINAL merges the active
// parts and so makes more inactive ones (3 became 6, all still there 30 s
// later), which age the same way; 18.16
// cannot change the setting of an existing table (ALTER TABLE … MODIFY
// SETTING arrived in 19.x, 18.16 answers it with a syntax error), only
// take it at CREATE TABLE … SETTINGS old_parts_lifetime = N. Lowering it
// costs crash safety: the old parts are what ClickHouse falls back to if a
// merged part had not reached the disk when the server died.

const (
	clickhouseOldPartsJob = "clickhouse old parts cleanup"
	// Server defaults, used when system.merge_tree_settings does not say.
	clickhouseDefaultOldPartsLifetime = 480 * time.Second
	clickhouseDefaultCleanupDelay     = 40 * time.Second // cleanup_delay_period + cleanup_delay_period_random_add
)

// Purge reports when the rows deleted from table are physically gone: now,
// if the table has no inactive part left; else by the time the newest
// inactive part has outlived old_parts_lifetime and the cleanup has run.
func (w *Warehouse) Purge(ctx context.Context, table string) (stores.PurgeState, error) {
	if err := checkCHTable(table); err != nil {
		return stores.PurgeState{}, err
	}
	st := stores.PurgeState{Store: "clickhouse"}
	var inactive uint64
	var removed time.Time
	if err := w.conn.QueryRow(ctx, `SELECT count(), max(remove_time) FROM system.parts WHERE database = ? AND table = ? AND active = 0`,
		w.db, table).Scan(&inactive, &removed); err != nil {
		return st, clickhouseErr(ctx, "warehouse: purge: inactive parts", err)
	}
	if inactive == 0 {
		st.PurgedAt = time.Now()
		return st, nil
	}
	lifetime, cleanup, err := w.oldPartsLifetime(ctx, table)
	if err != nil {
		return st, err
	}
	// remove_time is when a part was replaced; 18.16 shows a zero date for
	// a part not yet marked. Then the end of this warehouse's last mutation,
	// or now, is the start of the wait.
	if removed.Year() < 2000 {
		removed = time.Now()
		if t, ok := w.mutated.Load(table); ok && t.(time.Time).Before(removed) {
			removed = t.(time.Time)
		}
	}
	st.PurgeBy = removed.Add(lifetime + cleanup)
	if !st.PurgeBy.After(time.Now()) {
		// Overdue: a query still reads an old part, or the cleanup is late;
		// it goes when the next cleanup finds it unused.
		st.PurgeBy = time.Now().Add(cleanup)
	}
	st.Job = clickhouseOldPartsJob
	return st, nil
}

var clickhouseLifetimeRE = regexp.MustCompile(`\bold_parts_lifetime\s*=\s*(\d+)`)

// oldPartsLifetime returns table's old_parts_lifetime (its own SETTINGS,
// else the server's) and the cleanup's period plus its random delay.
func (w *Warehouse) oldPartsLifetime(ctx context.Context, table string) (lifetime, cleanup time.Duration, err error) {
	lifetime, cleanup = clickhouseDefaultOldPartsLifetime, clickhouseDefaultCleanupDelay
	rows, err := w.conn.Query(ctx, `SELECT name, value FROM system.merge_tree_settings
		WHERE name IN ('old_parts_lifetime', 'cleanup_delay_period', 'cleanup_delay_period_random_add')`)
	if err != nil {
		return 0, 0, clickhouseErr(ctx, "warehouse: purge: merge tree settings", err)
	}
	settings := map[string]time.Duration{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			rows.Close()
			return 0, 0, clickhouseErr(ctx, "warehouse: purge: merge tree settings", err)
		}
		if n, perr := strconv.ParseUint(value, 10, 32); perr == nil {
			settings[name] = time.Duration(n) * time.Second
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, clickhouseErr(ctx, "warehouse: purge: merge tree settings", err)
	}
	if d, ok := settings["old_parts_lifetime"]; ok {
		lifetime = d
	}
	if d, ok := settings["cleanup_delay_period"]; ok {
		cleanup = d + settings["cleanup_delay_period_random_add"]
	}
	var engine string
	if err := w.conn.QueryRow(ctx, `SELECT engine_full FROM system.tables WHERE database = ? AND name = ?`, w.db, table).Scan(&engine); err != nil {
		return 0, 0, clickhouseErr(ctx, "warehouse: purge: table settings", err)
	}
	if m := clickhouseLifetimeRE.FindStringSubmatch(engine); m != nil {
		if n, perr := strconv.ParseUint(m[1], 10, 32); perr == nil {
			lifetime = time.Duration(n) * time.Second
		}
	}
	return lifetime, cleanup, nil
}
