#!/usr/bin/env bash
# The distribution-host suite: the .deb on a stock Debian host as admins
# run it. Builds (once, cached) a Debian image with systemd as init,
# AppArmor and Debian's libvirt, boots it under QEMU (TCG), and there runs
# test/distro/in-host.sh: install over a running libvirtd, guests and
# networks starting, the watcher under systemd, doctor, upgrade from the old
# layout of symbolic-link hooks (which AppArmor denies: that check expects
# the failure), remove and purge. Prints one line per check and the timings.
#
# Usage: test/distro/run.sh   (after make packages: needs dist/fdbhook_*.deb)
#
# Environment:
#   FDBHOOK_DISTRO_CACHE    image cache (default /var/cache/fdbhook-distro)
#   FDBHOOK_DISTRO_SUITE    Debian release to boot (default trixie)
#   FDBHOOK_DISTRO_MIRROR   Debian archive (default: the host's own apt source)
#   FDBHOOK_DISTRO_TIMEOUT  seconds before the host is killed (default 900)
#   FDBHOOK_DISTRO_KEEP=1   keep the work directory (console log, results)
#   FDBHOOK_TEST_LOCK_HELD=1  the caller holds /run/fdbhook-test.lock
#
# Exit status 0 when every check passed; 1 otherwise, also when the host
# never reported (boot failure, timeout). It skips, saying why, only when
# QEMU cannot run at all and CI is not "true"; under CI=true that fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${FDBHOOK_DISTRO_CACHE:-/var/cache/fdbhook-distro}
suite=${FDBHOOK_DISTRO_SUITE:-trixie}
vm_timeout=${FDBHOOK_DISTRO_TIMEOUT:-900}
marker=FDBHOOK-DISTRO-DONE
export PATH="/usr/local/go/bin:$PATH:/usr/sbin:/usr/bin:/sbin:/bin"

log() { printf 'distro: %s\n' "$*" >&2; }
die() {
	printf 'distro: FAIL: %s\n' "$*" >&2
	exit 1
}
unavailable() {
	[ "${CI:-}" != true ] || die "$* (CI=true: the distribution-host suite must run, not skip)"
	echo "SKIP: $*"
	exit 0
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.0f", b - a }'; }

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, image files)"
t_start=$(now)

deb=$(echo "$root"/dist/fdbhook_*.deb)
[ -f "$deb" ] || die "no dist/fdbhook_*.deb: run 'make packages' first"

# --- host packages, and the lock ----------------------------------------------
deps() {
	local i
	for i in 1 2 3 4 5 6; do
		"$root/test/deps.sh" "$@" && return 0
		log "package installation failed (dpkg busy?), retry $i in 20 s"
		sleep 20
	done
	return 1
}
if ! deps mmdebstrap qemu-system-x86 e2fsprogs debian-archive-keyring; then
	command -v qemu-system-x86_64 >/dev/null || unavailable "qemu-system-x86_64 is not installed and could not be installed"
	die "could not install mmdebstrap, qemu-system-x86, e2fsprogs"
fi
if ! probe=$(printf 'quit\n' | timeout 60 qemu-system-x86_64 -accel tcg -machine none \
	-display none -nodefaults -no-user-config -monitor stdio 2>&1); then
	unavailable "qemu-system-x86_64 cannot run with TCG here: $(printf '%s' "$probe" | tail -n 3 | tr '\n' ' ')"
fi

if [ "${FDBHOOK_TEST_LOCK_HELD:-}" != 1 ]; then
	exec 9>/run/fdbhook-test.lock
	log "waiting for /run/fdbhook-test.lock"
	flock -w 1200 9 || die "/run/fdbhook-test.lock still held after 20 min"
fi
t_locked=$(now)

