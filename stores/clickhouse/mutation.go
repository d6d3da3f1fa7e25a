package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/erasure-project/erasure/stores"
)

// A DELETE is an ALTER TABLE … DELETE mutation: the statement returns at
// once and the server rewrites the parts in the background. mutate waits
// for the mutation it issued and no other: mutations issued meanwhile by
// other deleters must not hold it up, and a table busy with them might
// never be seen with none pending.

// mutate runs one ALTER TABLE … DELETE statement and waits until the
// mutation it created is done. values are the values its IN list matches;
// a few of them tell this mutation from others issued at the same moment
// (the server keeps the command text with its values inlined). query may
// be longer than the server's default max_query_size (see sizedCtx).
func (w *Warehouse) mutate(ctx context.Context, op, table string, values []string, query string, args ...any) error {
	before, err := w.mutationIDs(ctx, table)
	if err != nil {
		return clickhouseErr(ctx, op, err)
	}
	if err := w.conn.Exec(sizedCtx(ctx, query, args), query, args...); err != nil {
		return clickhouseErr(ctx, op, err)
	}
	ids, err := w.newMutations(ctx, table, before, mutationNeedles(values))
	if err != nil {
		return clickhouseErr(ctx, op, err)
	}
	if len(ids) == 0 {
		// Not listed: finished and cleaned up already (the server keeps
		// the last finished_mutations_to_keep), or a server that lists
		// none. Waiting for whatever is pending covers it either way.
		return w.waitMutations(ctx, table)
	}
	if err := w.waitOwnMutations(ctx, op, table, ids); err != nil {
		return err
	}
	w.mutated.Store(table, time.Now())
	return nil
}

// mutationNeedles picks up to three values (the first, middle and last one
// the server writes unescaped) and returns them quoted as they appear in a
// mutation's command text. A mutation whose command holds all of them is
// this call's or one deleting an overlapping batch, which is worth waiting
// for too; three values make a mere overlap unlikely without searching for
// thousands.
func mutationNeedles(values []string) []string {
	var plain []string
	for _, v := range values {
		if isPlainLiteral(v) {
			plain = append(plain, v)
		}
	}
	if len(plain) == 0 {
		return nil
	}
	picks := []string{plain[0], plain[len(plain)/2], plain[len(plain)-1]}
	needles := make([]string, 0, len(picks))
	for _, v := range stores.UniqueKeys(picks) {
		needles = append(needles, "'"+v+"'")
	}
	return needles
}

// isPlainLiteral reports whether v is written into a command text as is
// between quotes: printable ASCII without a quote or a backslash, which
// the server would escape.
func isPlainLiteral(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e || c == '\\' || c == '\'' {
			return false
		}
	}
	return true
}

// mutationIDs returns the IDs of the mutations system.mutations lists for
// table.
func (w *Warehouse) mutationIDs(ctx context.Context, table string) (map[string]bool, error) {
	rows, err := w.conn.Query(ctx, `SELECT mutation_id FROM system.mutations WHERE database = ? AND table = ?`, w.db, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// newMutations returns the mutations of table not in before: those whose
// command holds every one of needles when there are any, else all of them.
// The server does the matching, so commands with IN lists of thousands of
// values are never transferred.
func (w *Warehouse) newMutations(ctx context.Context, table string, before map[string]bool, needles []string) ([]string, error) {
	named := `0`
	args := []any{}
	if len(needles) > 0 {
		conds := make([]string, len(needles))
		for i, n := range needles {
			conds[i] = `position(command, ?) > 0`
			args = append(args, n)
		}
		named = strings.Join(conds, ` AND `)
	}
	args = append(args, w.db, table)
	rows, err := w.conn.Query(ctx, `SELECT mutation_id, toUInt8(`+named+`) FROM system.mutations WHERE database = ? AND table = ?`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var all, own []string
	for rows.Next() {
		var id string
		var match uint8
		if err := rows.Scan(&id, &match); err != nil {
			return nil, err
		}
		if before[id] {
			continue
		}
		all = append(all, id)
		if match == 1 {
			own = append(own, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(own) > 0 {
		return own, nil
	}
	// No needle, or a command written otherwise than expected: every new
	// mutation is waited for, which is slower but never too early.
	return all, nil
}

// mutationPollMax bounds the back-off between looks at system.mutations.
// A mutation of a batch takes about a second; each look later than its end
// holds back the request's outcome and the table's next mutation, which
// combined deletes wait for, and a look is one read of a system table.
const mutationPollMax = 250 * time.Millisecond

// nextPoll grows a poll interval by half, up to mutationPollMax (an
// interval configured longer stays as it is).
func nextPoll(poll time.Duration) time.Duration {
	if poll >= mutationPollMax {
		return poll
	}
	return min(poll+poll/2, mutationPollMax)
}

// waitOwnMutations polls system.mutations until every mutation in ids is
// done (or no longer listed), bounded by MutationTimeout and ctx. A
// mutation that reports a failure fails the wait at once where the server
// says so (latest_fail_reason, since 19.x; 18.16 only ever shows it
// pending): it is killed, so a retry starts clean rather than queueing
// behind it.
func (w *Warehouse) waitOwnMutations(ctx context.Context, op, table string, ids []string) error {
	timeout := w.MutationTimeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	poll := w.MutationPoll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	args := []any{w.db, table}
	for _, id := range ids {
		args = append(args, id)
	}
	reason := `''`
	if w.failReason {
		reason = `latest_fail_reason`
	}
	q := `SELECT mutation_id, is_done, ` + reason + ` FROM system.mutations WHERE database = ? AND table = ? AND mutation_id IN (` +
		strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + `)`
	for {
		pending, failed, failure := "", "", ""
		rows, err := w.conn.Query(ctx, q, args...)
		if err != nil {
			return clickhouseErr(ctx, op+": wait for mutation", err)
		}
		for rows.Next() {
			var id, why string
			var done uint8
			if err := rows.Scan(&id, &done, &why); err != nil {
				rows.Close()
				return clickhouseErr(ctx, op+": wait for mutation", err)
			}
			switch {
			case done == 0 && why != "":
				failed, failure = id, why
			case done == 0:
				pending = id
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return clickhouseErr(ctx, op+": wait for mutation", err)
		}
		if failed != "" {
			return w.mutationFailed(ctx, op, table, failed, failure)
		}
		if pending == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return stores.Retryable(fmt.Errorf("%s: mutation %s on %s.%s not done after %s", op, pending, w.db, table, timeout))
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: wait for mutation %s: %w", op, pending, ctx.Err())
		case <-t.C:
		}
		poll = nextPoll(poll)
	}
}

// mutationFailed kills a failing mutation (best effort) and returns its
// error, classified by the code in its failure text; the text itself can
// quote row values and is never repeated.
func (w *Warehouse) mutationFailed(ctx context.Context, op, table, id, reason string) error {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = w.conn.Exec(kctx, `KILL MUTATION WHERE database = ? AND table = ? AND mutation_id = ?`, w.db, table, id)
	err := fmt.Errorf("%s: mutation %s on %s.%s failed: %s", op, id, w.db, table, clickhouseFailReason(reason))
	if m := clickhouseCodeRE.FindStringSubmatch(reason); m != nil {
		if c, perr := strconv.ParseInt(m[1], 10, 32); perr == nil && clickhousePermanentCodes[int32(c)] != "" {
			return stores.Permanent(err)
		}
	}
	return stores.Retryable(err)
}
