package plan

import (
	"fmt"
	"strings"
)

// Link is what the kernel says about one network device.
type Link struct {
	Name  string
	Index int
	// Type is the device kind as netlink names it: "tuntap", "veth",
	// "bridge", "bond", "vlan", "vxlan", "openvswitch", "device" (a NIC
	// without a link kind), …
	Type string
	// TunMode is "tap" or "tun" for Type "tuntap", when the kernel says.
	TunMode string
	// Master and MasterType describe the device's master, if any.
	Master      string
	MasterIndex int
	MasterType  string
	// Port flags, meaningful when MasterType is "bridge".
	Flags Flags
	// LockCapable, for a bridge port: the kernel reports the port's locked
	// flag (IFLA_BRPORT_LOCKED, Linux 5.18+), so it can lock the port.
	LockCapable bool
	// VlanFiltering and VlanCapable, for Type "bridge": whether the bridge
	// filters VLANs, and whether this kernel can (CONFIG_BRIDGE_VLAN_FILTERING).
	VlanFiltering bool
	VlanCapable   bool
	// DefaultPvid, for Type "bridge": the VLAN a newly enslaved port gets
	// as its untagged pvid (IFLA_BR_VLAN_DEFAULT_PVID; 0: none).
	DefaultPvid int
	// StickyCapable, for Type "bridge": the kernel honours NTF_STICKY on
	// bridge entries (Linux 4.20+).
	StickyCapable bool
	// Promiscuity is the kernel's promiscuity count (IFLA_PROMISCUITY):
	// above 0 the device receives every frame, whoever asked for it (a
	// bridge with learning or flooding ports, a packet capture, a user).
	Promiscuity int
	// PromiscFlag is IFF_PROMISC as a user set it (ip link set promisc
	// on); the kernel's own reasons show only in Promiscuity.
	PromiscFlag bool
	// Carrier is the device's carrier (IFLA_CARRIER; IFF_LOWER_UP on a
	// kernel that does not report it). A tap has carrier exactly while a
	// process holds it open: QEMU, or libvirt just before it starts QEMU.
	Carrier bool
	// PeerNetnsID, for a veth whose peer lives in another network
	// namespace, is the id this namespace gives that namespace
	// (IFLA_LINK_NETNSID); -1 when the peer is in this namespace too.
	PeerNetnsID int
}

// IsTap reports whether l is a tap: a tun/tap device in tap mode.
func (l *Link) IsTap() bool { return l.Type == "tuntap" && l.TunMode != "tun" }

// IsGuestPort reports whether l is the kind of device a guest is plugged in
// with: a tap (QEMU) or a veth (containers).
func (l *Link) IsGuestPort() bool { return l.IsTap() || l.Type == "veth" }

// Describe names the kind of device in words, for refusals.
func (l *Link) Describe() string {
	switch l.Type {
	case "device":
		return "a physical device"
	case "tuntap":
		return "a tun device (not tap)"
	case "bridge":
		return "a bridge"
	case "openvswitch":
		return "an Open vSwitch device"
	case "":
		return "a device of unknown kind"
	default:
		return "a " + l.Type + " device"
	}
}

// Flags are the bridge port flags fdbhook manages.
type Flags struct {
	Learning bool
	Flood    bool
	// Locked drops frames whose source MAC has no entry on the port.
	Locked bool
}

// String names learning and flood, and locked when it is on.
func (f Flags) String() string { return f.format(f.Locked) }

func (f Flags) format(locked bool) string {
	s := fmt.Sprintf("learning %s flood %s", onOff(f.Learning), onOff(f.Flood))
	if locked {
		s += " locked " + onOff(f.Locked)
	}
	return s
}

// Vlan is one VLAN of a bridge port.
type Vlan struct {
	ID int
	// Pvid marks the VLAN untagged frames from the port are classified in.
	Pvid bool
	// Untagged: frames of this VLAN leave the port without a tag.
	Untagged bool
}

