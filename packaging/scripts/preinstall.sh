#!/bin/sh
# fdbhook: runs before the package's files are unpacked.
#   Debian preinst: install [old-version] | upgrade old-version | abort-upgrade
#   RPM %pre:       1 (install) | 2 (upgrade)
#
# libvirt only notices the first hook in /etc/libvirt/hooks/qemu.d/,
# network.d/ and lxc.d/ after a restart or SIGHUP. Whether this installation adds the
# hook entries (a first install, or a reinstall after "dpkg -r" left only the
# configuration behind) is known only now, before the files land; leave a
# note for the post-install script. An upgrade finds the entries in place.
set -e

marker=/run/fdbhook-reload-pending

case "$1" in
install | upgrade | 1 | 2)
	if [ -L /etc/libvirt/hooks/qemu.d/fdbhook ] && [ -L /etc/libvirt/hooks/network.d/fdbhook ] &&
		[ -L /etc/libvirt/hooks/lxc.d/fdbhook ]; then
		rm -f "$marker"
	else
		# /run may be missing in a chroot; the post-install script then
		# falls back to its arguments.
		: >"$marker" 2>/dev/null || true
	fi
	;;
esac
exit 0
