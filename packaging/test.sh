#!/usr/bin/env bash
# Checks the packages packaging/build.sh wrote to dist/, as root:
#   - the .deb's metadata and files before installing it;
#   - dpkg -i: every file, owner, mode and symlink target; the hooks run as
#     libvirt runs them; the conffile; against a real libvirtd started as
#     Debian starts it (running before the install): the reload on a first
#     install only, and both ways of opting out of it, each proved by
#     starting a guest and reading its port back from the kernel;
#   - upgrades (the same package over itself, then a higher version whose
#     shipped configuration changed): an admin's edit survives, no prompt;
#   - with FDBHOOK_PKG_E2E=1, the end-to-end suite against the installed hooks;
#   - dpkg -r keeps the configuration and leaves bridge ports alone, dpkg -P
#     removes it (but not files an admin added);
#   - the .rpm's files, metadata, %config(noreplace) and scriptlets, and the
#     scriptlets run with RPM's arguments.
# Everything it touches in /etc is backed up first and restored afterwards,
# also on failure. Ends with "packages: N passed, M failed".
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export DEBIAN_FRONTEND=noninteractive

dist=${FDBHOOK_PKG_DIST:-dist}
lock=/run/fdbhook-test.lock
marker=/run/fdbhook-reload-pending
started=$(date +%s)

# shellcheck source=test/checks.sh
. "$root/test/checks.sh"
section() { printf '\n== %s\n' "$1"; }
# pkg_state: dpkg's state of fdbhook (not-installed, config-files, installed, ...).
pkg_state() {
	local s
	s=$(dpkg-query -W -f='${db:Status-Status}' fdbhook 2>/dev/null) || true
	echo "${s:-not-installed}"
}

if [ "$(id -u)" != 0 ]; then
	echo "packages: the package test installs and removes a .deb and must run as root" >&2
	exit 1
fi
# apt fails at once while another suite installs packages: retry a while.
for i in 1 2 3 4 5 6; do
	test/deps.sh rpm groff-base iproute2 shellcheck libvirt-daemon-system libvirt-daemon-system-sysv \
		qemu-system-x86 && break
	[ "$i" = 6 ] && exit 1
	echo "packages: installing test tools failed (dpkg busy?), retry $i in 20 s" >&2
	sleep 20
done

