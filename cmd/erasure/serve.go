package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/erasure-project/erasure/internal/app"
)

func cmdServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fl := newCommand("serve", stderr, true)
	roles := fl.String("roles", "", "comma-separated roles: webapi, aggregator, consumer:<channel>, or all")
	cfg, err := fl.load(args)
	if err != nil {
		return err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return errors.New("serve needs kafka.brokers (or ERASURE_KAFKA_BROKERS); use 'erasure up' for the embedded broker")
	}
	rs := app.SplitList(*roles)
	if len(rs) == 0 {
		return errors.New("--roles is required")
	}
	if len(rs) == 1 && rs[0] == "all" {
		rs = app.AllRoles()
	}
	logger := newLogger(stderr, slog.LevelInfo)
	a, cleanup, err := app.New(ctx, cfg, rs, logger)
	if err != nil {
		return err
	}
	defer cleanup()
	if u := a.URL(); u != "" {
		fmt.Fprintf(stdout, "web UI: %s\n", u)
	}
	logger.Info("serving", "roles", rs)
	return a.Run(ctx)
}
