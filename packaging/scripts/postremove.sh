#!/bin/sh
# fdbhook: runs after the package's files are removed.
#   Debian postrm: remove | purge | upgrade new-version | disappear | abort-*
#   RPM %postun:   0 (erase) | 1 (upgrade)
#
# The package managers already do what removal needs: a remove keeps
# /etc/fdbhook (dpkg keeps conffiles; rpm keeps an edited %config(noreplace)
# file as .rpmsave); a purge deletes the configuration file with dpkg's copies
# of it (.dpkg-dist, .dpkg-old) and then /etc/fdbhook, unless the admin put
# other files there (e.g. no-reload), which stay. Nothing on any bridge is
# changed. Left to do: drop the pre-install script's reload note, should an
# interrupted installation have left it behind, and the record of since
# when the hooks were there; on a purge the whole run directory
# /run/fdbhook (the hooks' lock, run counts, reload records), which a
# remove (and an RPM erase, which keeps an edited configuration too) leaves
# for a reinstall.
set -e

case "$1" in
remove | purge | 0)
	rm -f /run/fdbhook-reload-pending /run/fdbhook/hooks-since
	[ "$1" != purge ] || rm -rf /run/fdbhook
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
