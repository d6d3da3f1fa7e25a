package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/stores/kafka"
	"github.com/erasure-project/erasure/webapi"
)

func cmdUp(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fl := newCommand("up", stderr, true)
	httpAddr := fl.String("http", "", "web UI address (default 127.0.0.1:8080)")
	brokerPort := fl.Int("broker-port", 0, "embedded Kafka broker port on 127.0.0.1 (default 9092)")
	demoContacts := fl.Int("demo-contacts", -1, "contacts to seed on first start (default 500)")
	deadline := fl.Duration("deadline", 0, "deadline of a deletion (default 30s)")
	verbose := fl.Bool("v", false, "debug logging")
	cpuProfile := fl.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := fl.String("memprofile", "", "write a heap profile to this file when the run ends")
	cfg, err := fl.load(args)
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *memProfile != "" {
		defer writeHeapProfile(*memProfile, stderr)
	}
	if *httpAddr != "" {
		cfg.HTTPAddr = *httpAddr
	}
	if *brokerPort != 0 {
		if len(cfg.Kafka.Brokers) > 0 {
			return errors.New("--broker-port sets the embedded broker's port, but kafka.brokers is configured: remove one of them")
		}
		cfg.Kafka.EmbeddedPort = *brokerPort
	}
	if *demoContacts >= 0 {
		cfg.DemoContacts = *demoContacts
	}
	if *deadline != 0 {
		cfg.Deadline = *deadline
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := newLogger(stderr, level)
	return up(ctx, cfg, logger, stdout)
}

// up runs every role in one process, with demo users and data. Every store
// is the configured one (the embedded ones by default); the embedded broker
// runs only when no kafka.brokers are configured.
func up(ctx context.Context, cfg app.Config, logger *slog.Logger, stdout io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Everything this process creates is its owner's only: the embedded
	// broker creates its segments 0644 and has no option for it, and every
	// store here holds personal data.
	defer restrictUmask()()
	if err := app.PrepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		broker, err := kafka.StartEmbedded(ctx, filepath.Join(cfg.DataDir, "kafka"), cfg.Kafka.EmbeddedPort, cfg.Partitions, logger)
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		defer broker.Close()
		cfg.Kafka.Brokers = []string{broker.Addr()}
	}

	logins, err := demoUsers(cfg.DataDir)
	if err != nil {
		return err
	}
	for _, l := range logins {
		hash, err := bcrypt.GenerateFromPassword([]byte(l.Password), bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		cfg.Web.Users = append(cfg.Web.Users, webapi.User{Name: l.Name, PasswordHash: string(hash), Roles: l.Roles})
	}

	// The demo stores are created and seeded before the stores are checked
	// against the data map, so a fresh data directory passes the check.
	var seeded int
	a, cleanup, err := app.New(ctx, cfg, app.AllRoles(), logger, app.Prepare(func(ctx context.Context, st *app.Stores) error {
		var err error
		if seeded, err = seedOnce(ctx, cfg, st, logger); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		return nil
	}))
	if err != nil {
		return err
	}
	defer cleanup()

	fmt.Fprintf(stdout, "erasure is up\n")
	brokers := strings.Join(cfg.Kafka.Brokers, ",")
	fmt.Fprintf(stdout, "  web UI:  %s\n", a.URL())
	fmt.Fprintf(stdout, "  broker:  %s   (erasure delete --brokers %s --actor you --wait ID)\n", brokers, brokers)
	fmt.Fprintf(stdout, "  data:    %s\n", cfg.DataDir)
	if seeded > 0 {
		fmt.Fprintf(stdout, "  demo:    %d contacts seeded\n", seeded)
	}
	fmt.Fprintf(stdout, "  logins:\n")
	for _, l := range logins {
		fmt.Fprintf(stdout, "    %-8s %-22s %v\n", l.Name, l.Password, l.Roles)
	}
	return a.Run(ctx)
}

type demoLogin struct {
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
}

// demoUsers returns one demo user per role, with passwords generated on the
// first start and kept in the data directory (readable by its owner only).
func demoUsers(dataDir string) ([]demoLogin, error) {
	path := filepath.Join(dataDir, "demo-logins.json")
	all := []demoLogin{
		{Name: "agent", Roles: []string{"agent"}},
		{Name: "dpo", Roles: []string{"dpo"}},
		{Name: "auditor", Roles: []string{"auditor"}},
		{Name: "legal", Roles: []string{"legal"}},
		{Name: "admin", Roles: []string{"admin"}},
	}
	var ls []demoLogin
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &ls); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	// A data directory from before a role existed gains its demo user.
	added := false
	for _, l := range all {
		if !slices.ContainsFunc(ls, func(x demoLogin) bool { return x.Name == l.Name }) {
			l.Password = l.Name + "-" + rand.Text()[:10]
			ls, added = append(ls, l), true
		}
	}
	if !added {
		return ls, nil
	}
	raw, err = json.MarshalIndent(ls, "", "  ")
	if err != nil {
		return nil, err
	}
	return ls, os.WriteFile(path, raw, 0o600)
}

// seedOnce seeds demo data the first time a data directory is used. The
// demo tables, buckets and indexes are ensured on every start, also with no
// demo contacts, so that the stores match the data map.
func seedOnce(ctx context.Context, cfg app.Config, st *app.Stores, logger *slog.Logger) (int, error) {
	if err := demo.Ensure(ctx, st.Demo()); err != nil {
		return 0, err
	}
	marker := filepath.Join(cfg.DataDir, "demo-seeded")
	if _, err := os.Stat(marker); err == nil || cfg.DemoContacts == 0 {
		return 0, nil
	}
	start := time.Now()
	ids, err := demo.Seed(ctx, st.Demo(), demo.Options{Contacts: cfg.DemoContacts, Seed: 1})
	if err != nil {
		return 0, err
	}
	logger.Info("demo data seeded", "contacts", len(ids), "took", time.Since(start).Round(time.Millisecond))
	return len(ids), os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600)
}
