package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/erasure-project/erasure/internal/app"
)

func cmdServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.SetOutput(stderr)
	configPath := fl.String("config", "", "YAML configuration file")
	roles := fl.String("roles", "", "comma-separated roles: webapi, aggregator, consumer:<channel>, or all")
	if err := fl.Parse(args); err != nil {
		return exitError{2}
	}
	cfg, err := app.Load(*configPath)
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