work=$(mktemp -d /tmp/fdbhook-distro.XXXXXX)
cleanup() {
	local rc=$?
	[ -z "${build_tmp:-}" ] || rm -rf "$build_tmp"
	if [ "${FDBHOOK_DISTRO_KEEP:-}" = 1 ] || [ "$rc" != 0 ]; then
		log "work directory kept: $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT

# boot_host IMAGE_DIR WORK_IMG LOG_DIR SNAPSHOT: boots the host image, with
# the work disk when WORK_IMG is set; the serial console goes to
# LOG_DIR/console.log, the second serial port to LOG_DIR/results.log.
# SNAPSHOT=on leaves the image as it was. Returns QEMU's exit status.
#
# TCG runs the two vCPUs on one thread (thread=single). With a thread per
# vCPU, QEMU (7.2, Debian 12's) mishandles the kernel rewriting its own
# text, which it does at every static key flip (cgroups, netfilter,
# tracepoints): a CI run's host panicked in the page allocator with its RIP
# inside a static branch's NOP ("Fatal exception in interrupt"), and a
# kernel that flips the kmalloc tracepoint while its other vCPU runs
# through kmalloc hangs (soft lockups, not one flip done in 200 s), where
# with one thread it flips about 330 times in 90 s. One thread costs this
# suite about 90 s.
boot_host() {
	local dir=$1 work_img=$2 logs=$3 snapshot=$4 disk=()
	[ -z "$work_img" ] || disk=(-drive "file=$work_img,format=raw,if=virtio,readonly=on")
	timeout -k 10 "$vm_timeout" qemu-system-x86_64 -accel tcg,thread=single -machine q35 -cpu max -smp 2 -m 4096 \
		-nodefaults -no-user-config -display none -no-reboot \
		-kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
		-append 'root=/dev/vda rw console=ttyS0 panic=1 systemd.show_status=0 quiet' \
		-drive "file=$dir/root.img,format=raw,if=virtio,snapshot=$snapshot" "${disk[@]}" \
		-serial "file:$logs/console.log" -serial "file:$logs/results.log" </dev/null >"$logs/qemu.log" 2>&1
}

# --- the image, cached under a hash of its recipe -------------------------------
# The host's own Debian archive (its apt source), with the suite swapped.
host_mirror() {
	local uri
	uri=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' 2>/dev/null |
		grep -v -e security -e '^$' | grep -i debian | head -n 1 || true)
	echo "${uri:-http://deb.debian.org/debian/}"
}
mirror=${FDBHOOK_DISTRO_MIRROR:-$(host_mirror)}

# What the host has besides the important priority: systemd as init, the
# cloud kernel with its initramfs, AppArmor (the kernel package recommends
# it, so a default install has it), Debian's libvirt with the QEMU and LXC
# drivers, QEMU.
packages=systemd-sysv,udev,linux-image-cloud-amd64,initramfs-tools,apparmor,libvirt-daemon-system,libvirt-daemon-driver-lxc,libvirt-clients,qemu-system-x86,iproute2,procps,kmod

# The unit that runs the suite: mounts the work disk (label fdbwork) once
# boot is over and runs its in-host.sh, which powers the host off. Without
# a work disk (the image's first boot) it powers off at once.
read -r -d '' unit <<'EOF' || true
[Unit]
Description=fdbhook distribution-host suite
After=libvirtd.service apparmor.service

[Service]
Type=simple
ExecStart=/bin/sh -c 'mkdir -p /mnt/work && mount -o ro LABEL=fdbwork /mnt/work && exec /bin/bash /mnt/work/in-host.sh'
ExecStopPost=-/bin/systemctl --no-block poweroff
TimeoutStopSec=10s
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF

# Run inside the image at build time: the unit, and nothing that slows a
# boot or a shutdown down (guests are destroyed by the suite itself).
read -r -d '' customize <<'EOF' || true
set -e
echo fdbhook-distro >"$1/etc/hostname"
printf '/dev/vda / ext4 rw,noatime 0 1\n' >"$1/etc/fstab"
chroot "$1" systemctl enable fdbhook-distro.service
for u in libvirt-guests.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
	man-db.timer dpkg-db-backup.timer systemd-timesyncd.service; do
	chroot "$1" systemctl disable "$u" 2>/dev/null || true
