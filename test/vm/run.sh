#!/usr/bin/env bash
# Boots Debian's cloud kernel under QEMU (TCG) with a busybox initramfs and runs
# the vm-tagged Go tests of this directory inside it, against the real static
# bin/qemu-hook and bin/network-hook. The development kernel lacks
# CONFIG_BRIDGE_VLAN_FILTERING; this kernel has it, so VLAN filtering and the
# bridge's promiscuity management can be checked for real.
#
# Usage: test/vm/run.sh [go test flags for the in-VM binary, e.g. -test.run Promisc]
#
# Environment:
#   FDBHOOK_VM_CACHE    unpacked kernel cache (default /var/cache/fdbhook-vm)
#   FDBHOOK_VM_BIN      directory holding qemu-hook and network-hook (default bin/)
#   FDBHOOK_VM_TIMEOUT  seconds before the VM is killed (default 600)
#   FDBHOOK_VM_KEEP=1   keep the work directory (initramfs, console log)
#
# Exit status: 0 when every test passed (or, only when QEMU cannot run at all
# and CI is not "true", after printing "SKIP: <reason>"); 1 when a test
# failed, the VM never printed its result marker (kernel panic, init failure,
# timeout), or QEMU cannot run under CI=true (CI installs what the suite
# needs: a skip there would hide a missing step).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${FDBHOOK_VM_CACHE:-/var/cache/fdbhook-vm}
bindir=${FDBHOOK_VM_BIN:-$root/bin}
vm_timeout=${FDBHOOK_VM_TIMEOUT:-600}
[ "$vm_timeout" -ge 120 ] || vm_timeout=120
meta=linux-image-cloud-amd64
# Loaded in this order; dependencies found by modinfo are loaded before.
want_modules=(llc stp bridge tun veth tls bonding)
marker=FDBHOOK-VM-RESULT
# The caller's PATH first: a test of this script can shadow a program.
export PATH="/usr/local/go/bin:$PATH:/usr/sbin:/usr/bin:/sbin:/bin"

log() { printf 'vm: %s\n' "$*" >&2; }
die() {
	printf 'vm: FAIL: %s\n' "$*" >&2
	exit 1
}
# The suite cannot run here at all: skip saying why, or fail under CI=true.
unavailable() {
	[ "${CI:-}" != true ] || die "$* (CI=true: the VM suite must run, not skip)"
	echo "SKIP: $*"
	exit 0
}
# ldd exits non-zero on a static binary; only its message tells.
is_static() {
	local out
	out=$(LC_ALL=C ldd "$1" 2>&1 || true)
	grep -Eq 'not a dynamic executable|statically linked' <<<"$out"
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

t_start=$(now)
work=$(mktemp -d /tmp/fdbhook-vm.XXXXXX)
fetch_tmp=
fetched=0
cleanup() {
	[ -z "$fetch_tmp" ] || rm -rf "$fetch_tmp"
	if [ "${FDBHOOK_VM_KEEP:-}" = 1 ]; then
		log "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# --- 1. host packages -------------------------------------------------------
if ! "$root/test/deps.sh" qemu-system-x86 busybox-static cpio iproute2 kmod xz-utils zstd; then
	command -v qemu-system-x86_64 >/dev/null ||
		unavailable "qemu-system-x86_64 is not installed and could not be installed"
	die "could not install the packages the VM needs"
fi

# QEMU must at least start with TCG; this is the only reason to skip.
if ! probe=$(printf 'quit\n' | timeout 60 qemu-system-x86_64 -accel tcg -machine none \
	-display none -nodefaults -no-user-config -monitor stdio 2>&1); then
	unavailable "qemu-system-x86_64 cannot run with TCG here: $(printf '%s' "$probe" | tail -n 3 | tr '\n' ' ')"
fi

for b in qemu-hook network-hook; do
	[ -x "$bindir/$b" ] || die "$bindir/$b is missing: run 'make build' first"
	is_static "$bindir/$b" ||
		die "$bindir/$b is dynamically linked; build it with CGO_ENABLED=0 (make build)"
done

# --- 2. kernel and modules, cached -----------------------------------------
# Resolves the concrete kernel package the metapackage points to and its
# candidate version; prints "NAME VERSION" or nothing.
resolve_kernel() {
	local pkg ver
	pkg=$(apt-cache depends "$meta" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	[ -n "$pkg" ] || return 0
	ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }')
	[ -n "$ver" ] && [ "$ver" != "(none)" ] && echo "$pkg $ver"
}

# Decompresses a module file (.ko, .ko.xz, .ko.zst, .ko.gz) to $2.
unpack_module() {
	case $1 in
	*.ko) cp "$1" "$2" ;;
	*.ko.xz) xz -dc "$1" >"$2" ;;
	*.ko.zst) zstd -qdc "$1" >"$2" ;;
	*.ko.gz) gzip -dc "$1" >"$2" ;;
	*) die "unknown module format: $1" ;;
	esac
}

