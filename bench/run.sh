#!/usr/bin/env bash
# fdbhook benchmarks: start-hook latency against a shell baseline and the
# exec floor, stop cost against a large FDB, peak RSS, and the flood
# reduction the feature exists for. Needs root. Everything runs in network
# namespaces this script (or the Go benchmark) creates; nothing is sent
# outside them. Writes bench/results.md and bench/latency.svg.
#
# Knobs (environment): BENCH_RUNS (default 200), BENCH_STOP_RUNS (200),
# BENCH_RSS_RUNS (20), BENCH_FDB_ENTRIES (10000), BENCH_FLOOD_FRAMES (20000),
# BENCH_FLOOD_ROUNDS (3), BENCH_GO_BENCHTIME (200x), BENCH_GO_COUNT (5),
# BENCH_KERNEL_BENCHTIME (50x),
# BENCH_PHASES (latency,stop,rss,flood,lxc; "lxc" alone measures the lxc hook
# beside the qemu hook and replaces only that section of bench/results.md),
# BENCH_ALT_HOOK and BENCH_ALT_NAME (another build of the qemu hook and
# what to call it: the "alt" phase times it beside bin/qemu-hook, a start
# with one NIC and prepare begin; "alt" alone replaces only its section).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export CGO_ENABLED=0

if [ "$(id -u)" -ne 0 ]; then
	echo "bench/run.sh: needs root (network namespaces, bridges, taps)" >&2
	exit 1
fi
test/deps.sh iproute2 xmlstarlet time

[ -x bin/qemu-hook ] && [ -x bin/lxc-hook ] && [ -x bin/fdbhook ] || make build
out=bench/out
mkdir -p "$out" bench/bin
# bench/ is a module of its own over the product (bench/go.mod). Floors,
# built like the hooks (static, stripped), and the driver.
(
	cd bench
	go build -trimpath -ldflags '-s -w' -o bin/noop ./noop
	go build -trimpath -ldflags '-s -w' -o bin/hookinit ./floor/hookinit
	go build -trimpath -ldflags '-s -w' -o bin/noxmlquery ./floor/noxmlquery
	go build -trimpath -o bin/driver ./driver
)

ns="fdbt-bench-$$"
made_lxc_dir=
cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	if [ -n "$made_lxc_dir" ]; then rmdir /run/libvirt/lxc /run/libvirt 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The bench shares the production hook lock (/run/fdbhook/lock) and its
# timings mean little next to a running end-to-end suite: hold the suites'
# lock while measuring.
exec 9>/run/fdbhook-test.lock
echo "waiting for /run/fdbhook-test.lock" >&2
flock -w 1800 9 || { echo "bench/run.sh: /run/fdbhook-test.lock held for 30 min" >&2; exit 1; }

phases=${BENCH_PHASES:-latency,stop,rss,flood,lxc,alt}
if [ "$phases" != lxc ] && [ "$phases" != alt ]; then
echo "== go test -bench . in bench/ (in-process plan + apply)" >&2
(cd bench && go test -count "${BENCH_GO_COUNT:-5}" -run '^$' -bench . -benchmem -benchtime "${BENCH_GO_BENCHTIME:-200x}" .) | tee "$out/gobench.txt" >&2

echo "== go test -bench ./pkg/kernel (pkg/kernel beside the netlink library)" >&2
go test -count "${BENCH_GO_COUNT:-5}" -run '^$' -bench . -benchmem -benchtime "${BENCH_KERNEL_BENCHTIME:-50x}" ./pkg/kernel/ | tee "$out/kernelbench.txt" >&2
fi

echo "== hook binaries in network namespace $ns" >&2
ip netns add "$ns"
# The lxc hook reads containers' live state from /run/libvirt/lxc: the
# driver runs in a mount namespace of its own with a tmpfs there, so the
# bench's containers never appear in libvirt's real directory.
if [ ! -d /run/libvirt/lxc ]; then
	mkdir -p /run/libvirt/lxc
	made_lxc_dir=1
fi
ip netns exec "$ns" unshare -m --propagation private \
	sh -c 'mount -t tmpfs fdbt-bench-lxc /run/libvirt/lxc && exec "$@"' sh bench/bin/driver measure -netns "$ns" \
	-hook bin/qemu-hook -lxc-hook bin/lxc-hook -admin bin/fdbhook -shell bench/shell-hook.sh -noop bench/bin/noop \
	-hookinit bench/bin/hookinit -noxmlquery bench/bin/noxmlquery -work "$out" \
	-runs "${BENCH_RUNS:-200}" -stop-runs "${BENCH_STOP_RUNS:-200}" -rss-runs "${BENCH_RSS_RUNS:-20}" \
	-fdb-entries "${BENCH_FDB_ENTRIES:-10000}" -flood-frames "${BENCH_FLOOD_FRAMES:-20000}" \
	-flood-rounds "${BENCH_FLOOD_ROUNDS:-3}" -phases "$phases" -alt-hook "${BENCH_ALT_HOOK:-}" \
	-alt-name "${BENCH_ALT_NAME:-alt}" -o "$out/results.json"

if [ "$phases" = lxc ] || [ "$phases" = alt ]; then
	bench/bin/driver report -i "$out/results.json" -md bench/results.md "-$phases-only"
	echo "wrote the $phases section of bench/results.md" >&2
	exit 0
fi

bench/bin/driver report -i "$out/results.json" -gobench "$out/gobench.txt" -kernelbench "$out/kernelbench.txt" \
	-md bench/results.md -svg bench/latency.svg
echo "wrote bench/results.md and bench/latency.svg" >&2

echo "== fdbhook watch" >&2
FDBHOOK_TEST_LOCK_HELD=1 bench/watch.sh