shopt -s nullglob
debs=("$dist"/fdbhook_*.deb)
rpms=("$dist"/fdbhook-*.rpm)
shopt -u nullglob
if [ ${#debs[@]} -ne 1 ] || [ ${#rpms[@]} -ne 1 ]; then
	echo "packages: want exactly one fdbhook .deb and one .rpm in $dist/ (run make packages): found ${#debs[@]} and ${#rpms[@]}" >&2
	exit 1
fi
deb=${debs[0]}
rpm=${rpms[0]}
version=$(dpkg-deb -f "$deb" Version)
debarch=$(dpkg-deb -f "$deb" Architecture)

inputs=$dist/fdbhook-inputs.sha256
if [ ! -f "$inputs" ]; then
	echo "packages: $inputs is missing (run make packages)" >&2
	exit 1
fi
# insum NAME: the checksum build.sh recorded for one of its inputs.
insum() { awk -v f="$1" '$2 == f { print $1 }' "$inputs"; }

work=$(mktemp -d /tmp/fdbt-pkgtest.XXXXXX)
# Everything below is compared with what build.sh recorded and with the
# .deb's own files, never with bin/ or README.md as they are now: the tree
# may change while the test runs (make e2e rebuilds bin/; in a shared
# checkout others build and commit while the test waits for its lock).
mkdir "$work/deb"
dpkg-deb -x "$deb" "$work/deb"
# A tree to rebuild the packages from: the packaged inputs, taken out of the
# .deb, and the packaging recipe as it is now.
src=$work/src
mkdir -p "$src/bin"
cp --parents packaging/build.sh packaging/version.sh packaging/nfpm.yaml packaging/scripts/*.sh \
	packaging/testdata/*.xml "$src/"
cp "$work/deb/etc/libvirt/hooks/qemu.d/fdbhook" "$src/bin/qemu-hook"
cp "$work/deb/etc/libvirt/hooks/network.d/fdbhook" "$src/bin/network-hook"
cp "$work/deb/etc/libvirt/hooks/lxc.d/fdbhook" "$src/bin/lxc-hook"
cp "$work/deb/usr/sbin/fdbhook" "$src/bin/"
cp "$work/deb/usr/share/doc/fdbhook/README.md" "$work/deb/usr/share/doc/fdbhook/LICENSE" "$src/"
cp "$work/deb/etc/fdbhook/fdbhook.toml" "$work/deb/usr/share/doc/fdbhook/copyright" "$src/packaging/"
gzip -dc "$work/deb/usr/share/man/man8/fdbhook.8.gz" >"$src/packaging/fdbhook.8"
cp "$work/deb/lib/systemd/system/fdbhook.service" "$src/packaging/"
mkdir -p "$src/packaging/systemd" "$src/packaging/prometheus"
cp "$work/deb/lib/systemd/system/fdbhook-metrics.service" "$work/deb/lib/systemd/system/fdbhook-metrics.timer" \
	"$src/packaging/systemd/"
cp "$work/deb/usr/share/fdbhook/prometheus/fdbhook.rules.yml" "$src/packaging/prometheus/"
# The packages' file times, for those rebuilds.
epoch=$(rpm -qp --qf '[%{FILEMTIMES}\n]' "$rpm" | head -n 1)
backup=$work/backup
touched=no # set once the host is this test's to restore
created_dirs=() # directories the test made, to remove again
existing_dirs=() # directories that were there, to put back if dpkg -P took them

# libvirtd as Debian starts it: its systemd unit where systemd runs, else
# the init script of libvirt-daemon-system-sysv. Either way libvirtd writes
# its own pid file (without a trailing newline).
have_systemd() { [ -d /run/systemd/system ]; }
# libvirtd_pid: the pid of the running system libvirtd, or nothing.
libvirtd_pid() {
	local p=
	{ IFS= read -r p </run/libvirtd.pid; } 2>/dev/null || [ -n "$p" ] || return 0
	[ "$(cat "/proc/$p/comm" 2>/dev/null)" = libvirtd ] && echo "$p"
	return 0
}
libvirtd_was_running=
start_libvirtd() {
	local i
	if have_systemd; then
		systemctl start virtlogd.service libvirtd.service
	else
		/etc/init.d/virtlogd start 9>&- >/dev/null
		/etc/init.d/libvirtd start 9>&- >/dev/null
	fi
	for i in $(seq 60); do
		virsh -q -c qemu:///system version >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}
# Debian's init script recognises only a libvirtd whose argv[0] is its full
# path; one started otherwise (by hand, "libvirtd -d") it reports as not
# running, and its start then deletes that daemon's pid file: stop such a
# daemon by its pid file.
stop_libvirtd() {
	local p
	if have_systemd; then systemctl stop libvirtd.service; else /etc/init.d/libvirtd stop >/dev/null; fi
	p=$(libvirtd_pid)
	[ -n "$p" ] || return 0
	echo "  note: stopping libvirtd pid $p, which the init script did not stop"
	kill "$p" 2>/dev/null || true
	for _ in $(seq 120); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.25; done
	echo "  libvirtd pid $p still running 30 s after SIGTERM" >&2
}

# guest_port DESC WANT: starts the transient guest fdbtpkgvm (one NIC on
# fdbtpkgbr1, tap fdbtpkgvn1) under the system libvirtd, checks that its
# port is "managed" (learning off, flood off, static entry for its MAC) or
# "unmanaged" (learning on, no static entry) as read back from the kernel,
# then destroys it.
pkg_mac=52:54:00:fd:b7:11
guest_port() {
	local desc=$1 want=$2 link fdb got
	ip link show fdbtpkgbr1 >/dev/null 2>&1 || { ip link add fdbtpkgbr1 type bridge && ip link set fdbtpkgbr1 up; }
	cat >"$work/guest.xml" <<EOF
<domain type='qemu'>
  <name>fdbtpkgvm</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <memballoon model='none'/>
    <interface type='bridge'>
      <mac address='$pkg_mac'/>
      <source bridge='fdbtpkgbr1'/>
      <target dev='fdbtpkgvn1'/>
      <model type='rtl8139'/>
      <rom enabled='no'/>
    </interface>
  </devices>
</domain>
EOF
	if ! virsh -q -c qemu:///system create "$work/guest.xml" >"$work/virsh.log" 2>&1 9>&-; then
		fail "$desc: virsh create" "$(cat "$work/virsh.log")"
		return
	fi
	link=$(bridge -d link show dev fdbtpkgvn1)
	fdb=$(bridge fdb show dev fdbtpkgvn1 | grep -F "$pkg_mac" || true)
	virsh -q -c qemu:///system destroy fdbtpkgvm >/dev/null 2>&1
	[ -z "${watchpid:-}" ] || kill "$watchpid" 2>/dev/null
	got=unmanaged
	if grep -q 'learning off' <<<"$link" && grep -q 'flood off' <<<"$link" && grep -q ' static' <<<"$fdb"; then
		got=managed
	elif ! grep -q 'learning on' <<<"$link" || grep -q ' static' <<<"$fdb"; then
		got=partly
	fi
	expect_eq "$desc: guest port fdbtpkgvn1 is $want" "$got" "$want"
	[ "$got" = "$want" ] || printf '%s\n%s\n' "$link" "$fdb" | sed 's/^/        | /'
}
# manage_test_bridge: the configuration lists fdbtpkgbr1 (and nothing else).
manage_test_bridge() {
	sed 's/^bridges = \[\]$/bridges = ["fdbtpkgbr1"]/' "$src/packaging/fdbhook.toml" >/etc/fdbhook/fdbhook.toml
}
reload_record=/run/fdbhook/reloaded-libvirtd

# ---------------------------------------------------------------------------
# Restore the host, whatever happened.
cleanup() {
	local rc=$?
	set +e
	virsh -q -c qemu:///system destroy fdbtpkgvm >/dev/null 2>&1
	if [ "$libvirtd_was_running" = no ]; then
		stop_libvirtd
	fi
	if [ "$touched" = yes ]; then
		if [ "$(pkg_state)" != not-installed ]; then
			FDBHOOK_NO_RELOAD=1 run_dpkg "$work/cleanup.log" --purge fdbhook ||
				echo "packages: could not purge the test's fdbhook package" >&2
		fi
		[ "$(pkg_state)" = not-installed ] && "$root"/test/package-leftover.sh clear
		ip link del fdbtpkgtap0 2>/dev/null
		ip link del fdbtpkgbr0 2>/dev/null
		ip link del fdbtpkgbr1 2>/dev/null
		rm -rf /etc/fdbhook
		rm -f /etc/libvirt/hooks/qemu.d/fdbhook /etc/libvirt/hooks/network.d/fdbhook /etc/libvirt/hooks/lxc.d/fdbhook "$marker"
		local p
		# dpkg -P removes the hook directories when they are empty and no
		# other package owns them, even if they were there before.
		for p in "${existing_dirs[@]}"; do
			[ -d "$p" ] || mkdir -m 0755 "$p"
		done
		for p in /etc/fdbhook /etc/libvirt/hooks/qemu.d/fdbhook /etc/libvirt/hooks/network.d/fdbhook /etc/libvirt/hooks/lxc.d/fdbhook; do
			if [ -e "$backup$p" ] || [ -L "$backup$p" ]; then
				mkdir -p "$(dirname "$p")"
				mv "$backup$p" "$p" || echo "packages: could not restore $p from $backup$p" >&2
			fi
		done
		# Directories the test made, deepest first, if they are empty again.
		for ((i = ${#created_dirs[@]} - 1; i >= 0; i--)); do
			rmdir "${created_dirs[i]}" 2>/dev/null
		done
	fi
	if [ -d "$backup" ] && [ -n "$(find "$backup" -mindepth 1 ! -type d -print -quit)" ]; then
		echo "packages: some backups were not restored; they are kept in $backup" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_dpkg LOG ARGS...: dpkg without a terminal or stdin, old conffiles kept,
# the documentation installed even where dpkg is told to drop it (container
# images), a time limit in case something still waits for an answer, and the
# lock's descriptor closed so that nothing started from here keeps the lock.
# dpkg runs under the tests' apt lock (test/deps.sh), so that another
# suite's package installation does not meet it; a dpkg run by something
# else that holds its database makes it fail at once: retry for up to two
# minutes then.
run_dpkg() {
	local log=$1 rc
	shift
	for _ in $(seq 60); do
		rc=0
		"$root/test/apt-locked.sh" timeout 120 dpkg --force-confold \
			--path-include='/usr/share/doc/fdbhook/*' \
			--path-include='/usr/share/man/man8/fdbhook.8.gz' \
			"$@" </dev/null >"$log" 2>&1 9>&- || rc=$?
		grep -q 'locked by another process' "$log" || return "$rc"
		sleep 2
	done
	return "$rc"
}
# dpkg_step DESC LOG ARGS...: one dpkg call that must succeed.
dpkg_step() {
	local desc=$1 log=$2
	shift 2
	local rc=0 note=
	run_dpkg "$log" "$@" || rc=$?
	[ "$rc" != 124 ] || note=", timed out"
	if [ "$rc" = 0 ]; then
		pass "$desc"
	else
		fail "$desc (exit $rc$note)" "$(cat "$log")"
	fi
}

# ---------------------------------------------------------------------------
section "static checks"

for f in packaging/scripts/*.sh; do
	check "$f parses as POSIX sh (dash -n)" dash -n "$src/$f"
done
if out=$(shellcheck -s sh packaging/scripts/*.sh 2>&1 && shellcheck -x packaging/*.sh 2>&1); then
	pass "shellcheck: packaging scripts"
else
	fail "shellcheck: packaging scripts" "$out"
fi
if out=$(groff -man -ww -z "$src/packaging/fdbhook.8" 2>&1) && [ -z "$out" ]; then
	pass "man page fdbhook(8) renders without warnings"
else
	fail "man page fdbhook(8) renders without warnings" "$out"
fi

# The shipped configuration: empty lists, every key documented.
conf=$(cat "$src/packaging/fdbhook.toml")
expect_line "shipped config: bridges is empty" "$conf" 'bridges = []'
expect_line "shipped config: networks is empty" "$conf" 'networks = []'
for key in 'bridges' 'networks' 'on_error' 'log_level' '[bridge.' 'vlan_filtering' 'further per-bridge keys' \
	'lock_ports' 'sticky'; do
	expect_has "shipped config documents $key" "$conf" "$key"
done

# The hook itself parses the shipped file and its documented example with the
# per-bridge table and keys uncommented (a configuration error is exit 3).
sed -e 's/^bridges = \[\]$/bridges = ["br0"]/' -e 's/^# \[bridge\.br0\]$/[bridge.br0]/' \
	-e 's/^# vlan_filtering = "enable"$/vlan_filtering = "enable"/' \
	-e 's/^# \(lock_ports\|sticky\) = false$/\1 = true/' "$src/packaging/fdbhook.toml" >"$work/example.toml"
expect_eq "the example can be uncommented into a bridge table" \
	"$(grep -v '^#' "$work/example.toml" | sed -n '/^\[bridge\.br0\]$/,$p' | grep .)" \
	"$(printf '[bridge.br0]\nvlan_filtering = "enable"\nlock_ports = true\nsticky = true')"
# Accepted means exit 0 and: the shipped file manages nothing, so the dry
# run prints nothing; the example manages br0, so its dry run prints t2's
# plan with the br0 NICs in it (refused or not, as this host has no such taps).
for c in "$src/packaging/fdbhook.toml" "$work/example.toml"; do
	rc=0
	FDBHOOK_CONFIG=$c FDBHOOK_DRY_RUN=1 "$src/bin/qemu-hook" t2 start begin - \
		<"$src/packaging/testdata/qemu-t2-start-begin.xml" >/dev/null 2>"$work/dry.err" || rc=$?
	ok=0
	if [ "$c" = "$work/example.toml" ]; then
		[ "$rc" = 0 ] && grep -q '^plan for t2:$' "$work/dry.err" && grep -q 'net0: .*52:54:00:aa:cc:01.* br0' "$work/dry.err" && ok=1
	else
		[ "$rc" = 0 ] && [ ! -s "$work/dry.err" ] && ok=1
	fi
	if [ "$ok" = 1 ]; then
		pass "bin/qemu-hook accepts $(basename "$c") (dry run, exit 0)"
	else
		fail "bin/qemu-hook accepts $(basename "$c") (dry run, exit $rc)" "$(cat "$work/dry.err")"
	fi
done

section "deb contents against the inputs build.sh recorded"

for f in bin/qemu-hook bin/network-hook bin/lxc-hook bin/fdbhook README.md LICENSE packaging/fdbhook.toml packaging/copyright packaging/fdbhook.8 packaging/fdbhook.service \
	packaging/systemd/fdbhook-metrics.service packaging/systemd/fdbhook-metrics.timer packaging/prometheus/fdbhook.rules.yml; do
	expect_eq "deb: $f is the one packaged" "$(sha256sum <"$src/$f" | cut -d' ' -f1)" "$(insum "$(basename "$f")")"
done

section "deb metadata: $deb"

expect_eq "deb: Package" "$(dpkg-deb -f "$deb" Package)" fdbhook
expect_eq "deb: Architecture is the host's" "$debarch" "$(dpkg --print-architecture)"
expect_eq "deb: Recommends libvirt-daemon" "$(dpkg-deb -f "$deb" Recommends)" libvirt-daemon
expect_eq "deb: no Depends or Pre-Depends (static binaries)" "$(dpkg-deb -f "$deb" Depends Pre-Depends)" ""
desc=$(dpkg-deb -f "$deb" Description)
expect_has "deb: description names libvirt 6.5" "$desc" "libvirt 6.5"
expect_has "deb: description names Linux 3.17" "$desc" "Linux 3.17"
mkdir "$work/control"
dpkg-deb -e "$deb" "$work/control"
expect_eq "deb: conffiles" "$(cat "$work/control/conffiles")" /etc/fdbhook/fdbhook.toml
for s in preinst:preinstall postinst:postinstall prerm:preremove postrm:postremove; do
	check "deb: ${s%%:*} is packaging/scripts/${s#*:}.sh" cmp -s "$work/control/${s%%:*}" "$src/packaging/scripts/${s#*:}.sh"
done
# A link's mode in the .deb is the recipe's, not taken from the building
# host's file at the link's target (which differs where fdbhook is
# installed): the same tree builds the same package on every host.
expect_eq "deb: the links in /usr/libexec/fdbhook are lrwxrwxrwx root/root" \
	"$(dpkg-deb -c "$deb" | awk '$6 ~ /^\.\/usr\/libexec\/fdbhook\/./ { print $1, $2, $6 }')" "$(
		cat <<EOF
lrwxrwxrwx root/root ./usr/libexec/fdbhook/lxc-hook
lrwxrwxrwx root/root ./usr/libexec/fdbhook/network-hook
lrwxrwxrwx root/root ./usr/libexec/fdbhook/qemu-hook
EOF
	)"

section "build a higher version with a changed default configuration"

next_version="$version+fdbtnext"
{
	cat "$src/packaging/fdbhook.toml"
	echo "# (the next release changes the shipped defaults)"
} >"$work/next.toml"
# Both builds run from the snapshot, so that commits made meanwhile in a
# shared checkout do not change what is built.
if SOURCE_DATE_EPOCH=$epoch FDBHOOK_PKG_VERSION=$next_version FDBHOOK_PKG_CONFIG=$work/next.toml \
	FDBHOOK_PKG_DIST=$work/next "$src/packaging/build.sh" >"$work/next.log" 2>&1; then
	pass "built $next_version"
else
	fail "built $next_version" "$(cat "$work/next.log")"
fi
next_deb=$(echo "$work"/next/fdbhook_*.deb)

if SOURCE_DATE_EPOCH=$epoch FDBHOOK_PKG_VERSION=$version FDBHOOK_PKG_DIST=$work/again \
	"$src/packaging/build.sh" >"$work/again.log" 2>&1 &&
	(cd "$work/again" && sha256sum fdbhook_*.deb fdbhook-*.rpm) >"$work/again.sum" &&
	(cd "$dist" && sha256sum --quiet -c "$work/again.sum") >"$work/again.check" 2>&1; then
	pass "a rebuild of $version is bit for bit the same"
else
	fail "a rebuild of $version is bit for bit the same" "$(cat "$work/again.log" "$work/again.check" 2>/dev/null)"
fi
check "$next_version sorts after $version" dpkg --compare-versions "$next_version" gt "$version"

# ---------------------------------------------------------------------------
section "take $lock"

# A caller that holds the lock already says so with FDBHOOK_TEST_LOCK_HELD=1.
if [ "${FDBHOOK_TEST_LOCK_HELD:-}" = 1 ]; then
	echo "  held by the caller (FDBHOOK_TEST_LOCK_HELD=1)"
else
	exec 9>"$lock"
	if ! flock -n 9; then
		echo "  waiting for $lock (another suite holds it)"
		waited=$(date +%s)
		flock 9
		echo "  waited $(($(date +%s) - waited)) s"
	fi
fi

# An admin's package stays; one an interrupted run left is purged.
"$root"/test/package-leftover.sh check packages || exit 1
"$root"/test/package-leftover.sh mark packages
touched=yes

# Move aside what the test could clobber; cleanup() puts it back.
for p in /etc/fdbhook /etc/libvirt/hooks/qemu.d/fdbhook /etc/libvirt/hooks/network.d/fdbhook /etc/libvirt/hooks/lxc.d/fdbhook; do
	if [ -e "$p" ] || [ -L "$p" ]; then
		mkdir -p "$backup$(dirname "$p")"
		mv "$p" "$backup$p"
		echo "  backed up $p"
	fi
done
rm -f "$marker"
for d in /etc/libvirt /etc/libvirt/hooks /etc/libvirt/hooks/qemu.d /etc/libvirt/hooks/network.d /etc/libvirt/hooks/lxc.d; do
	if [ -d "$d" ]; then existing_dirs+=("$d"); else created_dirs+=("$d"); fi
done

# A real libvirtd, running before the package is installed, as on a host
# that already runs guests.
rm -f /run/fdbhook/reloaded-*
# A libvirtd of this host that no pid file names (left by an interrupted
# run) makes the init script refuse to start another: stop it.
if [ -z "$(libvirtd_pid)" ]; then
	for p in $(pgrep -x libvirtd || true); do
		if [ "$(stat -L -c %d:%i "/proc/$p/root/etc/libvirt" 2>/dev/null)" = "$(stat -c %d:%i /etc/libvirt)" ]; then
			echo "  note: stopping libvirtd pid $p, which no pid file names"
			kill "$p" 2>/dev/null || true
			for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
		fi
	done
fi
if [ -n "$(libvirtd_pid)" ]; then
	libvirtd_was_running=yes
	# Whoever started it, restart it the way the distribution does.
	stop_libvirtd
else
	libvirtd_was_running=no
fi
if start_libvirtd && [ -n "$(libvirtd_pid)" ]; then
	pass "libvirtd started as Debian starts it ($(have_systemd && echo systemd || echo /etc/init.d/libvirtd)), pid $(libvirtd_pid)"
else
	fail "libvirtd started as Debian starts it (running: $(pgrep -a -x libvirtd | tr '\n' ';'))"
	exit 1
fi
daemon_pid=$(libvirtd_pid)
# reload_state: the reload record's content and time, to tell "no reload".
reload_state() { stat -c '%y' "$reload_record" 2>/dev/null && cat "$reload_record"; true; }

# A guest port as the hook leaves it, to show that removal leaves it alone.
setup_port() {
	ip link del fdbtpkgtap0 2>/dev/null || true
	ip link del fdbtpkgbr0 2>/dev/null || true
	ip link add fdbtpkgbr0 type bridge
	ip tuntap add dev fdbtpkgtap0 mode tap
	ip link set fdbtpkgtap0 master fdbtpkgbr0
	ip link set fdbtpkgtap0 up
	ip link set fdbtpkgbr0 up
	bridge link set dev fdbtpkgtap0 learning off flood off
	bridge fdb replace 52:54:00:fd:b7:01 dev fdbtpkgtap0 master static
}
setup_port
port_state() {
	local link fdb
	link=$(bridge -d link show dev fdbtpkgtap0)
	fdb=$(bridge fdb show dev fdbtpkgtap0)
	grep -q 'learning off' <<<"$link" && grep -q 'flood off' <<<"$link" &&
		grep -q '52:54:00:fd:b7:01 master fdbtpkgbr0 static' <<<"$fdb"
}
check "a managed-looking guest port fdbtpkgtap0 is set up" port_state

# ---------------------------------------------------------------------------
# What the installed package must hold: path, type, mode, owner, source.
expected_files() {
	cat <<EOF
/usr/libexec/fdbhook|directory|755|root:root
/usr/sbin/fdbhook|regular file|755|root:root
/lib/systemd/system/fdbhook.service|regular file|644|root:root
/etc/libvirt/hooks/qemu.d|directory|755|root:root
/etc/libvirt/hooks/network.d|directory|755|root:root
/etc/libvirt/hooks/lxc.d|directory|755|root:root
/etc/libvirt/hooks/qemu.d/fdbhook|regular file|755|root:root
/etc/libvirt/hooks/network.d/fdbhook|regular file|755|root:root
/etc/libvirt/hooks/lxc.d/fdbhook|regular file|755|root:root
/etc/fdbhook|directory|755|root:root
/etc/fdbhook/fdbhook.toml|regular file|644|root:root
/usr/share/man/man8/fdbhook.8.gz|regular file|644|root:root
/usr/share/doc/fdbhook|directory|755|root:root
/usr/share/doc/fdbhook/README.md|regular file|644|root:root
/usr/share/doc/fdbhook/LICENSE|regular file|644|root:root
/usr/share/doc/fdbhook/copyright|regular file|644|root:root
/lib/systemd/system/fdbhook-metrics.service|regular file|644|root:root
/lib/systemd/system/fdbhook-metrics.timer|regular file|644|root:root
/usr/share/fdbhook|directory|755|root:root
/usr/share/fdbhook/prometheus|directory|755|root:root
/usr/share/fdbhook/prometheus/fdbhook.rules.yml|regular file|644|root:root
EOF
}
expected_links() {
	cat <<EOF
/usr/libexec/fdbhook/qemu-hook|/etc/libvirt/hooks/qemu.d/fdbhook
/usr/libexec/fdbhook/network-hook|/etc/libvirt/hooks/network.d/fdbhook
/usr/libexec/fdbhook/lxc-hook|/etc/libvirt/hooks/lxc.d/fdbhook
EOF
}

check_installed_files() {
	local path type mode owner got target
	while IFS='|' read -r path type mode owner; do
		got=$(stat -c '%F|%a|%U:%G' "$path" 2>&1 || true)
		if [ "$got" != "$type|$mode|$owner" ]; then
			fail "$path: $type $mode $owner" "$got"
		elif [ "$type" != "regular file" ]; then
			pass "$path: $type $mode $owner"
		elif cmp -s "$path" "$work/deb$path"; then
			pass "$path: $type $mode $owner, same content as in the .deb"
		else
			fail "$path: same content as in the .deb"
		fi
	done < <(expected_files)
	while IFS='|' read -r path target; do
		got=$(stat -c '%F %U:%G' "$path" 2>&1 || true)
		expect_eq "$path: symlink to $target" "$got -> $(readlink "$path" || true)" "symbolic link root:root -> $target"
	done < <(expected_links)
	local listed want
	listed=$(dpkg -L fdbhook | sort)
	want=$({
		for d in /etc /etc/libvirt /etc/libvirt/hooks /usr /usr/libexec /usr/sbin /usr/share /usr/share/doc /usr/share/man /usr/share/man/man8 \
			/lib /lib/systemd /lib/systemd/system; do echo "$d"; done
		expected_files | cut -d'|' -f1
		expected_links | cut -d'|' -f1
	} | sort)
	expect_eq "dpkg -L lists exactly the expected paths" "$listed" "$want"
}

check_removed() {
	local path
	for path in /usr/libexec/fdbhook/qemu-hook /usr/libexec/fdbhook/network-hook /usr/libexec/fdbhook/lxc-hook /usr/sbin/fdbhook \
		/etc/libvirt/hooks/qemu.d/fdbhook /etc/libvirt/hooks/network.d/fdbhook /etc/libvirt/hooks/lxc.d/fdbhook \
		/usr/share/man/man8/fdbhook.8.gz /usr/share/doc/fdbhook /usr/share/fdbhook \
		/lib/systemd/system/fdbhook-metrics.service /lib/systemd/system/fdbhook-metrics.timer /lib/systemd/system/fdbhook.service; do
		if [ -e "$path" ] || [ -L "$path" ]; then fail "$1: $path is gone"; else pass "$1: $path is gone"; fi
	done
}

# run_hook DESC STDIN ARGS...: run an installed hook as libvirtd does (empty
# environment, default configuration path); it must exit 0 and print nothing.
run_hook() {
	local desc=$1 in=$2
	shift 2
	local rc=0
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@" <"$in" >"$work/hook.out" 2>"$work/hook.err" || rc=$?
	if [ "$rc" = 0 ] && [ ! -s "$work/hook.out" ]; then
		pass "$desc: exit 0, no stdout"
	else
		fail "$desc: exit 0, no stdout (exit $rc)" "$(cat "$work/hook.out" "$work/hook.err")"
	fi
}

# ---------------------------------------------------------------------------
section "1. first install, FDBHOOK_NO_RELOAD=1: $(basename "$deb")"

FDBHOOK_NO_RELOAD=1 dpkg_step "dpkg -i" "$work/install1.log" -i "$deb"
out=$(cat "$work/install1.log")
expect_has "tells that libvirt needs a restart or SIGHUP" "$out" "only notices the first hook"
expect_has "says it does not reload (FDBHOOK_NO_RELOAD=1)" "$out" "not reloading libvirt (FDBHOOK_NO_RELOAD=1)"
expect_has "points to fdbhook doctor" "$out" '"fdbhook doctor"'
expect_has "points to fdbhook reconcile" "$out" '"fdbhook reconcile"'
expect_eq "says it once" "$(grep -c 'only notices the first hook' <<<"$out")" 1
check "no reload recorded ($reload_record)" test ! -e "$reload_record"
check "no reload note left behind in $marker" test ! -e "$marker"
check_installed_files
check "the metrics timer is shipped disabled" test ! -e /etc/systemd/system/timers.target.wants/fdbhook-metrics.timer
# systemd reads the installed units as it would load them: every directive
# and sandbox setting known, ExecStart's program present, the man page that
# Documentation= names found. This host may run no systemd; the offline
# check is what can be had there.
units="/lib/systemd/system/fdbhook.service /lib/systemd/system/fdbhook-metrics.service /lib/systemd/system/fdbhook-metrics.timer"
if command -v systemd-analyze >/dev/null; then
	# shellcheck disable=SC2086
	out=$(systemd-analyze verify $units 2>&1) && rc=0 || rc=$?
	expect_eq "systemd-analyze verify accepts the installed units" "exit $rc: $out" "exit 0: "
else
	echo "  skip  systemd-analyze verify: systemd-analyze is not installed (package systemd)"
fi

qd=/etc/libvirt/hooks/qemu.d/fdbhook
nd=/etc/libvirt/hooks/network.d/fdbhook
ld=/etc/libvirt/hooks/lxc.d/fdbhook
# The hooks are regular files, as they are in the .deb.
hooks_as_packaged() {
	local h
	for h in "$qd" "$nd" "$ld"; do
		[ -f "$h" ] && [ ! -L "$h" ] && cmp -s "$h" "$work/deb$h" || return 1
	done
}
if out=$(env -i PATH=/usr/bin:/bin "$qd" --version 2>&1) && [ -n "$out" ]; then
	pass "$qd --version: $out"
else
	fail "$qd --version" "$out"
fi
if out=$(env -i PATH=/usr/bin:/bin "$nd" --version 2>&1) && [ -n "$out" ]; then
	pass "$nd --version: $out"
else
	fail "$nd --version" "$out"
fi
if out=$(env -i PATH=/usr/bin:/bin "$ld" --version 2>&1) && [ "${out%% *}" = lxc-hook ]; then
	pass "$ld --version: $out"
else
	fail "$ld --version" "$out"
fi
run_hook "$qd t2 start begin - (shipped config)" "$src/packaging/testdata/qemu-t2-start-begin.xml" "$qd" t2 start begin -
run_hook "$qd t2 stopped end - (shipped config)" "$src/packaging/testdata/qemu-t2-stopped-end.xml" "$qd" t2 stopped end -
run_hook "$qd t2 migrate begin - (shipped config)" "$src/packaging/testdata/qemu-t2-start-begin.xml" "$qd" t2 migrate begin -
run_hook "$ld fdbtlxc1 started begin - (shipped config)" "$src/packaging/testdata/lxc-fdbtlxc1-started-begin.xml" \
	"$ld" fdbtlxc1 started begin -
run_hook "$nd hostbr port-created begin - (shipped config)" "$src/packaging/testdata/network-hostbr-port-created-begin.xml" \
	"$nd" hostbr port-created begin -

# The installed doctor finds the hooks where libvirt runs them.
doctor=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin timeout 60 /usr/sbin/fdbhook doctor 2>&1 || true)
expect_match "fdbhook doctor: qemu hook ok" "$doctor" '^ok +qemu hook'
expect_match "fdbhook doctor: network hook ok" "$doctor" '^ok +network hook'

st=$(dpkg -s fdbhook)
expect_has "dpkg -s: installed" "$st" "Status: install ok installed"
expect_has "dpkg -s: conffile with the shipped checksum" "$st" \
	" /etc/fdbhook/fdbhook.toml $(md5sum <"$src/packaging/fdbhook.toml" | cut -d' ' -f1)"
check "port fdbtpkgtap0 untouched by the install" port_state

section "2. remove, then reinstall with /etc/fdbhook/no-reload"

dpkg_step "dpkg -r" "$work/remove1.log" -r fdbhook
check_removed "after dpkg -r"
check "after dpkg -r: the configuration is kept" cmp -s /etc/fdbhook/fdbhook.toml "$src/packaging/fdbhook.toml"
expect_eq "after dpkg -r: package state" "$(pkg_state)" config-files
check "port fdbtpkgtap0 untouched by the removal" port_state

touch /etc/fdbhook/no-reload
dpkg_step "dpkg -i over the kept configuration" "$work/install2.log" -i "$deb"
out=$(cat "$work/install2.log")
expect_has "counts as a first install (hooks were gone)" "$out" "only notices the first hook"
expect_has "says it does not reload (/etc/fdbhook/no-reload)" "$out" "not reloading libvirt (/etc/fdbhook/no-reload exists)"
check "no reload recorded ($reload_record)" test ! -e "$reload_record"
rm /etc/fdbhook/no-reload
# What the bug looked like: a libvirtd that was running before the hooks
# were installed, and was not reloaded, never runs them.
manage_test_bridge
others=$(find /etc/libvirt/hooks/qemu /etc/libvirt/hooks/qemu.d -maxdepth 1 -type f -perm -u+x ! -name fdbhook 2>/dev/null || true)
if [ -z "$others" ]; then
	guest_port "libvirtd running since before the install, not reloaded" unmanaged
else
	echo "  note: other qemu hooks were installed before libvirtd started ($others): libvirtd runs qemu.d without a reload; the not-reloaded case is not observable here"
fi
cp "$src/packaging/fdbhook.toml" /etc/fdbhook/fdbhook.toml

section "3. remove, then reinstall without opting out: libvirtd (pid $daemon_pid) is reloaded"

dpkg_step "dpkg -r" "$work/remove2.log" -r fdbhook
dpkg_step "dpkg -i" "$work/install3.log" -i "$deb"
out=$(cat "$work/install3.log")
expect_has "reports the reload of libvirtd" "$out" "reloaded libvirt: libvirtd (SIGHUP to pid $daemon_pid)."
if have_systemd; then
	expect_has "starts the watcher (fdbhook.service)" "$out" "started the watcher (fdbhook.service)."
else
	expect_has "says to start the watcher (no systemd)" "$out" "systemd is not running: start the watcher yourself"
fi
expect_eq "records the reload for doctor" "$(cut -d' ' -f1 "$reload_record" 2>/dev/null)" "$daemon_pid"
expect_eq "libvirtd kept running (reloaded, not restarted)" "$(libvirtd_pid)" "$daemon_pid"
check_installed_files
# The admin's steps after an install, and nothing by hand in between.
manage_test_bridge
guest_port "guest started after the install" managed
doctor=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin timeout 60 /usr/sbin/fdbhook doctor 2>&1 || true)
expect_match "fdbhook doctor: the qemu hook is active in the reloaded libvirtd" "$doctor" \
	"^ok +qemu hook: active: libvirtd \\(pid $daemon_pid\\) was reloaded"
cp "$src/packaging/fdbhook.toml" /etc/fdbhook/fdbhook.toml

section "4. upgrade over itself, then to $next_version"

printf '\n# fdbt admin edit\nlog_level = "debug"\n' >>/etc/fdbhook/fdbhook.toml
sed -i 's/^log_level = "info"$/# log_level = "info"/' /etc/fdbhook/fdbhook.toml
cp /etc/fdbhook/fdbhook.toml "$work/edited.toml"
reloaded=$(reload_state)

dpkg_step "dpkg -i the same version again" "$work/upgrade1.log" -i "$deb"
out=$(cat "$work/upgrade1.log")
expect_lacks "no note and no reload on an upgrade" "$out" "fdbhook:"
check "the admin's edit survives" cmp -s /etc/fdbhook/fdbhook.toml "$work/edited.toml"

# The RPM scriptlets with RPM's arguments, while the hooks are installed.
mkdir "$work/rpmscripts"
for tag in PREIN POSTIN PREUN POSTUN; do
	rpm -qp --qf "%{$tag}" "$rpm" >"$work/rpmscripts/$tag"
done
rm -f "$marker"
out=$(sh "$work/rpmscripts/PREIN" 2 2>&1 && sh "$work/rpmscripts/POSTIN" 2 2>&1)
expect_eq "rpm %pre 2, %post 2 (upgrade): silent" "$out" ""
check "rpm %pre 2 (upgrade): no reload note" test ! -e "$marker"
expect_eq "rpm %post 2 (upgrade): no reload" "$(reload_state)" "$reloaded"
out=$(FDBHOOK_NO_RELOAD=1 sh "$work/rpmscripts/POSTIN" 1 2>&1)
expect_has "rpm %post 1 (install): tells about the reload" "$out" "only notices the first hook"
out=$(sh "$work/rpmscripts/PREUN" 1 2>&1 && sh "$work/rpmscripts/POSTUN" 1 2>&1)
expect_eq "rpm %preun 1, %postun 1 (upgrade): silent" "$out" ""
out=$(sh "$work/rpmscripts/PREUN" 0 2>&1 && sh "$work/rpmscripts/POSTUN" 0 2>&1)
expect_has "rpm %preun 0 (erase): says running guests keep their ports" "$out" "keep their settings"
check "rpm %postun 0 (erase): configuration kept" cmp -s /etc/fdbhook/fdbhook.toml "$work/edited.toml"
check "port fdbtpkgtap0 untouched by the scriptlets" port_state

dpkg_step "dpkg -i $next_version (changed conffile, --force-confold, no stdin)" "$work/upgrade2.log" -i "$next_deb"
out=$(cat "$work/upgrade2.log")
expect_eq "installed version" "$(dpkg-query -W -f='${Version}' fdbhook)" "$next_version"
check "the admin's edit survives" cmp -s /etc/fdbhook/fdbhook.toml "$work/edited.toml"
check "the new default is beside it as fdbhook.toml.dpkg-dist" cmp -s /etc/fdbhook/fdbhook.toml.dpkg-dist "$work/next.toml"
expect_lacks "no note and no reload on an upgrade" "$out" "fdbhook:"
expect_eq "no reload on upgrades (dpkg -i twice, rpm %post 2)" "$(reload_state)" "$reloaded"

if [ "${FDBHOOK_PKG_E2E:-}" = 1 ]; then
	section "5. end-to-end suite against the installed hooks"
	# This script holds $lock already; FDBHOOK_TEST_LOCK_HELD tells the suite
	# not to wait for it. The time limit turns a suite that waits anyway
	# into a failure instead of a hang.
	if FDBHOOK_E2E_HOOKS=installed FDBHOOK_TEST_LOCK_HELD=1 timeout 900 make e2e </dev/null 2>&1 9>&- |
		sed 's/^/    /'; then
		pass "FDBHOOK_E2E_HOOKS=installed make e2e"
	else
		fail "FDBHOOK_E2E_HOOKS=installed make e2e"
	fi
	check "the e2e suite left the admin's config as it was" cmp -s /etc/fdbhook/fdbhook.toml "$work/edited.toml"
	check "the e2e suite left the installed hooks in place" hooks_as_packaged
	# Its cleanup removes every fdbt* link, this test's port included.
	setup_port
else
	section "5. end-to-end suite: skipped (set FDBHOOK_PKG_E2E=1 to run it against the installed package)"
fi

section "6. remove and purge"

# A watcher started by hand (no systemd) is stopped by the removal.
watchpid=
if ! have_systemd; then
	setsid /usr/sbin/fdbhook watch </dev/null >"$work/watch.log" 2>&1 9>&- &
	watchpid=$!
	for _ in $(seq 50); do
		[ "$(cut -d' ' -f1 /run/fdbhook/watch.lock 2>/dev/null)" = "$watchpid" ] && break
		sleep 0.1
	done
	expect_eq "a watcher runs from /usr/sbin/fdbhook" "$(cut -d' ' -f1 /run/fdbhook/watch.lock 2>/dev/null)" "$watchpid"
fi
dpkg_step "dpkg -r" "$work/remove3.log" -r fdbhook
out=$(cat "$work/remove3.log")
expect_has "says running guests keep their ports" "$out" "keep their settings"
if [ -n "$watchpid" ]; then
	expect_has "stops the watcher" "$out" "stopped the watcher (pid $watchpid)."
	for _ in $(seq 20); do kill -0 "$watchpid" 2>/dev/null || break; sleep 0.1; done
	check "the watcher is gone" sh -c "! kill -0 $watchpid 2>/dev/null"
	wait "$watchpid" 2>/dev/null || true
fi
check_removed "after dpkg -r"
check "after dpkg -r: the admin's configuration is kept" cmp -s /etc/fdbhook/fdbhook.toml "$work/edited.toml"
check "port fdbtpkgtap0 untouched by the removal" port_state

echo "an admin's note" >/etc/fdbhook/local-notes
dpkg_step "dpkg -P with an admin's file in /etc/fdbhook" "$work/purge1.log" -P fdbhook
for f in fdbhook.toml fdbhook.toml.dpkg-dist fdbhook.toml.dpkg-old; do
	check "after dpkg -P: /etc/fdbhook/$f is gone" test ! -e "/etc/fdbhook/$f"
done
check "after dpkg -P: the admin's file stays" test -f /etc/fdbhook/local-notes
expect_eq "after dpkg -P: package state" "$(pkg_state)" not-installed
rm /etc/fdbhook/local-notes
rmdir /etc/fdbhook

FDBHOOK_NO_RELOAD=1 dpkg_step "dpkg -i once more" "$work/install4.log" -i "$deb"
dpkg_step "dpkg -P" "$work/purge2.log" -P fdbhook
check "after dpkg -P: /etc/fdbhook is gone" test ! -e /etc/fdbhook
check_removed "after dpkg -P"
check "after dpkg -P: no reload note left behind" test ! -e "$marker"
check "port fdbtpkgtap0 untouched by the purge" port_state

# ---------------------------------------------------------------------------
section "rpm: $rpm"

rpmarch=$(rpm -qp --qf '%{ARCH}' "$rpm")
expect_eq "rpm: name, version, release, license, URL" \
	"$(rpm -qp --qf '%{NAME}|%{VERSION}|%{RELEASE}|%{LICENSE}|%{URL}' "$rpm")" \
	"fdbhook|$version|1|Apache-2.0|https://github.com/fdbhook/fdbhook"
case "$debarch" in
amd64) want_rpmarch=x86_64 ;;
arm64) want_rpmarch=aarch64 ;;
*) want_rpmarch=$debarch ;;
esac
expect_eq "rpm: architecture" "$rpmarch" "$want_rpmarch"
rdesc=$(rpm -qp --qf '%{SUMMARY}\n%{DESCRIPTION}' "$rpm")
expect_has "rpm: description names libvirt 6.5" "$rdesc" "libvirt 6.5"
expect_has "rpm: description names Linux 3.17" "$rdesc" "Linux 3.17"
expect_eq "rpm: recommends libvirt-daemon" "$(rpm -qp --recommends "$rpm")" libvirt-daemon
expect_lacks "rpm: does not require libvirt" "$(rpm -qp --requires "$rpm")" libvirt

expect_eq "rpm -qlp: files" "$(rpm -qlp "$rpm")" "$(
	cat <<EOF
/etc/fdbhook
/etc/fdbhook/fdbhook.toml
/etc/libvirt/hooks/lxc.d
/etc/libvirt/hooks/lxc.d/fdbhook
/etc/libvirt/hooks/network.d
/etc/libvirt/hooks/network.d/fdbhook
/etc/libvirt/hooks/qemu.d
/etc/libvirt/hooks/qemu.d/fdbhook
/lib/systemd/system/fdbhook-metrics.service
/lib/systemd/system/fdbhook-metrics.timer
/lib/systemd/system/fdbhook.service
/usr/libexec/fdbhook
/usr/libexec/fdbhook/lxc-hook
/usr/libexec/fdbhook/network-hook
/usr/libexec/fdbhook/qemu-hook
/usr/sbin/fdbhook
/usr/share/doc/fdbhook
/usr/share/doc/fdbhook/LICENSE
/usr/share/doc/fdbhook/README.md
/usr/share/fdbhook
/usr/share/fdbhook/prometheus
/usr/share/fdbhook/prometheus/fdbhook.rules.yml
/usr/share/man/man8/fdbhook.8.gz
EOF
)"
sha() { sha256sum "$1" | cut -d' ' -f1; }
# nfpm stores symlinks without permission bits; rpm -V ignores a symlink's
# mode (checked in the scratch root below).
expect_eq "rpm: modes, owners, flags, link targets, digests" \
	"$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES} %{FILELINKTOS} %{FILEDIGESTS}\n]' "$rpm" |
		sed 's/ *$//')" "$(
		cat <<EOF
drwxr-xr-x root:root  /etc/fdbhook
-rw-r--r-- root:root cn /etc/fdbhook/fdbhook.toml  $(insum fdbhook.toml)
drwxr-xr-x root:root  /etc/libvirt/hooks/lxc.d
-rwxr-xr-x root:root  /etc/libvirt/hooks/lxc.d/fdbhook  $(insum lxc-hook)
drwxr-xr-x root:root  /etc/libvirt/hooks/network.d
-rwxr-xr-x root:root  /etc/libvirt/hooks/network.d/fdbhook  $(insum network-hook)
drwxr-xr-x root:root  /etc/libvirt/hooks/qemu.d
-rwxr-xr-x root:root  /etc/libvirt/hooks/qemu.d/fdbhook  $(insum qemu-hook)
-rw-r--r-- root:root  /lib/systemd/system/fdbhook-metrics.service  $(insum fdbhook-metrics.service)
-rw-r--r-- root:root  /lib/systemd/system/fdbhook-metrics.timer  $(insum fdbhook-metrics.timer)
-rw-r--r-- root:root  /lib/systemd/system/fdbhook.service  $(insum fdbhook.service)
drwxr-xr-x root:root  /usr/libexec/fdbhook
l--------- root:root  /usr/libexec/fdbhook/lxc-hook /etc/libvirt/hooks/lxc.d/fdbhook
l--------- root:root  /usr/libexec/fdbhook/network-hook /etc/libvirt/hooks/network.d/fdbhook
l--------- root:root  /usr/libexec/fdbhook/qemu-hook /etc/libvirt/hooks/qemu.d/fdbhook
-rwxr-xr-x root:root  /usr/sbin/fdbhook  $(insum fdbhook)
drwxr-xr-x root:root  /usr/share/doc/fdbhook
-rw-r--r-- root:root l /usr/share/doc/fdbhook/LICENSE  $(insum LICENSE)
-rw-r--r-- root:root d /usr/share/doc/fdbhook/README.md  $(insum README.md)
drwxr-xr-x root:root  /usr/share/fdbhook
drwxr-xr-x root:root  /usr/share/fdbhook/prometheus
-rw-r--r-- root:root  /usr/share/fdbhook/prometheus/fdbhook.rules.yml  $(insum fdbhook.rules.yml)
-rw-r--r-- root:root  /usr/share/man/man8/fdbhook.8.gz  $(sha "$work/deb/usr/share/man/man8/fdbhook.8.gz")
EOF
	)"
expect_eq "rpm --configfiles: %config(noreplace) fdbhook.toml" "$(rpm -qp --configfiles "$rpm")" /etc/fdbhook/fdbhook.toml
scripts=$(rpm -qp --scripts "$rpm")
for s in "preinstall scriptlet (using /bin/sh)" "postinstall scriptlet (using /bin/sh)" \
	"preuninstall scriptlet (using /bin/sh)" "postuninstall scriptlet (using /bin/sh)"; do
	expect_has "rpm --scripts: $s" "$scripts" "$s"
done
for s in PREIN:preinstall POSTIN:postinstall PREUN:preremove POSTUN:postremove; do
	check "rpm: %{${s%%:*}} is packaging/scripts/${s#*:}.sh" cmp -s "$work/rpmscripts/${s%%:*}" "$src/packaging/scripts/${s#*:}.sh"
done

section "rpm: install, verify, upgrade, erase in a scratch root (--noscripts)"

# Debian's rpm warns on every install; the rest of its output matters.
rroot=$work/rpmroot
rpm_root() {
	rpm --root "$rroot" "$@" 2>&1 | grep -v -e 'should not be used directly' -e 'assuming you know what you are doing'
	return "${PIPESTATUS[0]}"
}
mkdir "$rroot"
rpm --root "$rroot" --initdb
if out=$(rpm_root -i --noscripts "$rpm"); then pass "rpm -i"; else fail "rpm -i" "$out"; fi
if out=$(rpm_root -V fdbhook) && [ -z "$out" ]; then pass "rpm -V: clean"; else fail "rpm -V: clean" "$out"; fi
check "rpm: qemu.d/fdbhook is the hook program itself, not a link" \
	test -f "$rroot/etc/libvirt/hooks/qemu.d/fdbhook" -a ! -L "$rroot/etc/libvirt/hooks/qemu.d/fdbhook"
expect_eq "rpm: /usr/libexec/fdbhook/qemu-hook links to it" "$(readlink "$rroot/usr/libexec/fdbhook/qemu-hook")" /etc/libvirt/hooks/qemu.d/fdbhook
echo '# fdbt admin edit' >>"$rroot/etc/fdbhook/fdbhook.toml"
cp "$rroot/etc/fdbhook/fdbhook.toml" "$work/rpm-edited.toml"
next_rpm=$(echo "$work"/next/fdbhook-*.rpm)
if out=$(rpm_root -U --noscripts "$next_rpm"); then pass "rpm -U to $next_version"; else fail "rpm -U to $next_version" "$out"; fi
expect_eq "rpm: installed version" "$(rpm --root "$rroot" -q --qf '%{VERSION}' fdbhook 2>/dev/null)" "$next_version"
check "rpm -U: the admin's edit survives" cmp -s "$rroot/etc/fdbhook/fdbhook.toml" "$work/rpm-edited.toml"
check "rpm -U: the new default is beside it as fdbhook.toml.rpmnew" cmp -s "$rroot/etc/fdbhook/fdbhook.toml.rpmnew" "$work/next.toml"
if out=$(rpm_root -e --noscripts fdbhook); then pass "rpm -e"; else fail "rpm -e" "$out"; fi
check "rpm -e: the hook and its link are gone" \
	test ! -e "$rroot/etc/libvirt/hooks/qemu.d/fdbhook" -a ! -L "$rroot/usr/libexec/fdbhook/qemu-hook"
check "rpm -e: the admin's edit is kept as fdbhook.toml.rpmsave" cmp -s "$rroot/etc/fdbhook/fdbhook.toml.rpmsave" "$work/rpm-edited.toml"

# ---------------------------------------------------------------------------
section "summary"
printf '  %-60s %9s bytes\n' "$(basename "$deb")" "$(stat -c %s "$deb")"
printf '  %-60s %9s bytes\n' "$(basename "$rpm")" "$(stat -c %s "$rpm")"
echo "  took $(($(date +%s) - started)) s"
echo "packages: $passed passed, $failed failed"
[ "$failed" = 0 ]
