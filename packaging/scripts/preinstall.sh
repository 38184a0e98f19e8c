#!/bin/sh
# fdbhook: runs before the package's files are unpacked.
#   Debian preinst: install [old-version] | upgrade old-version | abort-upgrade
#   RPM %pre:       1 (install) | 2 (upgrade)
#
# libvirt only notices the first hook in /etc/libvirt/hooks/qemu.d/,
# network.d/ and lxc.d/ after a restart or SIGHUP. Whether this installation adds the
# hook entries (a first install, or a reinstall after "dpkg -r" left only the
# configuration behind) is known only now, before the files land; leave a
# note for the post-install script. An upgrade finds the entries in place
# and replaces them: it records since when they have been there (the first
# one's ctime) in /run/fdbhook/hooks-since, for "fdbhook doctor" to tell a
# daemon that has run them since from one started before them.
set -e

marker=/run/fdbhook-reload-pending
since=/run/fdbhook/hooks-since

case "$1" in
install | upgrade | 1 | 2)
	# Regular files, or, from older packages, links into
	# /usr/libexec/fdbhook: -e follows a link to what libvirt runs.
	if [ -e /etc/libvirt/hooks/qemu.d/fdbhook ] && [ -e /etc/libvirt/hooks/network.d/fdbhook ] &&
		[ -e /etc/libvirt/hooks/lxc.d/fdbhook ]; then
		rm -f "$marker"
		if [ ! -s "$since" ] && t=$(stat -c %Z /etc/libvirt/hooks/qemu.d/fdbhook 2>/dev/null); then
			{ mkdir -p /run/fdbhook && echo "$t" >"$since"; } 2>/dev/null || true
		fi
	else
		rm -f "$since"
		# /run may be missing in a chroot; the post-install script then
		# falls back to its arguments.
		: >"$marker" 2>/dev/null || true
	fi
	;;
esac
exit 0