func (v Vlan) String() string {
	s := fmt.Sprint(v.ID)
	if v.Pvid {
		s += " pvid"
	}
	if v.Untagged {
		s += " untagged"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Entry is one bridge FDB entry (NTF_MASTER) for a MAC.
type Entry struct {
	MAC       string
	Port      string
	PortIndex int
	Vlan      int
	// State and NTFlags are the raw ndm_state and ndm_flags, kept so an
	// undo restores the entry exactly.
	State   int
	NTFlags int
}

// Kernel ndm_state and ndm_flags bits (linux/neighbour.h), kept here so the
// plan stays free of netlink imports.
const (
	NUDPermanent = 0x80
	NUDNoARP     = 0x40
	NTFMaster    = 0x04
	NTFSticky    = 0x40
	NTFExtLearn  = 0x10
)

// Static reports whether the entry is static (NUD_NOARP, not local).
func (e Entry) Static() bool { return e.State&NUDNoARP != 0 && e.State&NUDPermanent == 0 }

// Local reports whether the entry delivers to the host (NUD_PERMANENT).
func (e Entry) Local() bool { return e.State&NUDPermanent != 0 }

func (e Entry) String() string {
	s := e.MAC + " dev " + e.Port
	if e.Vlan != 0 {
		s += fmt.Sprintf(" vlan %d", e.Vlan)
	}
	return s + " " + e.kind()
}

// kind is the entry's state and flags as iproute2 words.
func (e Entry) kind() string {
	kind := "dynamic"
	switch {
	case e.Local():
		kind = "permanent"
	case e.Static():
		kind = "static"
	}
	if e.NTFlags&NTFSticky != 0 {
		kind += " sticky"
	}
	return kind
}

// Network is what libvirt's own files say about a libvirt network.
type Network struct {
	Name   string
	Bridge string
	// MacTableLibvirt is true for <bridge macTableManager='libvirt'/>:
	// libvirt then manages its NICs itself.
	MacTableLibvirt bool
}

// View is the read-only kernel and libvirt state a plan is made from.
// Lookups of absent things return nil and no error.
type View interface {
	Link(name string) (*Link, error)
	LinkByIndex(index int) (*Link, error)
	// Entries returns the FDB entries for mac on bridge, for VLAN 0 and for
	// every VLAN configured on the bridge.
	Entries(bridge *Link, mac string) ([]Entry, error)
	// PortEntries returns the FDB entries on bridge that point at port.
	PortEntries(bridge, port *Link) ([]Entry, error)
	// BridgeEntries returns every FDB entry of bridge.
	BridgeEntries(bridge *Link) ([]Entry, error)
	// Network returns the libvirt network name, or nil when it is unknown.
	Network(name string) (*Network, error)
	// PortOwner returns the name of the running guest whose live XML has
	// port as a target device, or "" when none has.
	PortOwner(port string) (string, error)
}

// StepKind says what a Step does.
type StepKind int

const (
	// EnableVlanFiltering turns vlan_filtering on for Bridge.
	EnableVlanFiltering StepKind = iota
	// AddEntry replaces the static FDB entry for MAC on Port (for VLAN 0
	// and, on a filtering bridge, every VLAN of the port).
	AddEntry
	// SetFlags sets learning and unicast_flood of Port to Flags, and
	// locked when WithLocked.
	SetFlags
	// DelEntry deletes one FDB entry (Entry).
	DelEntry
	// SetVlans makes Vlans the port's exact VLAN set (bridge vlan add/del).
	SetVlans
	// DelVlans removes Vlans from the port (bridge vlan del).
	DelVlans
	// AddVlans adds Vlans to the port, or updates their flags.
	AddVlans
	// ExtendEntry writes Entry, a static entry without a VLAN already on
	// Port, again, so that the kernel copies it to every VLAN of the port:
	// once vlan_filtering is on, an entry for VLAN 0 alone no longer
	// matches the port's frames.
	ExtendEntry
)

// Step is one kernel change, with what is needed to undo it.
type Step struct {
	Kind        StepKind
	NIC         string
	MAC         string
	Port        string
	PortIndex   int
	Bridge      string
	BridgeIndex int
	// Flags is the target for SetFlags; Prior what the port had.
	Flags Flags
	Prior Flags
	// WithLocked makes SetFlags (and its undo) send the locked flag too.
	// It is set for a port whose kernel reports the flag: a kernel without
	// locked ports is never sent the attribute.
	WithLocked bool
	// PriorEntries are the entries for MAC on Bridge before AddEntry.
	PriorEntries []Entry
	// Entry is what DelEntry removes and ExtendEntry writes again.
	Entry Entry
	// Sticky makes AddEntry write the entry with NTF_STICKY.
	Sticky bool
	// Vlans is the target of SetVlans; PriorVlans what the port had,
	// read when the step is applied (the plan does not need it).
	Vlans      []Vlan
	PriorVlans []Vlan
	// Why explains the step in a dry run.
	Why string
}

func (s Step) String() string {
	switch s.Kind {
	case EnableVlanFiltering:
		return fmt.Sprintf("bridge %s: set vlan_filtering 1", s.Bridge)
	case AddEntry:
		out := fmt.Sprintf("%s: fdb replace %s dev %s master %s static", s.NIC, s.MAC, s.Port, s.Bridge)
		if s.Sticky {
			out += " sticky"
		}
		if s.Why != "" {
			out += " (" + s.Why + ")"
		}
		if len(s.PriorEntries) > 0 {
			prior := make([]string, len(s.PriorEntries))
			for i, e := range s.PriorEntries {
				prior[i] = e.String()
			}
			out += " (replaces " + strings.Join(prior, ", ") + ")"
		}
		return out
	case SetFlags:
		locked := s.Flags.Locked || s.Prior.Locked
		return fmt.Sprintf("%s: link set dev %s %s (was %s)", s.NIC, s.Port, s.Flags.format(locked), s.Prior.format(locked))
	case SetVlans:
		return fmt.Sprintf("%s: bridge vlan dev %s: exactly vlan %s (other VLANs of the port removed)", s.NIC, s.Port, vlanList(s.Vlans))
	case DelVlans, AddVlans:
		verb := "del"
		if s.Kind == AddVlans {
			verb = "add"
		}
		out := fmt.Sprintf("%s: bridge vlan %s dev %s vid %s", s.NIC, verb, s.Port, vlanList(s.Vlans))
		if s.Why != "" {
			out += " (" + s.Why + ")"
		}
		return out
	case ExtendEntry:
		return fmt.Sprintf("bridge %s: fdb replace %s dev %s master %s %s (again, to cover the port's VLANs once vlan_filtering is on)",
			s.Bridge, s.Entry.MAC, s.Port, s.Bridge, s.Entry.kind())
	case DelEntry:
		out := fmt.Sprintf("fdb del %s master %s", s.Entry, s.Bridge)
		if s.Why != "" {
			out += " (" + s.Why + ")"
		}
		return out
	}
	return "unknown step"
}

// Doing says what the step does, for an error that names it:
// "<mac> on <bridge>: <what>". String is the step as a command, for the
// dry run and the log.
func (s Step) Doing() string {
	var what string
	switch s.Kind {
	case EnableVlanFiltering:
		return "bridge " + s.Bridge + ": setting vlan_filtering 1"
	case ExtendEntry:
		return s.MAC + " on " + s.Bridge + ": writing the entry on " + s.Port + " again for the port's VLANs (vlan_filtering is on)"
	case AddEntry:
		what = "adding static entry on " + s.Port
		if s.Sticky {
			what = "adding sticky static entry on " + s.Port
		}
	case SetFlags:
		what = "setting " + s.Flags.String() + " on " + s.Port
	case DelEntry:
		what = "deleting " + s.Entry.String()
	case SetVlans:
		what = "setting the VLANs of " + s.Port
	case DelVlans:
		what = "removing VLANs from " + s.Port
	case AddVlans:
		what = "adding VLANs to " + s.Port
	}
	if s.MAC == "" {
		return s.Bridge + ": " + what
	}
	return s.MAC + " on " + s.Bridge + ": " + what
}

func vlanList(vlans []Vlan) string {
	vl := make([]string, len(vlans))
	for i, v := range vlans {
		vl[i] = v.String()
	}
	return strings.Join(vl, ", ")
}

// Skip is a NIC left alone, with the reason.
type Skip struct {
	NIC    string
	MAC    string
	Reason string
}

// Refusal is a NIC that should be managed but cannot be safely.
type Refusal struct {
	NIC    string
	MAC    string
	Bridge string
	Cause  string
}

func (r Refusal) Error() string {
	where := r.MAC
	if where == "" {
		where = r.NIC
	}
	if r.Bridge != "" {
		where += " on " + r.Bridge
	}
	return where + ": " + r.Cause
}

// Plan is everything one hook event will do.
type Plan struct {
	Guest    string
	Steps    []Step
	Skips    []Skip
	Refusals []Refusal
	// Notes are facts worth logging (e.g. XML and kernel disagreeing).
	Notes []string
	// Warnings are configured policies the kernel cannot honour.
	Warnings []string
}

// Format renders the plan for a dry run, one line per item.
func (p *Plan) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan for %s:\n", p.Guest)
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "  do     %s\n", s)
	}
	for _, s := range p.Skips {
		fmt.Fprintf(&b, "  skip   %s %s: %s\n", s.NIC, s.MAC, s.Reason)
	}
	for _, r := range p.Refusals {
		fmt.Fprintf(&b, "  refuse %s: %s\n", r.NIC, r.Error())
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "  warn   %s\n", w)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note   %s\n", n)
	}
	switch {
	case len(p.Refusals) > 0:
		b.WriteString("  (refused: nothing is applied)\n")
	case len(p.Steps) == 0:
		b.WriteString("  (no kernel changes)\n")
	}
	return b.String()
}
