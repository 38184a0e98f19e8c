#!/bin/bash
# The distribution-host suite's checks, run inside the booted Debian host
# by its fdbhook-distro.service (test/distro/run.sh builds the host and
# reads the results). Everything goes to the second serial port: a line
# "  ok    CHECK" or "  FAIL  CHECK" per check (test/checks.sh), the details
# of failures, "TIME booted|ran SECONDS", and last the line
# "FDBHOOK-DISTRO-DONE PASSED FAILED". Then the host powers off.
#
# The host is a stock Debian: systemd, AppArmor with libvirt's libvirtd
# profile enforcing, libvirtd running (socket-activated) with a guest
# already defined. In order:
#   1. this tree's .deb installed over the running libvirtd: reload through
#      systemd, guests (the shipped configuration, then a managed bridge),
#      a network and a container start, the watcher under its systemd
#      hardening heals drift and hotplug, doctor, status and the metrics
#      are clean, no AppArmor denial; then remove and purge;
#   2. the older layout, hooks as links into /usr/libexec/fdbhook: the same
#      start check fails (exit 126, an AppArmor denial) and doctor, status
#      and the metrics say why;
#   3. the upgrade from it: regular files, guests start managed; purge.
set -uo pipefail
exec >/dev/ttyS1 2>&1
work=/mnt/work
# shellcheck source=test/checks.sh
. "$work/checks.sh"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
echo "TIME booted $(cut -d' ' -f1 /proc/uptime)"
t0=$(date +%s)

finish() {
	echo "TIME ran $(($(date +%s) - t0))"
	echo "FDBHOOK-DISTRO-DONE $passed $failed"
	sync
	sleep 1
	systemctl poweroff -ff
}
trap finish EXIT

