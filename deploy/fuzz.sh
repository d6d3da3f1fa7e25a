#!/usr/bin/env bash
# Runs every fuzz target of the module for a fixed number of executions, so
# each CI run explores new inputs beyond the committed seed corpora. A
# failure leaves the crashing input under the package's testdata/fuzz and
# fails the run.
#
# Budgets are execution counts, not durations: with a duration, Go 1.26's
# fuzz coordinator can report "context deadline exceeded" at the end of a
# clean run (go.dev/issue/75804). ERASURE_FUZZ_SCALE multiplies every budget
# (default 1; 10 or more for a longer hunt on demand).
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${ERASURE_FUZZ_SCALE:-1}"

# Targets that touch a database or the file system run far fewer
# executions per second than the pure ones.
budget() {
	case "$1" in
	FuzzSQLite*) echo 5000 ;;
	FuzzDiskObjectsKey) echo 1000 ;;
	FuzzKeyGroups) echo 50000 ;;
	*) echo 200000 ;;
	esac
}

for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		n=$(( $(budget "$target") * scale ))
		start=$(date +%s)
		out=$(go test -run XXX -fuzz "^${target}\$" -fuzztime "${n}x" "$pkg" 2>&1) || { echo "$out"; echo "fuzz: $pkg $target FAILED" >&2; exit 1; }
		echo "fuzz: ${pkg#github.com/erasure-project/erasure/} $target: ${n} executions in $(( $(date +%s) - start ))s, no failure"
	done
done
