#!/bin/sh
# fdbhook: runs after the package's files are in place.
#   Debian postinst: configure [most-recently-configured-version] | abort-*
#   RPM %post:       1 (install) | 2 (upgrade)
#
# On an install (not an upgrade) it tells the admin once that libvirt must
# reload to notice the hooks, and reloads the running libvirt daemons
# (systemctl reload, or SIGHUP by pid file) unless the admin opted out
# (FDBHOOK_NO_RELOAD=1, or /etc/fdbhook/no-reload).
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
# The watcher (fdbhook.service): enabled and started on install, restarted
# on upgrade (the new binary), where systemd runs. Without systemd it is
# the admin's to start (fdbhook(8), "fdbhook watch").
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$fresh" = yes ]; then
		systemctl enable fdbhook.service >/dev/null 2>&1 || true
		if systemctl restart fdbhook.service >/dev/null 2>&1; then
			echo "fdbhook: started the watcher (fdbhook.service)."
		else
			echo "fdbhook: could not start fdbhook.service; see: systemctl status fdbhook.service"
		fi
	else
		systemctl try-restart fdbhook.service >/dev/null 2>&1 || true
	fi
elif [ "$fresh" = yes ]; then
	echo "fdbhook: systemd is not running: start the watcher yourself (fdbhook watch; see fdbhook(8))."
fi

[ "$fresh" = yes ] || exit 0

rundir=/run/fdbhook

# record_reload DAEMON PID: note that DAEMON (pid PID) was told to reload
# after the hooks were installed, so that "fdbhook doctor" can tell a
# daemon that runs the hooks from one started before them.
record_reload() {
	mkdir -p "$rundir" 2>/dev/null || return 0
	echo "$2 $(date +%s)" >"$rundir/reloaded-$1" 2>/dev/null || true
}

# pid_of DAEMON: the pid in /run/DAEMON.pid when it names a live process
# called DAEMON. libvirt writes its pid files without a trailing newline,
# so read's status at end of file is not a failure here.
pid_of() {
	pf=/run/$1.pid
	[ -r "$pf" ] || return 1
	pid=
	IFS= read -r pid <"$pf" || [ -n "$pid" ] || return 1
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	comm=
	IFS= read -r comm <"/proc/$pid/comm" 2>/dev/null || return 1
	[ "$comm" = "$1" ] || return 1
	echo "$pid"
}

# reload_daemons makes every running system libvirt daemon re-read its hook
# directories: "systemctl reload" for an active unit where systemd runs,
# SIGHUP through the pid file otherwise (also for a daemon started by hand
# on a systemd host). It prints what it reloaded, or why nothing.
reload_daemons() {
	done_list=
	why=
	systemd=no
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemd=yes
	fi
	# The system libvirt daemons that run hooks: the monolithic libvirtd, or
	# the modular daemons of the qemu, network and lxc drivers.
	for d in libvirtd virtqemud virtnetworkd virtlxcd; do
		if [ "$systemd" = yes ] && systemctl is-active --quiet "$d.service" 2>/dev/null; then
			main=$(systemctl show -p MainPID --value "$d.service" 2>/dev/null || true)
			if systemctl reload "$d.service" 2>/dev/null; then
				done_list="$done_list $d.service (systemctl reload)"
				record_reload "$d" "$main"
			else
				why="$why; systemctl reload $d.service failed"
			fi
			continue
		fi
		if pid=$(pid_of "$d"); then
			if kill -HUP "$pid" 2>/dev/null; then
				done_list="$done_list $d (SIGHUP to pid $pid)"
				record_reload "$d" "$pid"
			else
				why="$why; could not signal $d (pid $pid)"
			fi
		elif [ -e "/run/$d.pid" ]; then
			why="$why; /run/$d.pid names no running $d (a stale file)"
		fi
	done
	if [ -n "$done_list" ]; then
		echo "fdbhook: reloaded libvirt:$done_list."
		[ -z "$why" ] || echo "fdbhook: also${why#;}."
		return 0
	fi
	if [ "$systemd" = yes ]; then
		why="no unit of libvirtd.service, virtqemud.service, virtnetworkd.service, virtlxcd.service is active and no pid file names a running daemon$why"
	else
		why="no pid file of /run/libvirtd.pid, /run/virtqemud.pid, /run/virtnetworkd.pid, /run/virtlxcd.pid names a running daemon (systemd is not running)$why"
	fi
	echo "fdbhook: reloaded no libvirt daemon: $why; a daemon started later finds the hooks by itself."
}

echo "fdbhook: installed the libvirt hooks /etc/libvirt/hooks/qemu.d/fdbhook, network.d/fdbhook and lxc.d/fdbhook."
echo "fdbhook: libvirt only notices the first hook in those directories after a restart or SIGHUP."
if [ "${FDBHOOK_NO_RELOAD:-}" = 1 ]; then
	echo "fdbhook: not reloading libvirt (FDBHOOK_NO_RELOAD=1); send SIGHUP to libvirtd (or virtqemud, virtnetworkd and virtlxcd) yourself."
elif [ -e /etc/fdbhook/no-reload ]; then
	echo "fdbhook: not reloading libvirt (/etc/fdbhook/no-reload exists); send SIGHUP to libvirtd (or virtqemud, virtnetworkd and virtlxcd) yourself."
else
	reload_daemons
fi
echo "fdbhook: nothing is managed until bridges or networks are listed in /etc/fdbhook/fdbhook.toml;"
echo "fdbhook: then check the host with \"fdbhook doctor\", and bring guests that are"
echo "fdbhook: already running under management with \"fdbhook reconcile\"."
exit 0
