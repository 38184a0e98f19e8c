#!/usr/bin/env bash
# Benchmarks of `fdbhook watch` (make bench runs this after bench/run.sh's
# report): hotplug-to-managed and drift-to-healed latency against the real
# libvirtd; idle CPU time and peak RSS with 300 simulated guests in a
# network namespace of its own; and the watcher on a busy segment (churn):
# 500 simulated guests × 2 NICs on a bridge whose uplink learns new MACs at
# each of BENCH_WATCH_RATES per second, sent from a namespace of the
# bench's own, with this tree's watcher side by side with the one built
# from commit BENCH_WATCH_BEFORE. Appends a dated section to
# bench/results.md.
#
# Knobs (environment): BENCH_WATCH_HOTPLUGS (default 30), BENCH_WATCH_GUESTS
# (300), BENCH_WATCH_IDLE (2m), BENCH_WATCH_PARTS (hotplug,idle,churn),
# BENCH_WATCH_RATES (0,1000,5000,20000), BENCH_WATCH_WINDOW (65s: one timer resync falls in it),
# BENCH_WATCH_PROBES (5), BENCH_WATCH_BEFORE (2684775: the watcher on the
# netlink library's subscriptions; "none" measures this tree's alone),
# BENCH_WATCH_PROFILE (a directory: CPU and allocation profiles of each
# churn window, from bench/watchprof builds; BENCH_WATCH_PERF=1 adds
# `perf record`). Holds /run/fdbhook-test.lock (it starts a guest on the
# host's libvirtd) unless the caller does (FDBHOOK_TEST_LOCK_HELD=1).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export CGO_ENABLED=0

log() { echo "bench/watch: $*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (libvirtd, bridges, network namespaces)"
test/deps.sh libvirt-daemon-system qemu-system-x86 iproute2
make build >/dev/null
mkdir -p bench/bin bench/out
(cd bench && go build -trimpath -o bin/watchbench ./watch) # bench/ is a module of its own

# churn measures the watcher on a busy segment: this tree's beside the one
# built from BENCH_WATCH_BEFORE (extracted with git archive, built as
# make build builds), in one run.
churn() {
	local before=${BENCH_WATCH_BEFORE:-2684775} profile=${BENCH_WATCH_PROFILE:-} after=bin/fdbhook
	local args=(-mode churn -rates "${BENCH_WATCH_RATES:-0,1000,5000,20000}" -window "${BENCH_WATCH_WINDOW:-65s}"
		-probes "${BENCH_WATCH_PROBES:-5}")
	if [ -n "$profile" ]; then
		mkdir -p "$profile"
		(cd bench && go build -trimpath -o bin/watchprof ./watchprof) # bench/ is a module of its own
		after=bench/bin/watchprof
		args+=(-profile "$profile")
		[ "${BENCH_WATCH_PERF:-}" != 1 ] || { test/deps.sh linux-perf; args+=(-perf); }
	fi
	if [ "$before" != none ]; then
		git cat-file -e "$before^{commit}" 2>/dev/null || die "BENCH_WATCH_BEFORE=$before: no such commit here (a shallow clone?)"
		before_dir=$(mktemp -d /tmp/fdbt-wbefore-XXXXXX)
		git archive "$before" | tar -x -C "$before_dir"
		# As make build builds it; with symbols when profiled (perf).
		local target=./cmd/fdbhook ldflags='-s -w'
		if [ -n "$profile" ]; then
			mkdir -p "$before_dir/bench/watchprof"
			cp bench/watchprof/main.go "$before_dir/bench/watchprof/"
			target=./bench/watchprof ldflags=
		fi
		(cd "$before_dir" && go build -trimpath -ldflags "$ldflags" -o fdbhook-before "$target") ||
			die "building the watcher of $before"
		args+=(-before "$before_dir/fdbhook-before" -before-commit "$(git rev-parse --short "$before")")
	fi
	log "the watcher on a busy segment, rates ${BENCH_WATCH_RATES:-0,1000,5000,20000} new MACs/s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	bench/bin/watchbench "${args[@]}" -fdbhook "$after" >"$out.churn" 9>&-
}

if [ "${FDBHOOK_TEST_LOCK_HELD:-}" != 1 ]; then
	exec 9>/run/fdbhook-test.lock
	log "waiting for /run/fdbhook-test.lock"
	flock -w 1800 9 || die "/run/fdbhook-test.lock held for 30 min"
fi

parts=${BENCH_WATCH_PARTS:-hotplug,idle,churn}
has() { case ",$parts," in *",$1,"*) return 0 ;; esac; return 1; }
ns="fdbt-wbench-$$"
started_virtlogd=
started_libvirtd=
before_dir=
# shellcheck source=test/e2e/libvirtd.sh
. test/e2e/libvirtd.sh
cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	[ -z "$before_dir" ] || rm -rf "$before_dir"
	if [ -n "$started_libvirtd" ]; then
		if [ "$started_libvirtd" = systemd ]; then systemctl stop libvirtd.service; else stop_pidfile /run/libvirtd.pid; fi
	fi
	[ -z "$started_virtlogd" ] || stop_pidfile /run/virtlogd.pid
}
trap cleanup EXIT
trap 'exit 130' INT TERM

out=bench/out/watch.md
: >"$out.hotplug"
: >"$out.idle"
: >"$out.churn"
if has hotplug; then
	start_daemons
	log "hotplug and drift latency against libvirtd ($(libvirtd --version))"
	bench/bin/watchbench -mode hotplug -fdbhook bin/fdbhook -n "${BENCH_WATCH_HOTPLUGS:-30}" >"$out.hotplug" 9>&-
fi
if has idle; then
	log "idle CPU and peak RSS with ${BENCH_WATCH_GUESTS:-300} simulated guests (${BENCH_WATCH_IDLE:-2m})"
	ip netns add "$ns"
	ip netns exec "$ns" bench/bin/watchbench -mode idle -fdbhook bin/fdbhook \
		-guests "${BENCH_WATCH_GUESTS:-300}" -idle "${BENCH_WATCH_IDLE:-2m}" >"$out.idle" 9>&-
fi
if has churn; then
	churn
fi
{
	echo
	echo "## fdbhook watch ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
	echo
	echo "Made by bench/watch.sh (bench/watch/main.go) on $(nproc) CPUs, $(uname -r)."
	echo
	cat "$out.hotplug" "$out.idle" "$out.churn"
} | tee "$out" >>bench/results.md
log "appended to bench/results.md"
