# Starting and restarting libvirt's daemons on a host with or without
# systemd; sourced by run.sh (the e2e suite) and demo.sh (make demo), which
# define die(). Sets started_virtlogd / started_libvirtd when it started one,
# so a caller can stop only what it started.

have_systemd() { [ -d /run/systemd/system ]; }
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Starts a daemon holding no descriptor but 0-2: a lock the caller holds
# (fd 9 here, or whatever fd flock(1) passed down to a caller's command) must
# not live on in libvirtd after the script ends.
spawn_daemon() {
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
		done
		exec "$@" </dev/null >/dev/null 2>&1
	)
}

# libvirt's LXC driver (libvirt_lxc) fails on a hybrid cgroup layout,
# cgroup v1 controllers plus cgroup2 at /sys/fs/cgroup/unified: "Unable to
# create directory /sys/fs/cgroup/unified". There libvirtd runs in a private
# mount namespace without that mount; QEMU guests work the same in it.
# Every start of libvirtd by the suites goes through here (the e2e suite's
# restart scenario too: test/e2e/virsh_test.go does the same).
# The daemon is started by its full path, as Debian's init script starts
# it: the script tells a running libvirtd by its argv[0], and deletes the
# pid file of one started as plain "libvirtd".
spawn_libvirtd() {
	local daemon
	daemon=$(command -v libvirtd) || die "libvirtd is not installed"
	if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ]; then
		spawn_daemon unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec "$0" -d' "$daemon"
	else
		spawn_daemon "$daemon" -d
	fi
}

wait_libvirtd() {
	local i
	for i in $(seq 1 60); do
		command virsh -q -c qemu:///system version >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	die "libvirtd does not answer"
}

# Stops the process named in a pid file and waits up to 30 s for it.
stop_pidfile() {
	local pid i
	pid=$(cat "$1" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || return 0
	for i in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.5
	done
	echo "pid $pid ($1) still running after 30 s" >&2
}

start_daemons() {
	if have_systemd; then
		systemctl is-active -q libvirtd.service || { systemctl start libvirtd.service; started_libvirtd=systemd; }
	else
		if ! pid_alive /run/virtlogd.pid; then
			spawn_daemon virtlogd -d
			started_virtlogd=1
		fi
		if ! pid_alive /run/libvirtd.pid; then
			spawn_libvirtd
			started_libvirtd=1
		fi
	fi
	wait_libvirtd
}

# libvirtd notices the first hook in qemu.d/ only when it starts.
restart_libvirtd() {
	if have_systemd; then
		systemctl restart libvirtd.service
	else
		stop_pidfile /run/libvirtd.pid
		spawn_libvirtd
	fi
	wait_libvirtd
}
