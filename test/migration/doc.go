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
// PACKET_OUTGOING included: testlab.Capture), against the lifecycle
// events' timestamps from `virsh event --timestamp` on each host; what the
// kernel announces of each host's tap (made, down, up, carrier, deleted:
// testlab.WatchLinks) is printed against the same resume. A counter that
// loses its tap (deleted or made again while it counts) fails the test;
// one on the source's tap, which goes once the guest has left, may lose it
// only after the source paused.
//
// What happens to the taps during a migration (measured with those link
// notifications in every test, and once with strace -f of the destination's
// libvirtd and its QEMU; libvirt 9.0, QEMU 7.2): nothing takes a running
// tap down and up. libvirt makes the destination's tap in the migration's
// Prepare phase (qemuProcessLaunch, qemuInterfaceBridgeConnect,
// virNetDevTapCreateInBridgePort): TUNSETIFF makes it down; SIOCSIFHWADDR
// (the guest's MAC with 0xFE first), SIOCSIFMTU and SIOCBRADDIF follow, and
// SIOCSIFFLAGS sets it up. QEMU on the destination only sets its queue's
// offloads, vnet header size and send buffer (TUNSETOFFLOAD,
// TUNSETVNETHDRSZ, TUNSETSNDBUF); at the resume libvirt's
// qemuProcessStartCPUs (qemuInterfaceStartDevices) sets only macvtap
// devices online and adds FDB entries only for networks with
// macTableManager='libvirt', and QEMU's set_link is not used. The source's
// tap goes down and is deleted when its QEMU exits. In the 40 live
// migrations of ten runs of make migration (2026-12-06, five on commit
// 2e6e964 and five on 248fd9c, chatty and silent, with and without the
// watcher) every destination tap went made, down, carrier off, up,
// carrier on and nothing else; it was down for 0.01-4.76 ms (chatty 1.04
// ms on average, silent 0.72 ms, 20 each), made 0.33-0.83 s before the
// resume; the source's tap was deleted 10-47 ms after the resume.
//
// For the guest that millisecond costs nothing: it runs on the source, the
// destination's bridge has no entry behind the new tap yet and sends the
// guest's frames out of the uplink; the 5 frames the neighbour sent while a
// destination tap was down (of the 40 migrations) reached the guest on the
// source, none was lost. It cost the suite its counts: the destination's
// counter is opened as soon as a 2 ms poll sees the tap, and a packet
// socket bound to a device that is not up yet gets ENETDOWN at its first
// receive (the kernel's packet_do_bind) and receives from the up on. The
// earlier counter stopped at that error and counted nothing afterwards.
// Why it lost that race with chatty guests only (3 of 3 with the watcher,
// never silent, before this was found) is not established: the windows of
// both kinds overlap, and the chatty guest's QEMU takes 74% of a CPU where
// a silent one takes 5% (sampled every 0.5 s through the first five runs)
// on this two-core machine, which shifts the timing of libvirt and of the
// poll alike. The counters now read on across the window and log it; each
// test prints how many were bound before the up (0 of 40 in those runs: a
// counter now subscribes to the link notifications before it binds).
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
