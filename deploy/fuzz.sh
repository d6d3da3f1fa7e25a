#!/usr/bin/env bash
# Runs every fuzz target of the module for a fixed time each (default 5s,
# ERASURE_FUZZTIME to change), so each CI run explores new inputs beyond the
# committed seed corpora. A failure leaves the crashing input under the
# package's testdata/fuzz and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${ERASURE_FUZZTIME:-5s}"
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		out=$(go test -run XXX -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1) || { echo "$out"; echo "fuzz: $pkg $target FAILED" >&2; exit 1; }
		execs=$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1)
		echo "fuzz: ${pkg#github.com/erasure-project/erasure/} $target ${fuzztime}: ${execs:-execs: ?}, no failure"
	done
done
