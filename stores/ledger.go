package stores

import (
	"encoding/json"
	"fmt"

	"github.com/erasure-project/erasure/schemas"
)

// rowScanner is what both the SQL and the ClickHouse drivers' row sets offer.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanResults reads rows of stored ChannelCompleted JSON into a join state's
// results; both ledgers store results the same way.
func scanResults(rows rowScanner) (map[schemas.Channel]schemas.ChannelCompleted, error) {
	out := map[schemas.Channel]schemas.ChannelCompleted{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return out, err
		}
		var r schemas.ChannelCompleted
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return out, Permanent(fmt.Errorf("ledger: decode stored result: %w", err))
		}
		out[r.Channel] = r
	}
	return out, rows.Err()
}

// rowSet is a row set the reader closes.
type rowSet interface {
	rowScanner
	Close() error
}

// scanStrings reads a one-column result and closes it.
func scanStrings(rows rowSet) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
