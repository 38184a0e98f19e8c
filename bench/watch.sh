#!/usr/bin/env bash
# Benchmarks of `fdbhook watch` (make bench runs this after bench/run.sh's
# report): hotplug-to-managed and drift-to-healed latency against the real
# libvirtd, and idle CPU time and peak RSS with 300 simulated guests in a
# network namespace of its own. Appends a dated section to bench/results.md.
#
# Knobs (environment): BENCH_WATCH_HOTPLUGS (default 30), BENCH_WATCH_GUESTS
# (300), BENCH_WATCH_IDLE (2m). Holds /run/fdbhook-test.lock (it starts a
# guest on the host's libvirtd) unless the caller does (FDBHOOK_TEST_LOCK_HELD=1).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export CGO_ENABLED=0

log() { echo "bench/watch: $*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (libvirtd, bridges, network namespaces)"
test/deps.sh libvirt-daemon-system qemu-system-x86 iproute2
[ -x bin/fdbhook ] || make build
mkdir -p bench/bin bench/out
(cd bench && go build -trimpath -o bin/watchbench ./watch) # bench/ is a module of its own

if [ "${FDBHOOK_TEST_LOCK_HELD:-}" != 1 ]; then
	exec 9>/run/fdbhook-test.lock
	log "waiting for /run/fdbhook-test.lock"
	flock -w 1800 9 || die "/run/fdbhook-test.lock held for 30 min"
fi

ns="fdbt-wbench-$$"
started_virtlogd=
started_libvirtd=
# shellcheck source=test/e2e/libvirtd.sh
. test/e2e/libvirtd.sh
cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	if [ -n "$started_libvirtd" ]; then
		if [ "$started_libvirtd" = systemd ]; then systemctl stop libvirtd.service; else stop_pidfile /run/libvirtd.pid; fi
	fi
	[ -z "$started_virtlogd" ] || stop_pidfile /run/virtlogd.pid
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_daemons

out=bench/out/watch.md
log "hotplug and drift latency against libvirtd ($(libvirtd --version))"
bench/bin/watchbench -mode hotplug -fdbhook bin/fdbhook -n "${BENCH_WATCH_HOTPLUGS:-30}" >"$out.hotplug" 9>&-
log "idle CPU and peak RSS with ${BENCH_WATCH_GUESTS:-300} simulated guests (${BENCH_WATCH_IDLE:-2m})"
ip netns add "$ns"
ip netns exec "$ns" bench/bin/watchbench -mode idle -fdbhook bin/fdbhook \
	-guests "${BENCH_WATCH_GUESTS:-300}" -idle "${BENCH_WATCH_IDLE:-2m}" >"$out.idle" 9>&-
{
	echo
	echo "## fdbhook watch ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
	echo
	echo "Made by bench/watch.sh (bench/watch/main.go) on $(nproc) CPUs, $(uname -r)."
	echo
	cat "$out.hotplug" "$out.idle"
} | tee "$out" >>bench/results.md
log "appended to bench/results.md"