done
chroot "$1" systemctl mask systemd-networkd-wait-online.service 2>/dev/null || true
EOF

key=$(printf '%s\n' "$suite" "$packages" "$unit" "$customize" | sha256sum | cut -c1-16)
image_dir=$cache/$suite-$key
t_image=$(now)
mkdir -p "$cache"
exec 8>"$cache/.lock"
flock 8
if [ -s "$image_dir/root.img" ] && [ -s "$image_dir/vmlinuz" ] && [ -s "$image_dir/initrd.img" ]; then
	image_built=no
	log "image $image_dir from the cache"
else
	image_built=yes
	log "building the $suite image from $mirror (recipe $key)"
	build_tmp=$(mktemp -d "$cache/.build.XXXXXX")
	printf '%s\n' "$unit" >"$build_tmp/unit"
	mmdebstrap --variant=important --include="$packages" \
		--customize-hook="upload $build_tmp/unit /etc/systemd/system/fdbhook-distro.service" \
		--customize-hook="$customize" \
		"$suite" "$build_tmp/rootfs" "deb $mirror $suite main" >"$build_tmp/mmdebstrap.log" 2>&1 ||
		die "mmdebstrap failed: $(tail -n 20 "$build_tmp/mmdebstrap.log")"
	mkdir "$build_tmp/out"
	cp "$(readlink -f "$build_tmp/rootfs/vmlinuz")" "$build_tmp/out/vmlinuz"
	cp "$(readlink -f "$build_tmp/rootfs/initrd.img")" "$build_tmp/out/initrd.img"
	chroot "$build_tmp/rootfs" dpkg-query -W -f '${Package} ${Version}\n' >"$build_tmp/out/packages"
	mkfs.ext4 -q -L root -d "$build_tmp/rootfs" "$build_tmp/out/root.img" 4G ||
		die "mkfs.ext4 -d of the image failed"
	# Its first boot, kept: AppArmor compiles its policy cache
	# (/var/cache/apparmor), which saves each run's boot half a minute.
	log "first boot of the image ($(secs "$t_image") s so far)"
	boot_host "$build_tmp/out" "" "$build_tmp" off ||
		die "the first boot of the image failed: $(tail -n 20 "$build_tmp/console.log" | tr -d '\r')"
	debugfs -R 'ls /var/cache/apparmor' "$build_tmp/out/root.img" 2>/dev/null | grep -q '[0-9a-f]\{8\}\.0' ||
		die "the first boot of the image left no AppArmor policy cache in /var/cache/apparmor"
	rm -rf "$image_dir"
	mv "$build_tmp/out" "$image_dir"
	rm -rf "$build_tmp"
	build_tmp=
	# Images of other recipes are not needed any more.
	find "$cache" -mindepth 1 -maxdepth 1 -type d -name "$suite-*" ! -path "$image_dir" -exec rm -rf {} +
fi
flock -u 8
t_image_done=$(now)
log "image ready ($(secs "$t_image" "$t_image_done") s)"
log "image: $(grep -E '^(libvirt-daemon|linux-image-[0-9]|apparmor|systemd|qemu-system-x86) ' "$image_dir/packages" | tr '\n' ' ')"

# --- the work disk: what the host runs and installs ------------------------------
payload=$work/payload
mkdir -p "$payload/old"
cp "$deb" "$payload/"
cp "$here/in-host.sh" "$root/test/checks.sh" "$payload/"
# The old layout (hooks as links into /usr/libexec/fdbhook), from the same
# binaries, at a lower version, so that installing this tree's .deb over it
# is an upgrade.
FDBHOOK_PKG_NFPM=$here/testdata/nfpm-links.yaml FDBHOOK_PKG_FORMATS=deb FDBHOOK_PKG_VERSION=0.0.1~links \
	FDBHOOK_PKG_DIST=$payload/old "$root/packaging/build.sh" >"$work/build-old.log" 2>&1 ||
	die "building the old-layout package failed: $(cat "$work/build-old.log")"
