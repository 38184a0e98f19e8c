#!/usr/bin/env bash
# Bounded fuzzing of the XML-to-plan path and the config parser. Seeds are
# added in the fuzz functions; an input that ever fails is written by go test
# to the package's testdata/fuzz and then runs in every plain go test.
# Minimisation is capped at 100 runs per input: the domain XML seeds are
# large, and uncapped minimisation would use most of the time budget.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-30s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "FuzzStart ./pkg/plan/" "FuzzParse ./pkg/config/"; do
	set -- $target
	rc=0
	go test -run '^$' -fuzz "^$1\$" -fuzztime "$t" -fuzzminimizetime 100x -parallel 2 "$2" >"$log" 2>&1 || rc=$?
	execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -n 1 || true)
	echo "fuzz: $1 ($2) for $t: ${execs:-no executions recorded}"
	if [ "$rc" -ne 0 ]; then
		cat "$log"
		exit "$rc"
	fi
done
