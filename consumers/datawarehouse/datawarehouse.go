// Package datawarehouse is the data-warehouse channel consumer: S3 data-lake files (many contacts
// per file, rewritten without the deleted ones), warehouse records and ETRs.
package datawarehouse

import (
	"log/slog"

	"github.com/erasure-project/erasure/consumers"
	"github.com/erasure-project/erasure/schemas"
)

// Artefacts are the artefact types of this channel in the specification;
// the default data map maps each of them.
var Artefacts = []string{"data_lake_records", "warehouse_records", "warehouse_etrs"}

// New returns the channel's consumer.
func New(e consumers.Eraser, rule schemas.ContactIDRule, logger *slog.Logger) *consumers.Channel {
	return &consumers.Channel{Name: schemas.ChannelDataWarehouse, Eraser: e, Rule: rule, Logger: logger}
}
