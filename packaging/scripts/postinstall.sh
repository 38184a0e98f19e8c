#!/bin/sh
# fdbhook: runs after the package's files are in place.
#   Debian postinst: configure [most-recently-configured-version] | abort-*
#   RPM %post:       1 (install) | 2 (upgrade)
#
# On an install (not an upgrade) it tells the admin once that libvirt must
# reload to notice the hooks, and sends SIGHUP to the running libvirt daemons
# unless the admin opted out (FDBHOOK_NO_RELOAD=1, or /etc/fdbhook/no-reload).
# A daemon is never restarted, and never signalled during an upgrade: the
# hook entries already existed then. Nothing on any bridge is changed here.
set -e

marker=/run/fdbhook-reload-pending
fresh=no
case "$1" in
configure) [ -n "${2:-}" ] || fresh=yes ;;
1) fresh=yes ;;
abort-*) exit 0 ;;
esac
if [ -e "$marker" ]; then
	fresh=yes
	rm -f "$marker"
fi
[ "$fresh" = yes ] || exit 0

# reload_daemons sends SIGHUP to each system libvirt daemon that is running
# (its pid file names a live process of that name) and prints what it did.
reload_daemons() {
	sent=
	for daemon in libvirtd virtqemud virtnetworkd; do
		pidfile=/run/$daemon.pid
		[ -r "$pidfile" ] || continue
		read -r pid <"$pidfile" || continue
		case "$pid" in '' | *[!0-9]*) continue ;; esac
		read -r comm <"/proc/$pid/comm" 2>/dev/null || continue
		[ "$comm" = "$daemon" ] || continue
		if kill -HUP "$pid" 2>/dev/null; then
			sent="$sent $daemon (pid $pid)"
		fi
	done
	if [ -n "$sent" ]; then
		echo "fdbhook: sent SIGHUP to$sent."
	else
		echo "fdbhook: no libvirt daemon is running; it will find the hooks when it starts."
	fi
}

echo "fdbhook: installed the libvirt hooks /etc/libvirt/hooks/qemu.d/fdbhook and network.d/fdbhook."
echo "fdbhook: libvirt only notices the first hook in those directories after a restart or SIGHUP."
if [ "${FDBHOOK_NO_RELOAD:-}" = 1 ]; then
	echo "fdbhook: not reloading libvirt (FDBHOOK_NO_RELOAD=1); send SIGHUP to libvirtd (or virtqemud and virtnetworkd) yourself."
elif [ -e /etc/fdbhook/no-reload ]; then
	echo "fdbhook: not reloading libvirt (/etc/fdbhook/no-reload exists); send SIGHUP to libvirtd (or virtqemud and virtnetworkd) yourself."
else
	reload_daemons
fi
echo "fdbhook: nothing is managed until bridges or networks are listed in /etc/fdbhook/fdbhook.toml;"
echo "fdbhook: then check the host with /usr/libexec/fdbhook/qemu-hook doctor, and bring guests"
echo "fdbhook: that are already running under management with /usr/libexec/fdbhook/qemu-hook reconcile"
exit 0
