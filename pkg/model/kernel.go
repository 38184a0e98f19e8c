package model

// Reader is what fdbhook reads from the kernel. Lookups of absent devices
// return nil and no error. kernel.Conn is one; kerneltest.Kernel fakes it.
type Reader interface {
	Link(name string) (*Link, error)
	LinkByIndex(index int) (*Link, error)
	// Links returns every device, in one dump.
	Links() ([]*Link, error)
	// Entries returns the FDB entries for mac on bridge, for VLAN 0 and for
	// every VLAN configured on the bridge.
	Entries(bridge *Link, mac string) ([]Entry, error)
	// PortEntries returns the FDB entries on bridge that point at port.
	PortEntries(bridge, port *Link) ([]Entry, error)
	// BridgeEntries returns every FDB entry of bridge, in one dump.
	BridgeEntries(bridge *Link) ([]Entry, error)
	// PortVlans returns the VLANs of a bridge port, sorted by ID.
	PortVlans(portIndex int) ([]Vlan, error)
	// NetnsIDOfPid returns the id the connection's network namespace gives
	// the network namespace of process pid, -1 when it gives it none: a
	// veth whose Link.PeerNetnsID is that id has its peer there.
	NetnsIDOfPid(pid int) (int, error)
	// Prefetch reads ahead, in fewer round trips, what planning a start
	// then asks port by port: ports maps a port's name to the MACs to look
	// up on its bridge. It changes no answer, only how fast it comes.
	Prefetch(ports map[string][]string)
}

// Writer is what fdbhook changes in the kernel: each call is one message,
// and decides nothing (what a change implies is the plan's business).
// kernel.Conn is one; kerneltest.Kernel fakes it.
type Writer interface {
	SetVlanFiltering(bridgeIndex int, on bool) error
	// SetPortFlags sets learning and unicast_flood, locked when
	// withLocked, and MAC Authentication Bypass when withMab (send it only
	// to a port that is Link.MabCapable).
	SetPortFlags(portIndex int, f Flags, withLocked, withMab bool) error
	// ReplaceEntry adds or replaces e (`bridge fdb replace`); Vlan 0 writes
	// VLAN 0 and every VLAN of the port.
	ReplaceEntry(e Entry) error
	// DeleteEntry deletes e; Vlan 0 deletes VLAN 0 and every VLAN of the
	// port. An absent entry is ENOENT.
	DeleteEntry(e Entry) error
	// AddPortVlans adds vlans to the port, or updates their flags.
	AddPortVlans(portIndex int, vlans []Vlan) error
	// DelPortVlans removes vlans from the port; the kernel ignores those
	// the port does not have.
	DelPortVlans(portIndex int, vlans []Vlan) error
	// Pipeline runs write, which calls these write methods: inside it they
	// do not wait for the kernel, each returns nil (or at once an error
	// that kept it from being sent), and Pipeline returns the errors of the
	// writes it sent, in call order, once the kernel has answered them
	// all. Each write is still a message of its own.
	Pipeline(write func()) []error
}

// ReadWriter is the reads and writes of a connection, for code that uses
// one without owning it.
type ReadWriter interface {
	Reader
	Writer
}

// Kernel is one connection to the kernel: its reads and writes, until
// Close.
type Kernel interface {
	ReadWriter
	Close()
}
