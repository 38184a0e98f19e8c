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
	;;
esac
exit 0
