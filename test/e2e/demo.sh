#!/usr/bin/env bash
# fdbhook demo (make demo; make demo-clean runs "demo.sh clean").
#
# On a Debian host: installs libvirt and QEMU when missing, builds the hooks,
# creates bridge fdbdemo0 with an uplink veth, defines a diskless guest
# "fdbdemo" with two NICs on it, and shows the bridge's ports and static FDB
# entries with the guest started once opted out of fdbhook (as without it)
# and once managed; then a NIC hotplugged while the watcher runs. The guest
# is left running.
#
# With the fdbhook package installed, the demo uses its hooks and its admin
# command (and its watcher, when fdbhook.service runs) and restarts nothing;
# otherwise it links this tree's hooks into /etc/libvirt/hooks and restarts
# libvirtd once, so that libvirtd notices them. It says what it will do
# before it does it.
#
# "clean" removes the guest, the bridge, the hooks the demo linked and puts
# the admin's /etc/fdbhook/fdbhook.toml back. Running the demo again starts
# from scratch, so it can be run any number of times.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH="/usr/local/go/bin:$PATH"

GUEST=fdbdemo
BRIDGE=fdbdemo0
UPLINK=fdbdemoup0
OUT_NS=fdbdemo-out
OUT_IF=fdbdemoout0
TAP_A=fdbdemo-a
TAP_B=fdbdemo-b
MAC_A=52:54:00:de:00:01
MAC_B=52:54:00:de:00:02
MAC_C=52:54:00:de:00:03 # hotplugged while fdbhook watch runs
QEMU_HOOK=/etc/libvirt/hooks/qemu.d/fdbhook
NET_HOOK=/etc/libvirt/hooks/network.d/fdbhook
CONFIG=/etc/fdbhook/fdbhook.toml
STATE=/var/lib/fdbhook-demo # what clean must put back

say() { printf '%s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
mode=${1:-up}
case $mode in up | clean) ;; *) die "usage: $0 [clean]" ;; esac

virsh() { command virsh -q -c qemu:///system "$@"; }
# shellcheck source=test/e2e/libvirtd.sh
. test/e2e/libvirtd.sh

is_demo_link() {
	case $(readlink "$1" 2>/dev/null || true) in
	"$ROOT"/bin/qemu-hook | "$ROOT"/bin/network-hook) return 0 ;;
	esac
	return 1
}

remove_hooks() {
	local h
	for h in "$QEMU_HOOK" "$NET_HOOK"; do
		if is_demo_link "$h"; then rm -f "$h"; fi
	done
}

install_hooks() {
	local h target
	for h in "$QEMU_HOOK" "$NET_HOOK"; do
		target=$ROOT/bin/qemu-hook
		[ "$h" = "$NET_HOOK" ] && target=$ROOT/bin/network-hook
		mkdir_tracked "$(dirname "$h")"
		ln -sfn "$target" "$h"
	done
}

mkdir_tracked() {
	[ -d "$1" ] && return 0
	mkdir_tracked "$(dirname "$1")"
	mkdir "$1"
	echo "$1" >>"$STATE/created-dirs"
}

# Remove the demo's objects; "full" also restores config, dirs and /dev/kvm.
teardown() {
	virsh destroy "$GUEST" >/dev/null 2>&1 || true
	virsh undefine "$GUEST" >/dev/null 2>&1 || true
	ip link del "$BRIDGE" 2>/dev/null || true
	ip link del "$UPLINK" 2>/dev/null || true
	ip netns del "$OUT_NS" 2>/dev/null || true
	remove_hooks
	if [ -e "$STATE/config" ]; then
		mv -f "$STATE/config" "$CONFIG"
	elif [ -e "$STATE/no-config" ]; then
		rm -f "$CONFIG"
	fi
	rm -f "$STATE/no-config"
	[ "${1:-}" = full ] || return 0
	if [ -s "$STATE/kvm-mode" ]; then
		read -r m o <"$STATE/kvm-mode"
		chown "$o" /dev/kvm && chmod "$m" /dev/kvm
	fi
	if [ -s "$STATE/created-dirs" ]; then
		tac "$STATE/created-dirs" | while read -r d; do rmdir "$d" 2>/dev/null || true; done
	fi
	rm -rf "$STATE"
}

