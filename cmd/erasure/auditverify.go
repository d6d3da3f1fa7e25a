package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/stores"
)

// auditVerify checks the whole audit log: every link and hash, every
// signature with the audit key's public half, and every anchor against the
// entry at its seq. It prints the figures and, on a problem, the first one
// by seq, and exits 1.
func auditVerify(ctx context.Context, cfg app.Config, l stores.Ledger, stdout io.Writer) error {
	scanner, ok := l.(stores.AuditScanner)
	if !ok {
		return errors.New("the ledger cannot be scanned for verification")
	}
	pub, err := cfg.AuditPublicKey()
	if err != nil {
		return err
	}
	anchorStore, err := cfg.AuditAnchors(ctx)
	if err != nil {
		return err
	}
	anchors, err := anchorStore.List(ctx)
	if errors.Is(err, stores.ErrPermanent) {
		fmt.Fprintf(stdout, "audit anchors BROKEN: %v\n", err)
		return exitError{1}
	}
	if err != nil {
		return err
	}
	rep, verr := stores.VerifyAudit(ctx, scanner, pub, anchors)
	if verr != nil && !errors.Is(verr, stores.ErrPermanent) {
		return verr // the store failed; nothing was found wrong
	}
	if rep.Unsigned > 0 {
		fmt.Fprintf(stdout, "warning: %d unsigned entries (written before entries were signed)\n", rep.Unsigned)
	}
	if len(anchors) == 0 {
		fmt.Fprintln(stdout, "warning: no anchors; removing the newest entries would go unnoticed")
	}
	fmt.Fprintf(stdout, "entries verified: %d (signed %d, unsigned %d); anchors checked: %d of %d\n",
		rep.Entries, rep.Signed, rep.Unsigned, rep.Anchors, len(anchors))
	if verr != nil {
		fmt.Fprintf(stdout, "audit chain BROKEN: %v\n", verr)
		return exitError{1}
	}
	fmt.Fprintf(stdout, "audit chain intact: %d entries\n", rep.Entries)
	return nil
}
