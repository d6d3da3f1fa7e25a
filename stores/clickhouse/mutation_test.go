package clickhouse

import (
	"errors"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/stores"
)

// A failing mutation ends the wait with an error that keeps the mutation
// and the error code, never the failure text (it quotes row values), and
// is permanent or retryable by that code. (18.16 never reports a failure;
// the reason strings here are what newer servers put in
// latest_fail_reason.)
func TestClickHouseMutationFailureIsClassified(t *testing.T) {
	native, _ := clickhouseAddrs(t)
	w := newClickHouseTestWarehouse(t, native, native, "native")
	for _, tc := range []struct {
		reason    string
		permanent bool
	}{
		{"Code: 53, e.displayText() = DB::Exception: Cannot convert 'zq-secret-value' to UUID", true},
		{"Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded near 'zq-secret-value'", false},
		{"something without a code about 'zq-secret-value'", false},
	} {
		err := w.mutationFailed(t.Context(), "warehouse: delete", "t", "mutation_7.txt", tc.reason)
		if err == nil || strings.Contains(err.Error(), "zq-secret-value") || !strings.Contains(err.Error(), "mutation_7.txt") {
			t.Errorf("%q: error %v; want one naming the mutation and not the value", tc.reason, err)
		}
		if got := errors.Is(err, stores.ErrPermanent); got != tc.permanent {
			t.Errorf("%q: permanent = %v, want %v (%v)", tc.reason, got, tc.permanent, err)
		}
	}
}
