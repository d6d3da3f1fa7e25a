#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts the real
# servers (Kafka, OpenSearch, ClickHouse, MinIO) and Chromium, then runs every
# Go test against them, and stops the servers it started.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
	echo "installing chromium" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

state="${ERASURE_LOCAL_STATE:-/tmp/erasure-local}"
trap 'bash deploy/local/servers.sh stop || true' EXIT
bash deploy/local/servers.sh start
# shellcheck disable=SC1091
source "$state/env"

go vet ./...
# The packages with concurrency of their own run under the race detector.
go test -count=1 -race -timeout 20m ./schemas/... ./producers/... ./consumers/... ./webapi/...
go test -count=1 -timeout 25m -skip '^TestFault$' ./stores/... ./internal/... ./cmd/... ./deploy/...
# The fault suite: 50 seeded iterations of bulk deletes hit by process kills, a
# store outage, rebalances and broker restarts. It prints its seed; replay one
# with -fault.seed=N, run longer with -fault.iterations=500.
go test -count=1 -timeout 15m -run '^TestFault$' -v ./cmd/erasure -fault.iterations=50
# Every fuzz target for a fixed number of executions, beyond its committed corpus.
bash deploy/fuzz.sh