# Port flags of the bridge's ports, one line each: PORT LEARNING FLOOD.
port_flags() {
	bridge -d link show | awk -v br="$BRIDGE" '
		/^[0-9]+:/ { port = $2; sub(/:$/, "", port); sub(/@.*/, "", port); on = 0
			for (i = 1; i < NF; i++) if ($i == "master" && $(i+1) == br) on = 1 }
		on { for (i = 1; i < NF; i++) { if ($i == "learning") l[port] = $(i+1); if ($i == "flood") f[port] = $(i+1) } }
		END { for (p in l) print p, l[p], f[p] }' | sort
}

# Static entries the bridge holds: MAC DEV.
static_entries() {
	bridge fdb show br "$BRIDGE" | awk '/ static/ && / master / { for (i = 1; i < NF; i++) if ($i == "dev") print $1, $(i+1) }'
}

# Shows the ports and static entries now, and records them for the table.
snapshot() {
	local phase=$1
	say ""
	say "== $phase =="
	say "\$ bridge -d link show   (ports of $BRIDGE: learning, flood)"
	port_flags | awk '{ printf "  %-12s learning %-3s  flood %s\n", $1, $2, $3 }'
	say "\$ bridge fdb show br $BRIDGE | grep static"
	bridge fdb show br "$BRIDGE" | grep ' static' | sed 's/^/  /' || say "  (no static entries)"
	port_flags >"$STATE/$phase.ports"
	static_entries >"$STATE/$phase.fdb"
}

table() {
	say ""
	say "== what the hook changed on $BRIDGE =="
	printf '  %-12s | %-15s | %-15s | %s\n' "port" "learning" "flood" "static FDB entry"
	printf '  %-12s | %-6s -> %-5s | %-6s -> %-5s | %s\n' "" "before" "after" "before" "after" "before -> after"
	printf '  %s\n' "-------------+-----------------+-----------------+----------------------------------------"
	local p lb fb la fa eb ea
	for p in "$UPLINK" "$TAP_A" "$TAP_B"; do
		read -r _ lb fb < <(grep "^$p " "$STATE/before.ports" || echo "$p - -")
		read -r _ la fa < <(grep "^$p " "$STATE/after.ports" || echo "$p - -")
		eb=$(awk -v p="$p" '$2 == p { print $1 }' "$STATE/before.fdb")
		ea=$(awk -v p="$p" '$2 == p { print $1 }' "$STATE/after.fdb")
		printf '  %-12s | %-6s -> %-5s | %-6s -> %-5s | %s -> %s\n' "$p" "$lb" "$la" "$fb" "$fa" "${eb:--}" "${ea:--}"
	done
}

# The hooks the demo uses: this tree's, linked by the demo ("tree"), or the
# installed package's ("package"); anything else is someone's own hook.
hooks_mode() {
	local h
	for h in "$QEMU_HOOK" "$NET_HOOK"; do
		if { [ -e "$h" ] || [ -L "$h" ]; } && ! is_demo_link "$h"; then
			if "$h" --version 2>/dev/null | grep -q '(fdbhook)'; then
				echo package
				return
			fi
			die "$h is installed and is not fdbhook's ($(readlink -f "$h")); the demo will not replace it"
		fi
	done
	echo tree
}

# Adds the demo's bridge to the admin's configuration (kept aside for
# clean): to a one-line "bridges = [...]", or as a first line.
add_demo_bridge() {
	if grep -Eq '^bridges *= *\[ *\]' "$CONFIG"; then
		sed -i -E "s/^bridges *= *\[ *\]/bridges = [\"$BRIDGE\"]/" "$CONFIG"
	elif grep -Eq '^bridges *= *\[.*\]' "$CONFIG"; then
		sed -i -E "s/^bridges *= *\[/bridges = [\"$BRIDGE\", /" "$CONFIG"
	elif ! grep -Eq '^bridges *=' "$CONFIG"; then
		sed -i "1i bridges = [\"$BRIDGE\"]" "$CONFIG"
	else
		die "$CONFIG lists its bridges over several lines; add \"$BRIDGE\" to them by hand, or move the file aside, and run the demo again"
	fi
}

# --- main ----------------------------------------------------------------

