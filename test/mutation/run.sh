#!/usr/bin/env bash
# Mutation run: applies each patch in test/mutation/patches (a deliberate bug
# in the product code) to a scratch copy of the committed tree, runs the
# suites the patch names, and prints which tests failed. A mutation that no
# test catches is reported as SURVIVED and makes the run exit 1. Not part
# of `make test` (about 15 minutes); needs root, like the suites it runs.
#
# Usage: test/mutation/run.sh [PATTERN]   (only patches whose name matches
#                                          PATTERN, an extended regex)
#
# Each patch's line says, per suite it names, the tests that failed; the
# run ends with a table of every patch and the suites that caught it.
#
# Suites a patch can name on its "Suites:" line:
#   unit         go test ./pkg/... ./cmd/...
#   integration  go test ./test/integration/ ./test/features/ ./test/admin/
#   vm           test/vm/run.sh (Debian's cloud kernel under QEMU)
#
# The unmutated tree is run first. Tests that fail there are listed and left
# out of every mutation's result (they catch nothing); a suite that does not
# build there stops the run. MUTATION_SKIP_BASELINE=1 skips it.
# MUTATION_KEEP=1 keeps the scratch copies' suite logs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PATH="/usr/local/go/bin:$PATH" CGO_ENABLED=0
pattern=${1:-}

[ "$(id -u)" -eq 0 ] || { echo "mutation: needs root (the integration suites create namespaces)" >&2; exit 1; }
if [ -n "$(git -C "$root" status --porcelain -- pkg cmd test go.mod go.sum)" ]; then
	echo "mutation: note: uncommitted changes are not part of the run (it uses HEAD $(git -C "$root" rev-parse --short HEAD))" >&2
fi

work=$(mktemp -d /tmp/fdbhook-mutation.XXXXXX)
if [ "${MUTATION_KEEP:-}" = 1 ]; then
	trap 'echo "mutation: logs kept in $work" >&2' EXIT
else
	trap 'rm -rf "$work"' EXIT
fi
mkdir "$work/base"
git -C "$root" archive HEAD | tar -x -C "$work/base"

# run_suite DIR SUITE LOG: runs one suite in DIR; prints the failing tests
# (top-level names, space-separated) or nothing. Returns 2 when the suite
# could not build.
run_suite() {
	local dir=$1 suite=$2 log=$3 rc=0
	case $suite in
	unit) (cd "$dir" && go test -count=1 -v ./pkg/... ./cmd/...) >"$log" 2>&1 || rc=$? ;;
	integration)
		(cd "$dir" && make -s build >/dev/null && go test -count=1 -v ./test/integration/ ./test/features/ ./test/admin/) >"$log" 2>&1 || rc=$?
		;;
	vm) (cd "$dir" && make -s build >/dev/null && test/vm/run.sh) >"$log" 2>&1 || rc=$? ;;
	*)
		echo "unknown suite $suite" >"$log"
		return 2
		;;
	esac
	if grep -qE '\[build failed\]|^# github.com/fdbhook|building the in-VM test binary failed' "$log"; then
		return 2
	fi
	local failed raw known=/dev/null
	[ ! -f "$work/baseline-$suite.failed" ] || known=$work/baseline-$suite.failed
	raw=$(grep -aE '^--- FAIL: ' "$log" | awk '{ print $3 }' | sort -u || true)
	failed=$(printf '%s\n' "$raw" | grep -vxF -f "$known" | tr '\n' ' ' || true)
	if [ "$rc" != 0 ] && [ -z "$raw" ]; then
		failed="(suite failed without a test failure: $(grep -aE 'FAIL|panic' "$log" | head -n 1))"
	fi
	printf '%s' "${failed% }"
}

if [ "${MUTATION_SKIP_BASELINE:-}" != 1 ]; then
	suites=$(sed -n 's/^Suites: //p' "$here"/patches/*.patch | tr ' ' '\n' | sort -u | tr '\n' ' ')
	for s in $suites; do
		res=$(run_suite "$work/base" "$s" "$work/baseline-$s.log") || { echo "mutation: baseline $s does not build" >&2; exit 1; }
		case $res in
		"") echo "baseline $s: pass" ;;
		"(suite failed"*)
			echo "mutation: baseline $s fails outside any test: $res" >&2
			exit 1
			;;
		*)
			echo "baseline $s: FAILS WITHOUT ANY MUTATION: $res (left out of the results below)"
			printf '%s\n' $res >"$work/baseline-$s.failed"
			;;
		esac
	done
fi

survived=0 total=0 table=()
for patch in "$here"/patches/*.patch; do
	name=$(basename "$patch" .patch)
	[[ -z $pattern ]] || grep -qE -- "$pattern" <<<"$name" || continue
	total=$((total + 1))
	rm -rf "$work/m"
	cp -a "$work/base" "$work/m"
	if ! (cd "$work/m" && git apply "$patch"); then
		echo "$name -> PATCH DOES NOT APPLY (the code it mutates moved: update the patch)"
		table+=("$(printf '%-40s %s' "$name" "DOES NOT APPLY")")
		survived=$((survived + 1))
		continue
	fi
	caught=() by=()
	for s in $(sed -n 's/^Suites: //p' "$patch"); do
		rc=0
		res=$(run_suite "$work/m" "$s" "$work/$name-$s.log") || rc=$?
		if [ "$rc" = 2 ]; then
			caught+=("$s: MUTANT DOES NOT BUILD")
		elif [ -n "$res" ]; then
			caught+=("$s: $res")
			by+=("$s")
		else
			caught+=("$s: -")
		fi
	done
	if printf '%s\n' "${caught[@]}" | grep -v 'DOES NOT BUILD' | grep -vq ': -$'; then
		verdict=caught
	else
		verdict=SURVIVED
		survived=$((survived + 1))
	fi
	printf '%s (%s) -> %s\n' "$name" "$verdict" "$(printf '%s; ' "${caught[@]}" | sed 's/; $//')"
	printf '    %s\n' "$(sed -n 's/^Mutation: //p' "$patch")"
	table+=("$(printf '%-40s %s' "$name" "${by[*]:-SURVIVED}")")
done
echo
printf '%-40s %s\n' "patch" "caught by"
printf '%s\n' "${table[@]}"
echo "mutation: $((total - survived)) of $total mutations caught"
[ "$survived" = 0 ]
