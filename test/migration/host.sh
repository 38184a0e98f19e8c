#!/bin/sh
# Runs inside one test host's new mount and UTS namespaces (and its network
# namespace), below the reaper: gives the host its own libvirt and fdbhook
# directories, hostname and daemons, then returns; the daemons stay below the
# reaper. Usage: host.sh DIR HOSTNAME. DIR was filled by the test (etc-libvirt,
# run-libvirt, lib-libvirt, cache-libvirt, log-libvirt, etc-fdbhook,
# run-fdbhook, etc-upper, etc-work).
set -eu
D=$1
mount --make-rprivate /
# /etc/fdbhook may not exist on the machine: an overlay over /etc, private to
# this namespace, makes the mount point without touching the real /etc.
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$D/etc-upper,workdir=$D/etc-work" /etc
mkdir -p /etc/fdbhook /run/libvirt /run/fdbhook /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
mount --bind "$D/etc-libvirt" /etc/libvirt
mount --bind "$D/etc-fdbhook" /etc/fdbhook
mount --bind "$D/run-libvirt" /run/libvirt
mount --bind "$D/run-fdbhook" /run/fdbhook
mount --bind "$D/lib-libvirt" /var/lib/libvirt
mount --bind "$D/cache-libvirt" /var/cache/libvirt
mount --bind "$D/log-libvirt" /var/log/libvirt
hostname "$2"
virtlogd -d -p "$D/virtlogd.pid" </dev/null >/dev/null 2>&1
libvirtd -d -p "$D/libvirtd.pid" </dev/null >"$D/libvirtd.out" 2>&1
