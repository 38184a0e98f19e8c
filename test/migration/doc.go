// Package migration proves fdbhook across real live migrations between two
// libvirt hosts on one machine (make migration).
//
// Each test builds its own pair of hosts, A and B. A host is a network
// namespace holding a bridge br0, an uplink veth up0 to the other host's
// br0, a neighbour (a veth nb0 whose peer eth0 sits in a namespace of its
// own) and a migration link mig0 (10.77.0.1 and .2, outside the bridges);
// plus a mount namespace with its own /etc/libvirt, /run/libvirt,
// /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt, /etc/fdbhook and
// /run/fdbhook (bind mounts of directories under the test's temporary
// directory), a UTS namespace with its own hostname, its own host_uuid and
// `cgroup_controllers = [ ]`, and its own virtlogd and libvirtd, started by
// host.sh below a reaper (reaper/: a subreaper that adopts and reaps the
// daemons' orphans at once, so libvirt's "stopped end" is not delayed by
// this machine's slow init). libvirt's own fdbhook hook in each host is a
// link to the suite's copy of bin/qemu-hook.
//
// The guests are diskless TCG guests with one virtio NIC on br0: "chatty"
// with the default option ROM (iPXE keeps sending DHCP from the guest's
// MAC) or "silent" (<rom enabled='no'/>). Frames are counted per frame with
// packet sockets on both hosts' taps (what the bridge forwards to a tap,
// PACKET_OUTGOING included), against the lifecycle events' timestamps from
// `virsh event --timestamp` on each host.
//
// Teardown destroys the guests, stops each host's reaper (which stops the
// daemons and every process left below it: the mount namespace goes with
// them), checks that no process is left in the host's network namespace,
// and deletes the namespaces (and with them every link), also when a test
// fails. Names start with fdbt-mig-<pid>-; a run finds and removes what a
// killed earlier run left.
//
// Needs root, libvirt and QEMU (run.sh installs them); skips, saying why,
// without them, and fails instead under CI=true.
package migration
