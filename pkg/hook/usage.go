package hook

// The hooks' --help texts.

const qemuUsage = `Usage:
  %[1]s DOMAIN OPERATION SUB-OPERATION EXTRA   (as libvirt calls it; XML on stdin)
  %[1]s --dry-run DOMAIN OPERATION SUB-OPERATION EXTRA
  %[1]s --help | --version

fdbhook's libvirt qemu hook (/etc/libvirt/hooks/qemu.d/fdbhook). fdbhook keeps
a Linux bridge's MAC table (FDB) in step with the guests on it: at every guest
start it turns off learning and unicast flooding on each managed guest tap and
adds a static FDB entry for the guest's MAC on that tap, so unknown unicast is
no longer copied to every guest and a guest that changes its MAC receives
nothing. At guest stop it removes entries that were left behind.

Operations:
  start begin, reconnect begin, attach begin   apply to every managed NIC
  stopped end, release end                     clean up what is left
  migrate begin                                mark an incoming live migration
                                               (its start begin then turns
                                               flooding off but leaves the
                                               static entries for the resume)
  anything else                                nothing (exit 0)

A NIC is managed when its bridge is listed in "bridges" or its libvirt network
in "networks", its <target dev> is a tap enslaved to that bridge, and the
guest's metadata does not opt it out. Only taps are ever changed.

  --dry-run        run one hook event without changing anything; the plan
                   (every port, flag and entry, every skipped NIC and why)
                   goes to stderr. FDBHOOK_DRY_RUN=1 does the same.

Debug one event by hand:
  virsh dumpxml GUEST | FDBHOOK_DRY_RUN=1 %[1]s GUEST start begin -

The admin commands (status, doctor, reconcile, explain) are the fdbhook
command: see 'fdbhook --help'.

Environment:
  FDBHOOK_CONFIG      configuration file (default /etc/fdbhook/fdbhook.toml;
                      libvirt passes no environment, so hooks it runs use the default)
  FDBHOOK_DRY_RUN=1   print the plan to stderr, change nothing
  FDBHOOK_LOG_LEVEL   debug|info|warning|error, on stderr and syslog

Exit codes:
  0  done, nothing to do, or on_error = "warn"
  1  a managed NIC could not be managed (the guest does not start; nothing left applied)
  2  bad command line
  3  bad configuration file
  4  bad hook input (malformed or oversized XML)
`

const lxcUsage = `Usage:
  %[1]s CONTAINER OPERATION SUB-OPERATION EXTRA   (as libvirt calls it; XML on stdin)
  %[1]s --dry-run CONTAINER OPERATION SUB-OPERATION EXTRA
  %[1]s --help | --version

fdbhook's libvirt lxc hook (/etc/libvirt/hooks/lxc.d/fdbhook). It does for
libvirt's containers what the qemu hook does for QEMU guests: at every
container start it turns off learning and unicast flooding on each managed
NIC's host veth and adds a static FDB entry for the NIC's MAC on it; at stop
it removes entries that were left behind.

Operations:
  started begin, reconnect begin   apply to every managed NIC
  stopped end, release end         clean up what is left
  anything else                    nothing (exit 0); at start begin the
                                   veth's peer is still in the host's
                                   network namespace

A NIC is managed when its bridge is listed in "bridges" or its libvirt network
in "networks", its <target dev> is a veth enslaved to that bridge whose peer
lives in the network namespace of the container's init process (from
libvirt's live state in /run/libvirt/lxc), and the container's metadata does
not opt it out. Any other device, a veth uplink or another container's veth
included, is refused.

  --dry-run        run one hook event without changing anything; the plan
                   goes to stderr. FDBHOOK_DRY_RUN=1 does the same.

Debug one event by hand:
  virsh -c lxc:///system dumpxml CONTAINER | FDBHOOK_DRY_RUN=1 %[1]s CONTAINER started begin -

Environment:
  FDBHOOK_CONFIG      configuration file (default /etc/fdbhook/fdbhook.toml)
  FDBHOOK_DRY_RUN=1   print the plan to stderr, change nothing
  FDBHOOK_LOG_LEVEL   debug|info|warning|error, on stderr and syslog

Exit codes:
  0  done, nothing to do, or on_error = "warn"
  1  a managed NIC could not be managed (libvirt stops the container; nothing left applied)
  2  bad command line
  3  bad configuration file
  4  bad hook input (malformed or oversized XML)
`

const networkUsage = `Usage:
  %[1]s NETWORK OPERATION SUB-OPERATION EXTRA   (as libvirt calls it; <hookData> on stdin)
  %[1]s --dry-run NETWORK OPERATION SUB-OPERATION EXTRA
  %[1]s --help | --version

fdbhook's libvirt network hook (/etc/libvirt/hooks/network.d/fdbhook). When a
network listed in "networks" (or whose bridge is listed in "bridges") starts,
it applies the bridge's policy, e.g. [bridge.NAME] vlan_filtering = "enable".
Per-guest work (port flags, static FDB entries) is done by qemu-hook, which
knows the guest's tap. A network with <bridge macTableManager='libvirt'/> is
left to libvirt. Other operations change nothing and exit 0.

Environment and exit codes: as for qemu-hook (see 'qemu-hook --help'). The admin
commands are the fdbhook command: see 'fdbhook --help'.
`
