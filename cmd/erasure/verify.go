package main

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/erasure-project/erasure/internal/app"
)

func cmdVerify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fl := newCommand("verify", stderr, true)
	file := fl.String("file", "", "read contact IDs from this file, one per line")
	cfg, err := fl.load(args)
	if err != nil {
		return err
	}
	ids, err := readIDs(fl.Args(), *file, stdin)
	if err != nil {
		return err
	}
	st, cleanup, err := app.OpenStores(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	for i, id := range ids {
		if err := st.Rule.Check(id); err != nil {
			return fmt.Errorf("contact ID #%d: %w", i+1, err)
		}
	}
	dirty := 0
	for _, id := range ids {
		rem, err := st.Locator.Remaining(ctx, id)
		if err != nil {
			return fmt.Errorf("verify %s: %w", id, err)
		}
		if rem.Total() == 0 {
			fmt.Fprintf(stdout, "%s: clean\n", id)
			continue
		}
		dirty++
		fmt.Fprintf(stdout, "%s: %d items remain\n", id, rem.Total())
		var lines []string
		for ch, arts := range rem {
			for a, n := range arts {
				if n > 0 {
					lines = append(lines, fmt.Sprintf("  %s/%s: %d", ch, a, n))
				}
			}
		}
		sort.Strings(lines)
		for _, l := range lines {
			fmt.Fprintln(stdout, l)
		}
	}
	if dirty > 0 {
		fmt.Fprintf(stdout, "%d of %d contacts not clean\n", dirty, len(ids))
		return exitError{1}
	}
	fmt.Fprintf(stdout, "%d contacts clean in every store\n", len(ids))
	return nil
}
