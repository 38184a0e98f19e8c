package model

import (
	"fmt"
	"time"
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
	// MabCapable, for a bridge port: the kernel reports the port's MAC
	// Authentication Bypass flag (IFLA_BRPORT_MAB, Linux 6.2+), so a
	// locked port can show the source MACs it drops as locked entries.
	MabCapable bool
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
	// Mab (MAC Authentication Bypass, with Learning and Locked): the
	// kernel gives a source MAC the locked port drops a locked entry.
	Mab bool
}

// String names learning and flood, and locked and mab when they are on.
func (f Flags) String() string { return f.Words(f.Locked) }

// Learns reports whether the port takes entries from the frames it
// receives, moving or adding dynamic ones: it learns and is not locked (a
// locked port adds at most locked entries, and moves nothing).
func (f Flags) Learns() bool { return f.Learning && !f.Locked }

// Reporting are the flags of a managed guest port whose undeclared source
// MACs are reported (undeclared_macs = "report"): it learns, but only
// locked entries, since it is locked and has MAB.
var Reporting = Flags{Learning: true, Locked: true, Mab: true}

// Managed reports whether f are the flags of a managed guest port:
// unicast flooding off, and learning off, or on together with locked and
// MAB (Reporting), where the kernel learns nothing but locked entries.
func (f Flags) Managed() bool { return !f.Flood && (!f.Learning || f.Locked && f.Mab) }

// LearnFlood is learning and flood alone, as a problem with a managed
// guest port's flags names them (Managed judges them); whether it is
// locked is another matter.
func (f Flags) LearnFlood() Flags { return Flags{Learning: f.Learning, Flood: f.Flood} }

// Words names learning and flood, locked when withLocked, and mab when it
// is on, as iproute2 words ("learning off flood off locked on").
func (f Flags) Words(withLocked bool) string { return f.WordsMab(withLocked, f.Mab) }

// WordsMab is Words with mab named, on or off, when withMab.
func (f Flags) WordsMab(withLocked, withMab bool) string {
	s := fmt.Sprintf("learning %s flood %s", onOff(f.Learning), onOff(f.Flood))
	if withLocked {
		s += " locked " + onOff(f.Locked)
	}
	if withMab {
		s += " mab " + onOff(f.Mab)
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
	// FlagsExt is the raw NDA_FLAGS_EXT (NTFExtLocked).
	FlagsExt int
	// Updated, for a locked entry, is how long ago the kernel last saw a
	// frame from the MAC (NDA_CACHEINFO's ndm_updated); 0 when it did not
	// say, and for every other entry: a field that changes from one read
	// to the next would make two reads of the same entry differ.
	Updated time.Duration
}

// Kernel ndm_state and ndm_flags bits (linux/neighbour.h), kept here so the
// model stays free of netlink imports.
const (
	NUDPermanent = 0x80
	NUDNoARP     = 0x40
	NTFMaster    = 0x04
	NTFSticky    = 0x40
	NTFExtLearn  = 0x10
	// NTFExtLocked (NDA_FLAGS_EXT) marks a locked entry: a source MAC a
	// locked port with MAB dropped (Linux 6.2+).
	NTFExtLocked = 0x2
)

// Locked reports whether the entry is a locked one (NTF_EXT_LOCKED): the
// kernel saw frames from the MAC on a locked port with MAB and dropped
// them; it forwards nothing.
func (e Entry) Locked() bool { return e.FlagsExt&NTFExtLocked != 0 }

// Static reports whether the entry is static (NUD_NOARP, not local).
func (e Entry) Static() bool { return e.State&NUDNoARP != 0 && e.State&NUDPermanent == 0 }

// Local reports whether the entry delivers to the host (NUD_PERMANENT).
func (e Entry) Local() bool { return e.State&NUDPermanent != 0 }

func (e Entry) String() string {
	s := e.MAC + " dev " + e.Port
	if e.Vlan != 0 {
		s += fmt.Sprintf(" vlan %d", e.Vlan)
	}
	return s + " " + e.Kind()
}

// Kind is the entry's state and flags as iproute2 words ("static sticky").
func (e Entry) Kind() string {
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
	if e.Locked() {
		kind += " locked"
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
