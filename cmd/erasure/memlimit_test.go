package main

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/erasure-project/erasure/internal/app"
)

// The configured soft memory limit is the runtime's, unless GOMEMLIMIT
// chose one; 0 leaves it as it was.
func TestLimitMemory(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	logger := slog.New(slog.DiscardHandler)
	cfg := app.Default()

	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(math.MaxInt64)
	limitMemory(cfg, logger)
	if got, want := debug.SetMemoryLimit(-1), int64(cfg.MemoryLimitMiB)<<20; got != want || want == 0 {
		t.Fatalf("limit %d, want the default %d", got, want)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	cfg.MemoryLimitMiB = 0
	limitMemory(cfg, logger)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("limit %d with memory_limit_mib 0, want none", got)
	}

	t.Setenv("GOMEMLIMIT", "1GiB")
	cfg.MemoryLimitMiB = 64
	limitMemory(cfg, logger)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("limit %d with GOMEMLIMIT set, want the environment's to stand", got)
	}
}
