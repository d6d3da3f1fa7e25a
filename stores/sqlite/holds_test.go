package sqlite

import (
	"testing"

	"github.com/erasure-project/erasure/stores/storetest"
)

func TestSQLiteHoldsContract(t *testing.T) {
	storetest.TestHolds(t, func(t *testing.T) storetest.HoldsLedger { return NewLedger(newTestDB(t)) })
}
