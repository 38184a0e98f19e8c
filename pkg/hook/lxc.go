package hook

import (
	"github.com/fdbhook/fdbhook/pkg/events"
)

var lxcDomain = domainHook{table: events.Lxc}

var lxcProgram = program{name: "lxc-hook", usage: lxcUsage, object: "CONTAINER"}

// RunLxc runs the lxc hook with the arguments after the program name and
// returns the exit code.
func (r *Runner) RunLxc(args []string) int {
	return r.dispatch(args, lxcProgram, func(name, op, subop, _ string, dry bool) int {
		return r.domainHook(lxcDomain, name, op, subop, dry)
	})
}

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
