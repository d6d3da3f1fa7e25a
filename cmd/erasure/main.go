// Command erasure permanently erases contact-centre contacts from every
// store, verifies they are gone, and audits each deletion.
//
//	erasure up        everything in one process on embedded defaults, with demo data
//	erasure serve     production roles against real Kafka and stores
//	erasure delete    the bulk deletion script
//	erasure verify    scan every store for anything left of given contacts
//	erasure audit     query the audit log and verify its hash chain; signed receipts
//	erasure replay    re-run past deletions after a backup restore
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/erasure-project/erasure/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries an exit code up to main.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Reader, io.Writer, io.Writer) error{
		"up":     cmdUp,
		"serve":  cmdServe,
		"delete": cmdDelete,
		"verify": cmdVerify,
		"audit":  cmdAudit,
		"replay": cmdReplay,
		"hold":   cmdHold,
		"keys":   cmdKeys,
		"bench":  cmdBench,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		if args[0] != "help" && args[0] != "-h" && args[0] != "--help" {
			fmt.Fprintf(stderr, "erasure: unknown command %q\n", args[0])
		}
		usage(stderr)
		return 2
	}
	err := cmd(ctx, args[1:], stdin, stdout, stderr)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "erasure %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: erasure <command> [flags]

commands:
  up       run everything in one process on embedded defaults, with demo data
  serve    run production roles (webapi, aggregator, consumer:<channel>)
  delete   delete contacts: IDs as arguments, --file F, or - for stdin
  verify   exit 0 only when no store holds anything of the given contacts
  audit    query the audit log and verify its hash chain
           audit receipt REQUEST-ID | verify FILE --public-key KEY | public-key
  replay   re-run the deletions requested since a time (after a backup restore)
  hold     hold place|lift CONTACT-ID --reason CODE [--ticket T] --actor NAME [--wait]: a legal hold;
           hold list: the holds in force
  keys     keys init --dir DIR: the event and receipt keys every process of a deployment shares

Run 'erasure <command> -h' for a command's flags.
`)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// command is a command's flag set. Every command reads the one
// configuration file; the ones that open the embedded stores also take the
// data directory.
type command struct {
	*flag.FlagSet
	configPath *string
	dataDir    *string
}

func newCommand(name string, stderr io.Writer, dataDir bool) *command {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(stderr)
	c := &command{FlagSet: fl, configPath: fl.String("config", "", "YAML configuration file (optional)")}
	if dataDir {
		c.dataDir = fl.String("data", "", "data directory of the embedded stores (default ./erasure-data)")
	}
	return c
}

// parse parses args; a bad flag has been reported already.
func (c *command) parse(args []string) error {
	if err := c.Parse(args); err != nil {
		return exitError{2}
	}
	return nil
}

// load parses args and loads the configuration, with --data applied.
func (c *command) load(args []string) (app.Config, error) {
	if err := c.parse(args); err != nil {
		return app.Config{}, err
	}
	return c.config()
}

// config loads the configuration, with --data applied, once the flags are
// parsed.
func (c *command) config() (app.Config, error) {
	cfg, err := app.Load(*c.configPath)
	if err != nil {
		return cfg, err
	}
	if c.dataDir != nil && *c.dataDir != "" {
		cfg.DataDir = *c.dataDir
	}
	return cfg, nil
}