# Downloads and unpacks kernel package $1 version $2 into cache entry $3:
# vmlinuz, modules/NAME.ko (decompressed) and modules.order (load order).
# Sets fetched=1, or fetched=0 when the download failed. (Called as a plain
# command, not in a condition, so that set -e still applies inside.)
fetch_kernel() {
	local pkg=$1 ver=$2 dest=$3 tmp kdir
	tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
	fetch_tmp=$tmp
	log "downloading $pkg $ver"
	if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null); then
		log "apt-get download $pkg=$ver failed"
		fetched=0
		return 0
	fi
	dpkg-deb -x "$tmp"/*.deb "$tmp/root"
	kdir=$(find "$tmp/root/lib/modules" "$tmp/root/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n 1 || true)
	[ -n "$kdir" ] || die "$pkg has no /lib/modules/<version>"
	mkdir -p "$tmp/entry/modules"
	cp "$tmp"/root/boot/vmlinuz-* "$tmp/entry/vmlinuz"
	cp "$tmp"/root/boot/config-* "$tmp/entry/config"

	declare -A seen=()
	local order=()
	add_module() {
		local name=$1 file dep
		[ -z "${seen[$name]:-}" ] || return 0
		seen[$name]=1
		# Module names use '_' where file names may use '-'.
		file=$(find "$kdir" -regextype posix-extended \
			-regex ".*/${name//_/[-_]}\.ko(\.xz|\.zst|\.gz)?" -print -quit)
		[ -n "$file" ] || die "module $name not found in $pkg"
		unpack_module "$file" "$tmp/entry/modules/$name.ko"
		for dep in $(modinfo -F depends "$tmp/entry/modules/$name.ko" | tr ',' ' '); do
			add_module "$dep"
		done
		order+=("$name")
	}
	local m
	for m in "${want_modules[@]}"; do add_module "$m"; done
	printf '%s\n' "${order[@]}" >"$tmp/entry/modules.order"
	echo "$pkg $ver" >"$tmp/entry/package"
	rm -rf "$dest"
	mv "$tmp/entry" "$dest"
	rm -rf "$tmp"
	fetch_tmp=
	fetched=1
}

t_kernel=$(now)
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
kernel=$(resolve_kernel)
if [ -z "$kernel" ]; then
	log "apt lists do not resolve $meta; running apt-get update"
	"$root/test/apt-locked.sh" apt-get update -qq || true
	kernel=$(resolve_kernel)
fi
if [ -n "$kernel" ]; then
	read -r kpkg kver <<<"$kernel"
	entry="$cache/${kpkg}_$kver"
	if [ -s "$entry/vmlinuz" ] && [ -s "$entry/modules.order" ]; then
		log "kernel $kpkg $kver from cache $entry"
	else
		fetch_kernel "$kpkg" "$kver" "$entry"
		if [ "$fetched" = 1 ]; then
			# Older kernels are not needed any more.
			find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'linux-image-*' ! -path "$entry" -exec rm -rf {} +
			log "kernel $kpkg $kver unpacked into $entry ($(elapsed "$t_kernel"))"
		else
			entry=
		fi
	fi
fi
if [ -z "$kernel" ] || [ -z "$entry" ]; then
	entry=$(find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'linux-image-*' | sort -V | tail -n 1)
	[ -n "$entry" ] || die "cannot get $meta and nothing is cached in $cache"
	log "using the cached $(cat "$entry/package") instead"
fi
# A private copy, so a concurrent run that replaces the cache entry cannot
# pull files from under this one.
cp -r "$entry" "$work/kernel"
flock -u 9
kernel_dir=$work/kernel
grep -q '^CONFIG_BRIDGE_VLAN_FILTERING=y' "$kernel_dir/config" ||
	die "$(cat "$kernel_dir/package") has no CONFIG_BRIDGE_VLAN_FILTERING"

# --- 3. in-VM test binary ---------------------------------------------------
t_build=$(now)
(cd "$root" && CGO_ENABLED=0 go test -c -tags vm -o "$work/fdbhook-vm.test" ./test/vm/) ||
	die "building the in-VM test binary failed"
