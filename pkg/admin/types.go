package admin

import (
	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// Link is a network device as the admin commands see it: what the planner
// reads, plus what only status reports.
type Link struct {
	plan.Link
	// Promiscuity is the kernel's promiscuity count (IFLA_PROMISCUITY):
	// above 0 the device receives every frame, whoever asked for it.
	Promiscuity int
	// PromiscFlag is IFF_PROMISC as a user set it (ip link set promisc on).
	PromiscFlag bool
	// Locked is the bridge port's locked flag (kernel 5.18+); LockedKnown
	// is false when the kernel does not report it.
	Locked      bool
	LockedKnown bool
	// Carrier is the device's carrier (IFLA_CARRIER). A tap has carrier
	// exactly while a process holds it open: QEMU, or libvirt just before
	// it starts QEMU.
	Carrier bool
}

// Reader is what status reads from the kernel: every device in one dump,
// and one FDB dump per bridge.
type Reader interface {
	Links() ([]*Link, error)
	BridgeEntries(bridge *plan.Link) ([]plan.Entry, error)
}

// Kernel is what reconcile needs: the reads of status and the writes of a
// hook run.
type Kernel interface {
	Reader
	apply.Writer
}

// FDB is the part of a kernel connection (kernel.Conn) the admin commands
// use besides the link dump: FDB dumps and the writes of a hook run.
type FDB interface {
	BridgeEntries(bridge *plan.Link) ([]plan.Entry, error)
	apply.Writer
}

// Join returns a Kernel that dumps devices through links and reads and
// writes FDB entries and port flags through fdb.
func Join(links interface{ Links() ([]*Link, error) }, fdb FDB) Kernel {
	return joined{links, fdb}
}

type joined struct {
	links interface{ Links() ([]*Link, error) }
	FDB
}

func (j joined) Links() ([]*Link, error) { return j.links.Links() }
