package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores/receipt"
)

// cmdAuditReceipt is `erasure audit receipt`:
//
//	audit receipt REQUEST-ID [--out FILE]        the signed receipt of a request
//	audit receipt verify FILE --public-key KEY   check a receipt with the public key only
//	audit receipt public-key                     the PEM public key receipts verify with
func cmdAuditReceipt(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return receiptVerify(args[1:], stdin, stdout, stderr)
		case "public-key":
			return receiptPublicKey(args[1:], stdout, stderr)
		}
	}
	fl := newCommand("audit receipt", stderr, true)
	out := fl.String("out", "", "write the receipt to this file (default: standard output)")
	fl.Usage = receiptUsage(fl.FlagSet, "erasure audit receipt REQUEST-ID [--out FILE] [--data DIR | --config FILE]")
	pos, err := parseInterspersed(fl.FlagSet, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fl.Usage()
		return exitError{2}
	}
	id := pos[0]
	if !schemas.IsRequestID(id) {
		return fmt.Errorf("request ID: %w", receipt.ErrInvalidRequestID)
	}
	cfg, err := fl.config()
	if err != nil {
		return err
	}
	key, err := cfg.ExistingReceiptKey()
	if err != nil {
		return err
	}
	st, cleanup, err := app.OpenStores(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	r, err := receipt.Issue(ctx, st.Ledger, id, key, time.Now())
	if err != nil {
		return fmt.Errorf("request %s: %w", id, err)
	}
	raw, err := receipt.Marshal(r)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(raw)
		return err
	}
	// Owner-only: a receipt names contacts and the people who deleted them.
	if err := os.WriteFile(*out, raw, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote the receipt of request %s (%d entries, key %s) to %s\n", id, len(r.Entries), r.KeyID, *out)
	return nil
}

// receiptVerify checks a receipt file (or - for standard input) with a
// public key alone: no configuration, ledger or signing key.
func receiptVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("audit receipt verify", flag.ContinueOnError)
	fl.SetOutput(stderr)
	keyFile := fl.String("public-key", "", "the published public key: PEM, or the 32 key bytes in base64")
	fl.Usage = receiptUsage(fl, "erasure audit receipt verify FILE --public-key KEYFILE")
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *keyFile == "" {
		fl.Usage()
		return exitError{2}
	}
	rawKey, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	pub, err := receipt.DecodePublicKey(rawKey)
	if err != nil {
		return fmt.Errorf("public key %s: %w", *keyFile, err)
	}
	var raw []byte
	if pos[0] == "-" {
		raw, err = io.ReadAll(stdin)
	} else {
		raw, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	r, err := receipt.Parse(raw)
	if err == nil {
		err = receipt.Verify(r, pub)
	}
	if err != nil {
		fmt.Fprintf(stdout, "receipt INVALID: %v\n", err)
		return exitError{1}
	}
	fmt.Fprintf(stdout, "receipt valid: request %s, %d entries, signed by key %s\n", r.RequestID, len(r.Entries), r.KeyID)
	return nil
}

// receiptPublicKey prints the public key of the configured signing key,
// for publishing.
func receiptPublicKey(args []string, stdout, stderr io.Writer) error {
	fl := newCommand("audit receipt public-key", stderr, true)
	fl.Usage = receiptUsage(fl.FlagSet, "erasure audit receipt public-key [--data DIR | --config FILE]")
	cfg, err := fl.load(args)
	if err != nil {
		return err
	}
	if fl.NArg() != 0 {
		fl.Usage()
		return exitError{2}
	}
	key, err := cfg.ExistingReceiptKey()
	if err != nil {
		return err
	}
	_, err = stdout.Write(receipt.EncodePublicKey(key.Public().(ed25519.PublicKey)))
	return err
}

func receiptUsage(fl *flag.FlagSet, synopsis string) func() {
	return func() {
		fmt.Fprintf(fl.Output(), "usage: %s\n", synopsis)
		fl.PrintDefaults()
	}
}

// parseInterspersed parses fl, allowing flags after the positional
// arguments (`audit receipt ID --out FILE`), and returns the positional
// ones. Everything after "--" is positional.
func parseInterspersed(fl *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			return nil, exitError{2}
		}
		rest := fl.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}
