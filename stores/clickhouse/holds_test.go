package clickhouse

import (
	"testing"

	"github.com/erasure-project/erasure/stores/storetest"
)

func TestClickHouseHoldsContract(t *testing.T) {
	clickhouseAddrs(t)
	storetest.TestHolds(t, func(t *testing.T) storetest.HoldsLedger { return newClickHouseTestLedger(t) })
}
