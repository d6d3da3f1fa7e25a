package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/disk"
	"github.com/erasure-project/erasure/stores/s3"
)

// AuditConfig configures the audit log's anchors.
type AuditConfig struct {
	Anchors AnchorsConfig `yaml:"anchors"`
}

// AnchorsConfig says where the aggregator copies the signed chain head:
// "file" (default), audit-anchors.jsonl in the data directory, appended
// only; or "s3", one object per anchor in Bucket (created with object
// lock) on the objects.s3 server, each locked for Retention in Mode
// (COMPLIANCE by default). Without a retention the objects are written
// with If-None-Match only.
type AnchorsConfig struct {
	Kind      string        `yaml:"kind"`
	Bucket    string        `yaml:"bucket"`
	Retention time.Duration `yaml:"retention"`
	Mode      string        `yaml:"mode"`
}

// AnchorsFile is the file anchors are appended to with kind "file".
const AnchorsFile = "audit-anchors.jsonl"

func (a AnchorsConfig) validate() error {
	switch a.Kind {
	case "", "file":
		return nil
	case "s3":
		if a.Bucket == "" {
			return errors.New("audit.anchors.bucket is required with kind s3")
		}
		if a.Retention < 0 {
			return errors.New("audit.anchors.retention must not be negative")
		}
		if m := strings.ToUpper(a.Mode); m != "" && m != "COMPLIANCE" && m != "GOVERNANCE" {
			return fmt.Errorf("audit.anchors.mode %q: supported: COMPLIANCE, GOVERNANCE", a.Mode)
		}
		return nil
	}
	return fmt.Errorf("audit.anchors.kind %q: supported: file, s3", a.Kind)
}

// AuditAnchors opens the configured anchor storage.
func (c Config) AuditAnchors(ctx context.Context) (stores.Anchors, error) {
	a := c.Audit.Anchors
	if a.Kind == "s3" {
		return s3.NewAnchors(ctx, c.Objects.S3, s3.AnchorsConfig{Bucket: a.Bucket, Retention: a.Retention, Mode: a.Mode})
	}
	return disk.NewAnchors(filepath.Join(c.DataDir, AnchorsFile)), nil
}

// AuditPublicKey is the public half of the audit signing key (the receipt
// key), or nil when there is none yet: a log written before signing existed
// still verifies, with its entries reported unsigned.
func (c Config) AuditPublicKey() (ed25519.PublicKey, error) {
	key, err := c.ExistingReceiptKey()
	if err != nil {
		if c.Receipts.KeyFile == "" {
			return nil, nil
		}
		return nil, err
	}
	return key.Public().(ed25519.PublicKey), nil
}

// Anchoring cadence: the aggregator looks at the chain head every
// anchorPoll and anchors it when anchorEvery entries were appended since
// the last anchor, or anchorInterval has passed with any entry appended,
// and once more at shutdown. A truncation can therefore go unnoticed only
// for entries written in the last minute or so before it.
var (
	anchorPoll     = 5 * time.Second
	anchorInterval = time.Minute
	anchorEvery    = int64(100)
)

// anchorer copies the signed chain head to write-once storage.
type anchorer struct {
	ledger  stores.Ledger
	anchors stores.Anchors
	key     ed25519.PrivateKey
	logger  *slog.Logger

	last   int64 // seq of the last anchor
	lastAt time.Time
}

// run anchors until ctx ends, then anchors the head a last time.
func (a *anchorer) run(ctx context.Context) error {
	if list, err := a.anchors.List(ctx); err != nil {
		a.logger.WarnContext(ctx, "reading audit anchors failed", "error", err)
	} else if len(list) > 0 {
		a.last = list[len(list)-1].Seq
	}
	a.lastAt = time.Now()
	t := time.NewTicker(anchorPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Bounded: a store that does not answer must not hold up shutdown.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := a.anchor(sctx, true); err != nil {
				a.logger.WarnContext(sctx, "anchoring the audit chain at shutdown failed", "error", err)
			}
			return nil
		case <-t.C:
			if err := a.anchor(ctx, false); err != nil && ctx.Err() == nil {
				a.logger.WarnContext(ctx, "anchoring the audit chain failed", "error", err)
			}
		}
	}
}

// anchor appends the head when it is due (or, with force, whenever it
// moved).
func (a *anchorer) anchor(ctx context.Context, force bool) error {
	head, err := a.ledger.Audit(ctx, stores.AuditFilter{Limit: 1})
	if err != nil || len(head) == 0 {
		return err
	}
	h := head[0]
	moved := h.Seq - a.last
	if moved <= 0 || (!force && moved < anchorEvery && time.Since(a.lastAt) < anchorInterval) {
		return nil
	}
	if err := a.anchors.Append(ctx, stores.NewAnchor(h.Seq, h.Hash, time.Now(), a.key)); err != nil {
		return err
	}
	a.last, a.lastAt = h.Seq, time.Now()
	a.logger.DebugContext(ctx, "audit chain anchored", "seq", h.Seq)
	return nil
}