if [ "$mode" = up ]; then
	hooks=$(hooks_mode)
	say "== make demo =="
	say "This demo changes this host, as root, until 'make demo-clean':"
	say "  - installs libvirt and QEMU with apt-get when they are missing, and builds bin/;"
	say "  - creates bridge $BRIDGE, its uplink veth $UPLINK and network namespace $OUT_NS;"
	if [ "$hooks" = package ]; then
		say "  - uses the installed fdbhook package's hooks and admin command; adds $BRIDGE to $CONFIG"
		say "    (the file is kept aside and put back by make demo-clean); restarts nothing;"
	else
		say "  - writes $CONFIG managing $BRIDGE (yours, if any, is kept aside and put back by make demo-clean);"
		say "  - links $QEMU_HOOK and $NET_HOOK to this tree's bin/ and RESTARTS libvirtd once,"
		say "    so that it notices them (running guests keep running: libvirtd reconnects to them);"
	fi
	say "  - defines and starts guest $GUEST (diskless, 64 MiB), and runs the watcher for a hotplug."
	say ""
	test/deps.sh make libvirt-daemon-system qemu-system-x86 iproute2 dnsmasq-base iptables
	command -v go >/dev/null || die "Go is needed to build the hooks (go.mod asks for $(awk '/^go /{print $2}' go.mod)); install it from https://go.dev/dl/ into /usr/local/go"
	# "make demo" has built already; run directly, build here.
	[ -n "${MAKELEVEL:-}" ] || make --no-print-directory build
fi

# Hold the shared lock while changing host state; daemons started here must
# not inherit it (fd 9 closed for them).
exec 9>/run/fdbhook-test.lock
flock -w 1200 9 || die "/run/fdbhook-test.lock held by another suite for 20 min"

if [ "$mode" = clean ]; then
	command -v virsh >/dev/null && start_daemons
	teardown full
	say "demo removed; $CONFIG is as it was before the demo"
	exit 0
fi

hooks=$(hooks_mode)
ADMIN=$ROOT/bin/fdbhook
if [ "$hooks" = package ] && [ -x /usr/sbin/fdbhook ]; then
	ADMIN=/usr/sbin/fdbhook
fi

mkdir -p "$STATE"
# Without udev (containers), /dev/kvm is root-only and libvirt then re-probes
# QEMU on every guest start (~40 s). Debian's udev makes it root:kvm 0660.
if [ -c /dev/kvm ] && getent group kvm >/dev/null && [ "$(stat -c '%a %U:%G' /dev/kvm)" != "660 root:kvm" ]; then
	[ -s "$STATE/kvm-mode" ] || stat -c '%a %U:%G' /dev/kvm >"$STATE/kvm-mode"
	chown root:kvm /dev/kvm && chmod 0660 /dev/kvm
fi
start_daemons
teardown # a previous demo, if any

say "== setup =="
ip netns add "$OUT_NS"
ip link add "$BRIDGE" type bridge
ip link add "$UPLINK" type veth peer name "$OUT_IF" netns "$OUT_NS"
ip link set "$UPLINK" master "$BRIDGE" up
ip -n "$OUT_NS" link set "$OUT_IF" up
ip link set "$BRIDGE" up
say "bridge $BRIDGE, uplink $UPLINK (its peer $OUT_IF is the 'outside host' in netns $OUT_NS)"

mkdir_tracked /etc/fdbhook
if [ -e "$CONFIG" ]; then cp -a "$CONFIG" "$STATE/config"; else : >"$STATE/no-config"; fi
if [ "$hooks" = package ] && [ -e "$CONFIG" ]; then
	add_demo_bridge
	say "$CONFIG: $BRIDGE added to bridges (the file as it was is kept aside)"
else
	cat >"$CONFIG" <<EOF
# fdbhook demo configuration (test/e2e/demo.sh); "make demo-clean" puts the
# previous file back.
bridges = ["$BRIDGE"]
EOF
	say "$CONFIG: bridges = [\"$BRIDGE\"] (previous file kept aside)"
fi

