#!/usr/bin/env bash
# Live migration between two libvirt hosts on one machine (make migration,
# after make build). Installs libvirt, QEMU and the tools the harness uses
# when missing, then runs the Go suite, which builds each test's two hosts
# in namespaces of their own (see doc.go): the machine's own libvirtd,
# /etc/libvirt, /etc/fdbhook and /run/fdbhook are never touched.
#
# Arguments are passed to go test (e.g. run.sh -run TestBackAndForth).
#
# Holds /run/fdbhook-test.lock for the whole run (it installs packages); a
# caller that already holds it sets FDBHOOK_TEST_LOCK_HELD=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
T0=$(date +%s)

log() { echo "migration: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (namespaces, libvirtd, bridges)"
for b in qemu-hook fdbhook; do
	[ -x "bin/$b" ] || die "bin/$b missing: run 'make migration' (it builds first)"
done

if [ "${FDBHOOK_TEST_LOCK_HELD:-}" != 1 ]; then
	exec 9>/run/fdbhook-test.lock
	log "waiting for /run/fdbhook-test.lock"
	flock -w 1200 9 || die "/run/fdbhook-test.lock still held after 20 min"
fi

# dpkg may be busy with another suite's installation: retry for a while.
for i in 1 2 3 4 5 6; do
	test/deps.sh libvirt-daemon-system libvirt-clients qemu-system-x86 ipxe-qemu iproute2 util-linux && break
	[ "$i" -eq 6 ] && die "could not install libvirt and QEMU"
	log "package installation failed (dpkg busy?), retry $i in 20 s"
	sleep 20
done

log "packages ready after $(($(date +%s) - T0)) s"
# go test must not keep the lock's descriptor in the daemons it starts.
go test -count=1 -v -timeout 40m "$@" ./test/migration/ 9>&-
