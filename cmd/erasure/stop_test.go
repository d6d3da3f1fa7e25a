package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/stores/kafka"
	"github.com/erasure-project/erasure/webapi"
)

// Every mix of roles stops when asked, the web API alone too: its router
// has no handlers, and such a router ends only when closed.
func TestRolesStopWhenAsked(t *testing.T) {
	for name, roles := range map[string][]string{"webapi": {app.RoleWebAPI}, "aggregator": {app.RoleAggregator}, "all": app.AllRoles()} {
		t.Run(name, func(t *testing.T) {
			cfg := app.Default()
			cfg.DataDir = t.TempDir()
			cfg.HTTPAddr = "127.0.0.1:0"
			cfg.Partitions = 1
			cfg.Web.APITokens = []webapi.APIToken{{Name: "t", TokenSHA256: strings.Repeat("0", 64), Roles: []string{"dpo"}}}
			broker, err := kafka.StartEmbedded(t.Context(), filepath.Join(cfg.DataDir, "kafka"), freePort(t), 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer broker.Close()
			cfg.Kafka.Brokers = []string{broker.Addr()}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			a, cleanup, err := app.New(ctx, cfg, roles, testLogger(t), app.Prepare(func(ctx context.Context, st *app.Stores) error {
				return demo.Ensure(ctx, st.Demo())
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer cleanup()
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			select {
			case <-a.Running():
			case <-time.After(30 * time.Second):
				t.Fatal("not running")
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("still running 10s after it was asked to stop")
			}
		})
	}
}