log "test binary built ($(elapsed "$t_build"))"

# --- 4. initramfs ------------------------------------------------------------
stage=$work/stage
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,var,lib/modules}
ln -s ../run "$stage/var/run"
cp /bin/busybox "$stage/bin/busybox"
is_static "$stage/bin/busybox" ||
	die "/bin/busybox is not static (is busybox-static installed?)"
# Busybox applets as links, except the ones the tests need for real.
for applet in $(busybox --list); do
	case $applet in ip | bridge | busybox) continue ;; esac
	ln -s busybox "$stage/bin/$applet"
done

# Real iproute2, with the shared libraries it loads.
copy_with_libs() {
	local src dst=$2 lib
	src=$(readlink -f "$(command -v "$1")")
	cp "$src" "$stage$dst"
	for lib in $(ldd "$src" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'); do
		[ -e "$stage$lib" ] || cp -L --parents "$lib" "$stage"
	done
}
copy_with_libs ip /usr/sbin/ip
copy_with_libs bridge /usr/sbin/bridge

cp "$bindir/qemu-hook" "$bindir/network-hook" "$stage/bin/"
cp "$work/fdbhook-vm.test" "$stage/fdbhook-vm.test"
cp "$kernel_dir"/modules/*.ko "$stage/lib/modules/"
cp "$kernel_dir/modules.order" "$stage/lib/modules/modules.order"
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true

# Arguments for the test binary, one per line.
: >"$stage/test.args"
for a in "$@"; do printf '%s\n' "$a" >>"$stage/test.args"; done

cat >"$stage/init" <<EOF
#!/bin/sh
# PID 1: mount, load modules, run the tests, report, power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp FDBHOOK_VM=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
rc=0
while read -r m; do
	insmod /lib/modules/\$m.ko || { echo "vm-init: insmod \$m failed"; rc=90; }
done </lib/modules/modules.order
/usr/sbin/ip link set lo up
echo "vm-init: kernel \$(uname -r), modules: \$(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
if [ \$rc -eq 0 ]; then
	set --
	while IFS= read -r a; do set -- "\$@" "\$a"; done </test.args
	/fdbhook-vm.test -test.v -test.count=1 -test.timeout=$((vm_timeout - 60))s "\$@"
	rc=\$?
fi
echo "$marker exit=\$rc"
sync
poweroff -f
EOF
chmod 755 "$stage/init"

(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner root:root --quiet) |
	gzip -1 >"$work/initrd.gz"
log "initramfs $(du -h "$work/initrd.gz" | cut -f1) built ($(elapsed "$t_build") since build start)"

# --- 5. boot ------------------------------------------------------------------
t_boot=$(now)
log "booting $(cat "$kernel_dir/package") under qemu TCG (timeout ${vm_timeout}s)"
set +e
# One TCG thread for both vCPUs: with a thread each, QEMU mishandles the
# kernel rewriting its own text at a static key flip, and the kernel panics
# or hangs (test/distro/run.sh, boot_host).
timeout -k 10 "$vm_timeout" qemu-system-x86_64 -accel tcg,thread=single -smp 2 -m 512 -nographic -no-reboot \
	-nic none -kernel "$kernel_dir/vmlinuz" -initrd "$work/initrd.gz" \
	-append 'console=ttyS0 panic=-1 quiet' </dev/null 2>&1 |
	sed -u -e 's/\r$//' -e 's/\x1bc//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' | tee "$work/console.log"
qemu_rc=${PIPESTATUS[0]}
set -e
log "VM ran $(elapsed "$t_boot"), total $(elapsed "$t_start"), qemu exit $qemu_rc"

result=$(grep -a "^$marker exit=" "$work/console.log" | tail -n 1 | sed 's/.*exit=//' || true)
echo "---- vm test summary ----"
grep -aE '^(=== NAME|--- (PASS|FAIL|SKIP)|    --- (PASS|FAIL|SKIP))' "$work/console.log" | grep -v '^=== NAME' || true
grep -aE 'promiscuity before=|locked: own=' "$work/console.log" | sed 's/^ *//' || true
if [ -z "$result" ]; then
	[ "$qemu_rc" = 124 ] && die "VM timed out after ${vm_timeout}s without a result"
	die "VM stopped without a result marker (kernel panic or init failure; qemu exit $qemu_rc)"
fi
[ "$result" = 0 ] || die "tests in the VM failed (exit $result)"
echo "vm: PASS ($(elapsed "$t_start"))"
