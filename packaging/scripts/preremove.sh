#!/bin/sh
# fdbhook: runs before the package's files are removed.
#   Debian prerm: remove | upgrade new-version | deconfigure | failed-upgrade
#   RPM %preun:   0 (erase) | 1 (upgrade)
#
# Removing the package must not disturb running guests: their ports keep
# learning and flooding off and their static FDB entries until each guest
# stops (the kernel then deletes the tap and what pointed at it). Nothing on
# any bridge is changed here; libvirt skips hook entries that no longer exist,
# so no daemon needs a reload either.
set -e

case "$1" in
remove | 0)
	echo "fdbhook: removing the libvirt hooks; ports of running guests keep their settings and static FDB entries until the guests stop."
	# Stop the watcher: with systemd its unit, otherwise the process that
	# holds the watcher's lock, if it is the installed binary.
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl stop fdbhook.service fdbhook-metrics.timer >/dev/null 2>&1 || true
		systemctl disable fdbhook.service fdbhook-metrics.timer >/dev/null 2>&1 || true
	else
		pid=
		{ IFS=' ' read -r pid _ </run/fdbhook/watch.lock; } 2>/dev/null || true
		case "$pid" in '' | *[!0-9]*) ;; *)
			if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/sbin/fdbhook ] && kill "$pid" 2>/dev/null; then
				echo "fdbhook: stopped the watcher (pid $pid)."
			fi
			;;
		esac
	fi
	;;
esac
exit 0
