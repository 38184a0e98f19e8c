#!/usr/bin/env bash
# Bounded fuzzing of the XML-to-plan path and the config parser. Seeds are
# added in the fuzz functions; an input that ever fails is written by go test
# to the package's testdata/fuzz and then runs in every plain go test.
#
# Each target runs a fixed number of executions (-fuzztime Nx), about 30 s
# each on an idle 2-core machine, not for a fixed time: with a duration, Go
# 1.26's fuzzing coordinator can report its own deadline as a failure
# ("context deadline exceeded", no failing input written) when a busy
# machine starves its workers at the end of the time (go.dev/issue/75804,
# fixed in Go 1.27). A count has no deadline: a busy machine only makes the
# run longer. FUZZ_EXECS=N sets the count of both targets (FUZZTIME, a Go
# -fuzztime value such as 10s, overrides it for a manual run).
#
# Minimisation is capped at 100 runs per input: the domain XML seeds are
# large, and uncapped minimisation would use most of the budget.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "FuzzStart ./pkg/plan/ 400000" "FuzzParse ./pkg/config/ 800000"; do
	set -- $target
	t=${FUZZTIME:-${FUZZ_EXECS:-$3}x}
	rc=0
	go test -run '^$' -fuzz "^$1\$" -fuzztime "$t" -fuzzminimizetime 100x -parallel 2 "$2" >"$log" 2>&1 || rc=$?
	execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -n 1 || true)
	echo "fuzz: $1 ($2) for $t: ${execs:-no executions recorded}"
	if [ "$rc" -ne 0 ]; then
		cat "$log"
		exit "$rc"
	fi
done
