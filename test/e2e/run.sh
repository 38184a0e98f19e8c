#!/usr/bin/env bash
# End-to-end suite against a real libvirtd (make e2e, after make build).
#
# Installs libvirt and QEMU when missing, starts virtlogd/libvirtd when they
# are not running, installs the hooks (symlinks to bin/, or the ones the
# Debian package installed when FDBHOOK_E2E_HOOKS=installed), writes the test
# configuration to /etc/fdbhook/fdbhook.toml (libvirtd gives hooks no
# environment, so the default path is the only one they read), runs the Go
# scenarios and always puts the host back as it found it.
#
# Arguments are passed to go test (e.g. run.sh -run Test6SaveRestore).
#
# Holds /run/fdbhook-test.lock for the whole run. A caller that already holds
# it (packaging/test.sh) sets FDBHOOK_TEST_LOCK_HELD=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH="/usr/local/go/bin:$PATH"
T0=$(date +%s%N)

log() { echo "e2e: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (libvirtd, bridges, /etc)"

HOOKS_MODE=${FDBHOOK_E2E_HOOKS:-symlink}
case $HOOKS_MODE in symlink | installed) ;; *) die "FDBHOOK_E2E_HOOKS must be 'installed' or unset" ;; esac
QEMU_HOOK=/etc/libvirt/hooks/qemu.d/fdbhook
NET_HOOK=/etc/libvirt/hooks/network.d/fdbhook
LXC_HOOK=/etc/libvirt/hooks/lxc.d/fdbhook
CONFIG=/etc/fdbhook/fdbhook.toml
BACKUP=/etc/fdbhook/.fdbhook.toml.fdbt-e2e-backup
NOCONFIG_MARK=/etc/fdbhook/.fdbt-e2e-no-config

# The admin command the suite runs: the package's, or the build tree's.
ADMIN=/usr/sbin/fdbhook
if [ "$HOOKS_MODE" = symlink ]; then
	ADMIN=$ROOT/bin/fdbhook
	for b in qemu-hook network-hook lxc-hook fdbhook; do
		[ -x "bin/$b" ] || die "bin/$b missing: run 'make e2e' (it builds first)"
	done
fi

# Several suites may install packages at the same time; dpkg's lock makes
# apt-get fail at once rather than wait, so retry for a while.
deps() {
	local i
	for i in 1 2 3 4 5 6; do
		test/deps.sh "$@" && return 0
		log "package installation failed (dpkg busy?), retry $i in 20 s"
		sleep 20
	done
	die "could not install: $*"
}
deps libvirt-daemon-system libvirt-daemon-driver-lxc qemu-system-x86 iproute2 dnsmasq-base iptables util-linux busybox-static cpio \
	prometheus prometheus-node-exporter

# A kernel for the guests that need an OS (the watcher's unplug scenario).
# shellcheck source=test/e2e/guestkernel.sh
. test/e2e/guestkernel.sh
GUEST_KERNEL=$(guest_kernel) || die "no guest kernel: apt-get download linux-image-cloud-amd64 failed"

# Take the lock on fd 9. Daemons are started through spawn_daemon and go
# test with 9>&-, so that nothing keeps the lock after this script ends.
if [ "${FDBHOOK_TEST_LOCK_HELD:-}" != 1 ]; then
	exec 9>/run/fdbhook-test.lock
	log "waiting for /run/fdbhook-test.lock"
	flock -w 1200 9 || die "/run/fdbhook-test.lock still held after 20 min"
fi
T_LOCKED=$(date +%s%N)

# State to put back in cleanup.
started_virtlogd=
started_libvirtd=
kvm_mode=
installed_hooks=()
replaced_hooks=()
created_dirs=()
config_written=

# shellcheck source=test/e2e/libvirtd.sh
. test/e2e/libvirtd.sh