old_listing=$(dpkg-deb -c "$payload"/old/fdbhook_*.deb)
grep -q 'etc/libvirt/hooks/qemu.d/fdbhook -> /usr/libexec/fdbhook/qemu-hook' <<<"$old_listing" ||
	die "the old-layout package has no qemu.d/fdbhook link to /usr/libexec/fdbhook/qemu-hook"
rm -f "$payload"/old/fdbhook-inputs.sha256
mkfs.ext4 -q -L fdbwork -d "$payload" "$work/work.img" 128M

# --- boot ------------------------------------------------------------------------
t_boot=$(now)
log "booting the $suite host under QEMU TCG (timeout ${vm_timeout}s)"
qemu_rc=0
boot_host "$image_dir" "$work/work.img" "$work" on || qemu_rc=$?
t_end=$(now)

# --- report ------------------------------------------------------------------------
# The start of a kernel failure on the console.
oops_re='(Oops:|BUG:|general protection fault|Kernel panic - not syncing|------------\[ cut here \]------------)'
results=$work/results.log
tr -d '\r' <"$results" >"$work/results.txt" 2>/dev/null || : >"$work/results.txt"
echo "---- distribution host: $suite ($(grep -E '^libvirt-daemon ' "$image_dir/packages" | cut -d' ' -f2)) ----"
# Details of failed checks and the host's log lines come first, the table last.
grep -av -E '^(  ok    |  FAIL  |TIME |'"$marker"')' "$work/results.txt" | sed 's/^/  | /' || true
echo "---- checks ----"
grep -aE '^  (ok|FAIL)  ' "$work/results.txt" || true
booted=$(awk '$1 == "TIME" && $2 == "booted" { print $3 }' "$work/results.txt")
ran=$(awk '$1 == "TIME" && $2 == "ran" { print $3 }' "$work/results.txt")
echo "---- timings ----"
printf '  image  %5s s (%s)\n' "$(secs "$t_image" "$t_image_done")" "$([ "$image_built" = yes ] && echo built || echo cached)"
printf '  boot   %5s s (kernel start to the suite unit, uptime in the host)\n' "${booted:-?}"
printf '  run    %5s s (the checks, in the host)\n' "${ran:-?}"
printf '  QEMU   %5s s (start to power-off, exit %s)\n' "$(secs "$t_boot" "$t_end")" "$qemu_rc"
printf '  total   %4s s, of which %s s waiting for packages and the lock\n' "$(secs "$t_start")" "$(secs "$t_start" "$t_locked")"

done_line=$(grep -a "^$marker " "$work/results.txt" | tail -n 1 || true)
if [ -z "$done_line" ]; then
	# The console from the kernel's first failure line (80 lines), or its
	# last 40 lines when the kernel did not fail.
	tr -d '\r' <"$work/console.log" >"$work/console.txt" || true
	oops=$(grep -a -n -m 1 -E "$oops_re" "$work/console.txt" || true)
	if [ -n "$oops" ]; then
		tail -n "+${oops%%:*}" "$work/console.txt" | head -n 80
	else
		tail -n 40 "$work/console.txt"
	fi | sed 's/^/  console| /' >&2 || true
	[ "$qemu_rc" = 124 ] && die "the host timed out after ${vm_timeout}s without finishing"
	oops=${oops#*:}
	[ -z "$oops" ] || die "the host's kernel failed: ${oops#*] } (qemu exit $qemu_rc; console log in $work)"
	die "the host stopped without finishing (qemu exit $qemu_rc; console log in $work)"
fi
read -r _ npass nfail <<<"$done_line"
echo "distro: $npass passed, $nfail failed"
[ "$nfail" = 0 ] || die "$nfail checks failed"
