#!/usr/bin/env bash
# Suites that install the fdbhook package (packages, fleet) refuse to run
# over one an admin installed: they purge what they install. A suite that
# was killed half-way (a CI job cancelled, a machine snapshotted mid-run)
# leaves its own package behind, and every later run would refuse. This
# tells the two apart.
#
#   test/package-leftover.sh mark SUITE   before the suite installs the package
#   test/package-leftover.sh clear        after the suite purged it
#   test/package-leftover.sh check SUITE  exit 0 when no fdbhook package is
#                                         installed or a leftover was purged;
#                                         exit 1, saying why, otherwise
#
# A package is a leftover when the marker names a suite (written by "mark",
# removed by "clear"), or when CI=true: a CI machine holds no admin's package.
set -euo pipefail
marker=/var/lib/fdbhook-test/package-installed-by

state() {
	local s
	s=$(dpkg-query -W -f='${db:Status-Status}' fdbhook 2>/dev/null) || true
	echo "${s:-not-installed}"
}

case ${1:-} in
mark)
	mkdir -p "$(dirname "$marker")"
	echo "${2:?suite} $(date -u +%FT%TZ) pid $$" >"$marker"
	;;
clear)
	rm -f "$marker"
	;;
check)
	suite=${2:?suite}
	s=$(state)
	[ "$s" = not-installed ] && { rm -f "$marker"; exit 0; }
	if [ -f "$marker" ]; then
		why="left by an interrupted test run ($(cat "$marker"))"
	elif [ "${CI:-}" = true ]; then
		why="CI=true, and a CI machine holds no admin's package"
	else
		echo "$suite: an fdbhook package is already on this host (status: $s) and no test run installed it; the test installs and purges its own, so remove it first (dpkg -P fdbhook)" >&2
		exit 1
	fi
	echo "$suite: purging the fdbhook package already on this host (status: $s): $why" >&2
	log=$(mktemp)
	if ! FDBHOOK_NO_RELOAD=1 dpkg --force-all --purge fdbhook >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		echo "$suite: could not purge the leftover fdbhook package" >&2
		exit 1
	fi
	rm -f "$log" "$marker"
	;;
*)
	echo "usage: $0 mark SUITE | clear | check SUITE" >&2
	exit 2
	;;
esac