# Everything named fdbt*: guests, networks, links, the outside namespace.
sweep() {
	local g n l
	for g in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep '^fdbt' || true); do
		virsh -q destroy "$g" >/dev/null 2>&1 || true
		virsh -q undefine --managed-save "$g" >/dev/null 2>&1 || true
	done
	for g in $(virsh -q -c lxc:///system list --all --name 2>/dev/null | grep '^fdbt' || true); do
		virsh -q -c lxc:///system destroy "$g" >/dev/null 2>&1 || true
		virsh -q -c lxc:///system undefine "$g" >/dev/null 2>&1 || true
	done
	for n in $(virsh -q -c qemu:///system net-list --all --name 2>/dev/null | grep '^fdbt' || true); do
		virsh -q net-destroy "$n" >/dev/null 2>&1 || true
		virsh -q net-undefine "$n" >/dev/null 2>&1 || true
	done
	for l in $(ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep '^fdbt' || true); do
		ip link del "$l" 2>/dev/null || true
	done
	# Only the suite's own namespace: the netlink suites run theirs under
	# other fdbt- names and must not lose them to this sweep.
	if ip netns list | awk '{print $1}' | grep -qx 'fdbt-out'; then
		ip netns del fdbt-out || true
	fi
}

# A run killed before its cleanup left the admin's configuration aside.
restore_config() {
	if [ -e "$BACKUP" ]; then
		mv -f "$BACKUP" "$CONFIG"
	elif [ -e "$NOCONFIG_MARK" ]; then
		rm -f "$CONFIG"
	fi
	rm -f "$NOCONFIG_MARK"
}

# shellcheck disable=SC2317 # invoked through the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	log "cleaning up"
	sweep
	if [ -n "$config_written" ]; then
		restore_config
	fi
	local h
	for h in "${installed_hooks[@]}"; do rm -f "$h"; done
	for h in "${replaced_hooks[@]}"; do ln -sfn "${h#*:}" "${h%%:*}"; done
	local d
	for ((i = ${#created_dirs[@]} - 1; i >= 0; i--)); do
		d=${created_dirs[i]}
		rmdir "$d" 2>/dev/null
	done
	if [ -n "$started_libvirtd" ]; then
		if [ "$started_libvirtd" = systemd ]; then systemctl stop libvirtd.service; else stop_pidfile /run/libvirtd.pid; fi
	fi
	[ -n "$started_virtlogd" ] && stop_pidfile /run/virtlogd.pid
	if [ -n "$kvm_mode" ]; then
		chown "${kvm_mode#* }" /dev/kvm && chmod "${kvm_mode%% *}" /dev/kvm
	fi
	local now ms wait
	now=$(date +%s%N)
	ms=$(((now - T0) / 1000000))
	wait=$(((${T_LOCKED:-$now} - T0) / 1000000))
	log "$(printf 'wall time %d.%01d s, of which %d.%01d s waiting for packages and the lock (exit %d)' \
		$((ms / 1000)) $((ms % 1000 / 100)) $((wait / 1000)) $((wait % 1000 / 100)) "$rc")"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir_tracked() {
	local d=$1
	[ -d "$d" ] && return 0
	mkdir_tracked "$(dirname "$d")"
	mkdir "$d"
	created_dirs+=("$d")
}

# Without udev, /dev/kvm is root-only. libvirt then finds KVM unusable for
# its QEMU user, throws its capability cache away on every lookup and probes
# QEMU again some twenty times per guest start (about 40 s instead of 0.5 s).
# Debian's udev rules make it root:kvm 0660; do the same while the suite
# runs. The guests are type='qemu' (TCG) either way.
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
	cur=$(stat -c '%a %U:%G' /dev/kvm)
	if [ "$cur" != "660 root:kvm" ]; then
		kvm_mode=$cur
		chown root:kvm /dev/kvm && chmod 0660 /dev/kvm
	fi
fi

start_daemons
sweep

# Hooks.
if [ "$HOOKS_MODE" = installed ]; then
	for h in "$QEMU_HOOK" "$NET_HOOK" "$LXC_HOOK"; do
		[ -x "$h" ] || die "FDBHOOK_E2E_HOOKS=installed but $h is missing or not executable"
	done
	[ -x "$ADMIN" ] || die "FDBHOOK_E2E_HOOKS=installed but $ADMIN is missing or not executable"
	log "using the installed hooks: $(readlink -f "$QEMU_HOOK"), $(readlink -f "$NET_HOOK"), $(readlink -f "$LXC_HOOK")"
else
	for pair in "$QEMU_HOOK:$ROOT/bin/qemu-hook" "$NET_HOOK:$ROOT/bin/network-hook" "$LXC_HOOK:$ROOT/bin/lxc-hook"; do
		h=${pair%%:*}
		target=${pair#*:}
		if [ -e "$h" ] || [ -L "$h" ]; then
			# A link into some checkout's bin/ (the demo's, another
			# worktree's, a killed run's) is replaced for the run and put
			# back afterwards; anything else belongs to the package.
			prev=$(readlink "$h" || true)
			case $prev in
			*/bin/qemu-hook | */bin/network-hook | */bin/lxc-hook) ;;
			*) die "$h exists and is not a link into a build tree (installed package?); use FDBHOOK_E2E_HOOKS=installed" ;;
			esac
			rm -f "$h"
			replaced_hooks+=("$h:$prev")
		fi
		mkdir_tracked "$(dirname "$h")"
		ln -s "$target" "$h"
		installed_hooks+=("$h")
	done
	log "hooks linked to $ROOT/bin"
fi

# Test configuration (the admin's is kept aside and restored).
mkdir_tracked /etc/fdbhook
restore_config
if [ -e "$CONFIG" ]; then
	cp -a "$CONFIG" "$BACKUP"
else
	: >"$NOCONFIG_MARK"
fi
config_written=1
cat >"$CONFIG" <<'EOF'
# Written by test/e2e/run.sh for the end-to-end suite; the previous file is
# restored when the suite ends.
bridges  = ["fdbtbr0"]
networks = ["fdbtbrnet", "fdbtnat"]
on_error = "fail"
log_level = "info"
EOF

# libvirtd only notices the first hook in qemu.d/network.d/lxc.d when it starts.
restart_libvirtd
log "libvirtd restarted with the hooks; running the scenarios"

T_GO=$(date +%s)
set +e
FDBHOOK_E2E=1 FDBHOOK_E2E_GUEST_KERNEL=$GUEST_KERNEL FDBHOOK_E2E_QEMU_HOOK=$QEMU_HOOK FDBHOOK_E2E_LXC_HOOK=$LXC_HOOK FDBHOOK_E2E_ADMIN=$ADMIN CGO_ENABLED=0 \
	go test -tags e2e -count=1 -v -timeout 10m ./test/e2e/ "$@" 9>&-
rc=$?
set -e
log "go test: $(($(date +%s) - T_GO)) s, exit $rc"
exit $rc