step() { printf '\n== %s (at %d s)\n' "$*" "$(($(date +%s) - t0))"; }
vq() { virsh -q -c qemu:///system "$@"; }
vl() { virsh -q -c lxc:///system "$@"; }
# wait_for SECONDS CMD...: true once CMD succeeds, false after SECONDS.
wait_for() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.5
	done
}

deb_new=$(echo "$work"/fdbhook_*.deb)
deb_old=$(echo "$work"/old/fdbhook_*.deb)
config=/etc/fdbhook/fdbhook.toml
qd=/etc/libvirt/hooks/qemu.d/fdbhook
nd=/etc/libvirt/hooks/network.d/fdbhook
ld=/etc/libvirt/hooks/lxc.d/fdbhook
mac1a=52:54:00:fd:b0:01 mac1b=52:54:00:fd:b0:02 mac1c=52:54:00:fd:b0:03 macc1=52:54:00:fd:c1:01

# --- the host as its admin has it before installing fdbhook -----------------------
step "the host"
systemctl is-system-running --wait >/dev/null
echo "$(uname -r); $(virsh --version) ($(dpkg-query -W -f '${Version}' libvirt-daemon)); apparmor $(dpkg-query -W -f '${Version}' apparmor)"
ip link add br0 type bridge && ip link set br0 up
ip link add br1 type bridge && ip link set br1 up

# q35 with spare root ports and ACPI: NICs can be hotplugged.
root_ports() {
	echo "    <controller type='pci' index='0' model='pcie-root'/>"
	for i in 1 2 3 4 5 6; do echo "    <controller type='pci' index='$i' model='pcie-root-port'/>"; done
}
cat >/tmp/g1.xml <<EOF
<domain type='qemu'>
  <name>g1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <features><acpi/></features>
  <devices>
$(root_ports)
    <interface type='bridge'>
      <mac address='$mac1a'/><source bridge='br0'/><target dev='fdbt1a'/><model type='virtio'/><rom enabled='no'/>
    </interface>
    <interface type='bridge'>
      <mac address='$mac1b'/><source bridge='br1'/><target dev='fdbt1b'/><model type='virtio'/><rom enabled='no'/>
    </interface>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
cat >/tmp/c1.xml <<EOF
<domain type='lxc'>
  <name>c1</name>
  <memory unit='MiB'>64</memory>
  <os><type>exe</type><init>/bin/sleep</init><initarg>3600</initarg></os>
  <devices>
    <console type='pty'/>
    <interface type='bridge'><mac address='$macc1'/><source bridge='br0'/><target dev='fdbtc1'/></interface>
  </devices>
</domain>
EOF
cat >/tmp/fdbnet.xml <<'EOF'
<network><name>fdbnet</name><bridge name='fdbtnet0' stp='off'/></network>
EOF
check "libvirtd is running" systemctl start libvirtd.service
libvirtd_pid=$(systemctl show -p MainPID --value libvirtd.service)
expect_eq "libvirtd (pid $libvirtd_pid) runs under AppArmor's libvirtd profile, enforcing" \
	"$(cat "/proc/$libvirtd_pid/attr/current" 2>&1)" "libvirtd (enforce)"
expect_line "the profile lets libvirtd execute what is under /etc/libvirt/hooks/ only (no other hook path)" \
	"$(grep -E '^\s*/etc/libvirt/hooks' /etc/apparmor.d/usr.sbin.libvirtd | sed 's/^ *//')" "/etc/libvirt/hooks/** rmix,"
check "guest g1 is defined" vq define /tmp/g1.xml
check "container c1 is defined" vl define /tmp/c1.xml
check "network fdbnet is defined" vq net-define /tmp/fdbnet.xml
denied_cursor=$(journalctl -k -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')

# --- port checks -------------------------------------------------------------------
# managed DEV MAC BRIDGE: learning and flood off, MAC static on DEV.
managed() {
	local link fdb
	link=$(bridge -d link show dev "$1" 2>&1) && fdb=$(bridge fdb show dev "$1" 2>&1) || return 1
	grep -q 'learning off' <<<"$link" && grep -q 'flood off' <<<"$link" &&
		grep -qE "^$2 (vlan [0-9]+ )?master $3 static" <<<"$fdb"
}
# untouched DEV MAC: learning and flood on, no static entry for MAC.
untouched() {
	local link fdb
	link=$(bridge -d link show dev "$1" 2>&1) && fdb=$(bridge fdb show dev "$1" 2>&1) || return 1
	grep -q 'learning on' <<<"$link" && grep -q 'flood on' <<<"$link" && ! grep -q "^$2 .*static" <<<"$fdb"
}
show_port() { printf '%s\n%s\n' "$(bridge -d link show dev "$1" 2>&1)" "$(bridge fdb show dev "$1" 2>&1)"; }
# start_managed: the suite's start check: g1 starts, its br0 port is
# managed, its br1 port (br1 is not listed) untouched.
start_managed() {
	local out
	out=$(vq start g1 2>&1) || {
		echo "$out"
		return 1
	}
	if ! managed fdbt1a "$mac1a" br0 || ! untouched fdbt1b "$mac1b"; then
		show_port fdbt1a
		show_port fdbt1b
		return 1
	fi
}
both_untouched() { untouched fdbt1a "$mac1a" && untouched fdbt1b "$mac1b"; }
# removed: no hook, no unit, no watcher.
removed() {
	! ls "$qd" "$nd" "$ld" /lib/systemd/system/fdbhook.service 2>/dev/null &&
		! systemctl cat fdbhook.service >/dev/null 2>&1 && ! pgrep -x fdbhook >/dev/null
}
# denied_since CURSOR: the kernel's AppArmor denials since CURSOR.
denied_since() { journalctl -k -o cat --no-pager --after-cursor="$1" | grep 'apparmor="DENIED"' || true; }
write_config() {
	cat >"$config" <<'EOF'
bridges = ["br0"]
networks = ["fdbnet"]

[bridge.fdbtnet0]
vlan_filtering = "enable"

[watch]
resync = "60s"
metrics = "127.0.0.1:9568"
EOF
}
# scrape: the watcher's /metrics, over bash's /dev/tcp.
scrape() {
	exec 5<>/dev/tcp/127.0.0.1/9568 || return 1
	printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&5
	cat <&5
	exec 5<&-
}
watcher_pid() { systemctl show -p MainPID --value fdbhook.service; }
nothing_left() {
	local left
	left=$(find /etc /usr /lib /run /var/lib -name '*fdbhook*' ! -name '*fdbhook-distro*' 2>/dev/null)
	[ -z "$left" ] || {
		echo "left behind: $left"
		return 1
	}
	! pgrep -x fdbhook >/dev/null
}

# --- 1. install over a running libvirtd ------------------------------------------------
step "1. dpkg -i $(basename "$deb_new") with libvirtd running"
out=$(dpkg -i "$deb_new" 2>&1) && rc=0 || rc=$?
echo "$out"
expect_eq "dpkg -i: exit 0" "$rc" 0
expect_has "the package reloads libvirtd through systemd" "$out" "reloaded libvirt: libvirtd.service (systemctl reload)"
expect_eq "libvirtd was reloaded, not restarted" "$(systemctl show -p MainPID --value libvirtd.service)" "$libvirtd_pid"
check "the hooks are regular files, not links" test -f "$qd" -a ! -L "$qd" -a -f "$nd" -a ! -L "$nd" -a -f "$ld" -a ! -L "$ld"
expect_eq "/usr/libexec/fdbhook/qemu-hook runs the same file (for runs by hand)" "$(readlink -f /usr/libexec/fdbhook/qemu-hook)" "$qd"
check "fdbhook.service is enabled and active" systemctl is-active --quiet fdbhook.service

step "the shipped configuration manages nothing: guests start untouched"
if out=$(vq start g1 2>&1); then
	pass "g1 starts with the shipped configuration"
	check "its ports are left as libvirt made them" both_untouched
else
	fail "g1 starts with the shipped configuration" "$out"
fi
vq destroy g1 >/dev/null 2>&1

step "a managed bridge: guests start managed"
write_config
systemctl restart fdbhook.service # [watch] metrics is read at start
check "g1 starts: br0 port managed (learning, flood off, static entry), br1 port untouched" start_managed
out=$(fdbhook status br0 2>&1) && rc=0 || rc=$?
echo "$out"
expect_match "fdbhook status br0: fdbt1a is g1's managed port" "$out" "^  fdbt1a +guest +tap +off +off .*g1"
expect_eq "fdbhook status br0: exit 0" "$rc" 0
expect_match "the hook logged to syslog from inside libvirtd's profile" "$(journalctl -t fdbhook -o cat --no-pager)" "fdbt1a"

step "a network with the hook, a container"
if out=$(vq net-start fdbnet 2>&1); then pass "network fdbnet starts"; else fail "network fdbnet starts" "$out"; fi
expect_match "its hook turned vlan_filtering on (network.d/fdbhook ran)" "$(ip -d link show fdbtnet0)" "vlan_filtering 1"
if out=$(vl start c1 2>&1); then
	pass "container c1 starts"
	check "its veth is managed (lxc.d/fdbhook read the container's namespaces)" wait_for 5 managed fdbtc1 "$macc1" br0
else
	fail "container c1 starts" "$out"
fi

step "the watcher, under its systemd hardening"
wpid=$(watcher_pid)
expect_eq "fdbhook.service runs with ProtectSystem=strict, NoNewPrivileges, CapabilityBoundingSet=cap_net_admin" \
	"$(for p in ProtectSystem NoNewPrivileges CapabilityBoundingSet; do systemctl show -p "$p" --value fdbhook.service; done | tr '\n' ' ')" \
	"strict yes cap_net_admin "
expect_eq "the watcher's process has only CAP_NET_ADMIN in its bounding set" "$(awk '/^CapBnd/ {print $2}' "/proc/$wpid/status")" 0000000000001000
bridge link set dev fdbt1a learning on flood on
check "drift: learning and flood turned on by hand are turned off again" wait_for 30 managed fdbt1a "$mac1a" br0
if out=$(vq attach-interface g1 bridge br0 --target fdbt1c --mac "$mac1c" --model virtio --live 2>&1); then
	pass "a NIC is hotplugged into g1 (virsh attach-interface --live)"
	check "hotplug: the new port is managed" wait_for 30 managed fdbt1c "$mac1c" br0
else
	fail "a NIC is hotplugged into g1 (virsh attach-interface --live)" "$out"
fi

step "doctor, status and the metrics"
out=$(fdbhook doctor 2>&1) && rc=0 || rc=$?
echo "$out"
expect_eq "fdbhook doctor: exit 0, no failing check" "$rc $(grep -c '^fail' <<<"$out")" "0 0"
expect_match "doctor: AppArmor lets libvirtd execute the qemu hook" "$out" \
	"^ok +qemu hook: AppArmor profile libvirtd \(enforce\) of libvirtd \(pid $libvirtd_pid\) lets it execute $qd\$"
expect_eq "doctor checked all three hooks against the profile" "$(grep -c 'AppArmor profile libvirtd (enforce) of libvirtd (pid [0-9]*) lets it execute' <<<"$out")" 3
out=$(fdbhook status 2>&1) && rc=0 || rc=$?
expect_eq "fdbhook status: exit 0" "$rc" 0
[ "$rc" = 0 ] || echo "$out"
expect_line "fdbhook metrics: no hook problem" "$(fdbhook metrics 2>&1)" 'fdbhook_problems{kind="hook"} 0'
expect_line "the watcher's /metrics: no hook problem" "$(scrape 2>&1 | tr -d '\r')" 'fdbhook_problems{kind="hook"} 0'
denied=$(denied_since "$denied_cursor")
[ -z "$denied" ] || echo "$denied"
expect_lacks "no AppArmor denial naming fdbhook in the kernel log" "$denied" fdbhook

step "remove and purge"
vq destroy g1 >/dev/null 2>&1
vl destroy c1 >/dev/null 2>&1
vq net-destroy fdbnet >/dev/null 2>&1
out=$(dpkg -r fdbhook 2>&1) && rc=0 || rc=$?
echo "$out"
expect_eq "dpkg -r: exit 0" "$rc" 0
check "dpkg -r: no hook, no unit, no watcher left" removed
check "dpkg -r: the configuration is kept" test -f "$config"
if out=$(vq net-start fdbnet 2>&1); then pass "a network starts after the removal"; else fail "a network starts after the removal" "$out"; fi
vq net-destroy fdbnet >/dev/null 2>&1
out=$(dpkg -P fdbhook 2>&1) && rc=0 || rc=$?
expect_eq "dpkg -P: exit 0" "$rc" 0
check "dpkg -P: nothing of fdbhook is left (files, run directory, processes)" nothing_left

# --- 2. the old layout: links, which AppArmor denies -------------------------------------
step "2. the old layout: dpkg -i $(basename "$deb_old")"
out=$(dpkg -i "$deb_old" 2>&1) && rc=0 || rc=$?
echo "$out"
expect_eq "dpkg -i (old layout): exit 0" "$rc" 0
expect_eq "its hook is a link into /usr/libexec/fdbhook" "$(readlink "$qd")" /usr/libexec/fdbhook/qemu-hook
write_config
systemctl restart fdbhook.service
cursor=$(journalctl -k -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
out=$(start_managed 2>&1) && rc=0 || rc=$?
echo "$out"
expect_eq "the start check fails with the links (as it must)" "$rc" 1
expect_has "libvirt: the hook exited with status 126" "$out" "unexpected exit status 126"
denied=$(denied_since "$cursor")
echo "$denied"
expect_match "the kernel denied the link's target to libvirtd's profile" "$denied" \
	'apparmor="DENIED" operation="exec" (class="file" )?profile="libvirtd" name="/usr/libexec/fdbhook/qemu-hook"'
if out=$(vq net-start fdbnet 2>&1); then
	fail "network fdbnet fails to start too (the network hook is denied)"
	vq net-destroy fdbnet >/dev/null 2>&1
else
	expect_has "network fdbnet fails to start too (the network hook is denied)" "$out" "126"
fi
out=$(fdbhook doctor 2>&1) && rc=0 || rc=$?
echo "$out"
expect_eq "fdbhook doctor: exit 1" "$rc" 1
expect_match "doctor: one line naming the profile and the path" "$out" \
	"^fail +qemu hook: AppArmor profile libvirtd \(enforce\) of libvirtd \(pid [0-9]+\) does not let it execute $qd -> /usr/libexec/fdbhook/qemu-hook "
# Debian's libvirtd exits when idle and its socket starts it again: doctor
# then judges by the profile it starts under. (The sockets are stopped too,
# or the watcher's reconnection would start it at once.)
sockets="libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket"
# shellcheck disable=SC2086
systemctl stop $sockets libvirtd.service
out=$(fdbhook doctor 2>&1) && rc=0 || rc=$?
expect_match "doctor with libvirtd stopped: judged by the profile it starts under" "$out" \
	"^fail +qemu hook: AppArmor profile libvirtd \(enforce\) of libvirtd \(not running: the profile it starts under\) does not let it execute $qd -> "
expect_eq "doctor with libvirtd stopped: exit 1" "$rc" 1
# shellcheck disable=SC2086
systemctl start $sockets libvirtd.service
out=$(fdbhook status 2>&1) && rc=0 || rc=$?
expect_eq "fdbhook status: exit 1" "$rc" 1
expect_match "status names the denial" "$out" "qemu hook: AppArmor profile libvirtd \(enforce\) .* does not let it execute"
expect_line "fdbhook metrics: three hook problems" "$(fdbhook metrics 2>&1)" 'fdbhook_problems{kind="hook"} 3'
wait_for 10 scrape >/dev/null 2>&1
expect_line "the watcher's /metrics: three hook problems" "$(scrape 2>&1 | tr -d '\r')" 'fdbhook_problems{kind="hook"} 3'

# --- 3. upgrade from the old layout ---------------------------------------------------------
step "3. upgrade: dpkg -i $(basename "$deb_new") over the old layout"
wpid=$(watcher_pid)
cursor=$(journalctl -k -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
out=$(dpkg -i "$deb_new" 2>&1) && rc=0 || rc=$?
echo "$out"
expect_eq "dpkg -i (upgrade): exit 0" "$rc" 0
check "the hooks are regular files now" test -f "$qd" -a ! -L "$qd" -a -f "$nd" -a ! -L "$nd" -a -f "$ld" -a ! -L "$ld"
expect_eq "dpkg --verify: the files are the package's (the edited configuration aside)" "$(dpkg --verify fdbhook 2>&1 | grep -v ' c /etc/fdbhook/fdbhook.toml$')" ""
expect_eq "/usr/libexec/fdbhook holds only the three links" "$(find /usr/libexec/fdbhook -mindepth 1 -printf '%y %p\n' | sort | tr '\n' ' ')" \
	"l /usr/libexec/fdbhook/lxc-hook l /usr/libexec/fdbhook/network-hook l /usr/libexec/fdbhook/qemu-hook "
check "the watcher was restarted with the new binary" test "$(watcher_pid)" != "$wpid" -a "$(watcher_pid)" != 0
check "g1 starts managed after the upgrade" start_managed
out=$(fdbhook doctor 2>&1) && rc=0 || rc=$?
echo "$out"
expect_eq "fdbhook doctor after the upgrade: exit 0, no failing check" "$rc $(grep -c '^fail' <<<"$out")" "0 0"
expect_lacks "doctor after the upgrade: libvirtd still counts as running the hooks" "$out" "before $qd was installed"
denied=$(denied_since "$cursor")
[ -z "$denied" ] || echo "$denied"
expect_lacks "no AppArmor denial naming fdbhook since the upgrade" "$denied" fdbhook
vq destroy g1 >/dev/null 2>&1
out=$(dpkg -P fdbhook 2>&1) && rc=0 || rc=$?
expect_eq "dpkg -P after the upgrade: exit 0" "$rc" 0
check "nothing of fdbhook is left" nothing_left
