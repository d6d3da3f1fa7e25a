package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/erasure-project/erasure/internal/app"
)

// cmdKeys creates the keys every process of a deployment must share, so an
// orchestrator can make them once (an init container, a Secret) instead of
// each process minting its own.
func cmdKeys(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		fmt.Fprint(stderr, "usage: erasure keys init --dir DIR\n\ncreates DIR/event.key and DIR/receipt.key unless they exist, and prints the receipt public key\n")
		return exitError{2}
	}
	fl := newCommand("keys init", stderr, false)
	dir := fl.String("dir", "", "directory for event.key and receipt.key (created owner-only)")
	if err := fl.parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("--dir is required")
	}
	created, pub, err := app.InitKeys(*dir)
	if err != nil {
		return err
	}
	if len(created) == 0 {
		fmt.Fprintf(stderr, "keys in %s kept as they are\n", *dir)
	} else {
		fmt.Fprintf(stderr, "created %s in %s\n", strings.Join(created, " and "), *dir)
	}
	_, err = stdout.Write(pub)
	return err
}