xml=$(mktemp)
trap 'rm -f "$xml"' EXIT
cat >"$xml" <<EOF
<domain type='qemu'>
  <name>$GUEST</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' index='1' model='pcie-root-port'/>
    <controller type='pci' index='2' model='pcie-root-port'/>
    <controller type='pci' index='3' model='pcie-root-port'/>
    <controller type='pci' index='4' model='pcie-root-port'/>
    <controller type='pci' index='5' model='pcie-root-port'/>
    <controller type='pci' index='6' model='pcie-root-port'/>
    <controller type='pci' index='7' model='pcie-root-port'/>
    <controller type='pci' index='8' model='pcie-root-port'/>
    <interface type='bridge'>
      <mac address='$MAC_A'/><source bridge='$BRIDGE'/><target dev='$TAP_A'/>
      <model type='virtio'/><rom enabled='no'/>
    </interface>
    <interface type='bridge'>
      <mac address='$MAC_B'/><source bridge='$BRIDGE'/><target dev='$TAP_B'/>
      <model type='virtio'/><rom enabled='no'/>
    </interface>
  </devices>
</domain>
EOF
virsh define "$xml" >/dev/null
say "guest $GUEST defined: diskless, two NICs on $BRIDGE ($TAP_A $MAC_A, $TAP_B $MAC_B)"

if [ "$hooks" = tree ]; then
	install_hooks
	say "hooks linked: $QEMU_HOOK -> $ROOT/bin/qemu-hook, $NET_HOOK -> $ROOT/bin/network-hook"
	say "restarting libvirtd so that it notices them ..."
	restart_libvirtd
else
	say "hooks: the installed package's ($(readlink -f "$QEMU_HOOK"))"
fi

# Before: the guest opted out in its metadata, as on a host without fdbhook.
virsh metadata "$GUEST" urn:fdbhook:1 --key fdbhook --config --set '<fdb manage="no"/>' >/dev/null
virsh start "$GUEST" >/dev/null
snapshot before
virsh destroy "$GUEST" >/dev/null

# After: the opt-out removed, the guest started again.
virsh metadata "$GUEST" urn:fdbhook:1 --remove --config >/dev/null
say ""
say "opt-out removed; guest started again"
virsh start "$GUEST" >/dev/null
snapshot after
table
say ""
say "\$ fdbhook status $BRIDGE"
"$ADMIN" status "$BRIDGE" | sed 's/^/  /' || true

# Between start and stop: a NIC hotplugged while fdbhook watch runs.
say ""
say "== fdbhook watch: a NIC hotplugged into the running guest =="
watch_log=$STATE/watch.log
watch_pid=
if "$ADMIN" status "$BRIDGE" 2>/dev/null | grep -q '^watcher: running'; then
	say "the watcher already runs (fdbhook.service): it manages the hotplugged NIC"
	: >"$watch_log"
else
	FDBHOOK_LOG_LEVEL=info "$ADMIN" watch </dev/null >"$watch_log" 2>&1 9>&- &
	watch_pid=$!
	# Whatever happens next, the demo's watcher does not outlive the demo.
	trap 'kill "$watch_pid" 2>/dev/null || true; rm -f "$xml"' EXIT
	for _ in $(seq 100); do grep -q 'connected to libvirt' "$watch_log" && break; sleep 0.1; done
	say "\$ fdbhook watch &   (pid $watch_pid)"
fi
say "\$ virsh attach-interface $GUEST --type bridge --source $BRIDGE --mac $MAC_C --live"
virsh attach-interface "$GUEST" --type bridge --source "$BRIDGE" --mac "$MAC_C" --model virtio --live >/dev/null
tap_c=$(virsh domiflist "$GUEST" | awk -v m="$MAC_C" '$5 == m { print $1 }')
for _ in $(seq 100); do
	bridge fdb show br "$BRIDGE" | grep -q "$MAC_C dev $tap_c master $BRIDGE static" && break
	sleep 0.02
done
say "\$ bridge -d link show dev $tap_c; bridge fdb show br $BRIDGE | grep $MAC_C"
port_flags | awk -v p="$tap_c" '$1 == p { printf "  %-12s learning %-3s  flood %s\n", $1, $2, $3 }'
bridge fdb show br "$BRIDGE" | grep "$MAC_C" | sed 's/^/  /' || say "  (no entry for $MAC_C)"
if [ -n "$watch_pid" ]; then
	say "watcher log:"
	sed 's/^/  /' "$watch_log"
	kill "$watch_pid"
	wait "$watch_pid" || true
fi
say ""
say "guest $GUEST is left running, managed; 'make demo-clean' removes the demo"
