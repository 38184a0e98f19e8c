package kernel

import (
	"encoding/binary"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ntfExtLocked is NTF_EXT_LOCKED (linux/neighbour.h, Linux 6.2+), an
// NDA_FLAGS_EXT bit: a locked entry, which MAC Authentication Bypass
// writes for a source MAC a locked port saw but has no entry for. Neither
// the netlink library nor x/sys/unix names it.
const ntfExtLocked = 1 << 1

// FDBRule is one kind of bridge FDB notification the watcher needs. A
// notification is kept when any rule matches it; the socket filter
// (Notifier.Watch) drops every other bridge FDB notification in the
// kernel, before it reaches the socket's buffer, and Notifier.Receive
// applies the same rules to what comes through. Whatever a rule's name
// says, it only decides which notifications are read: the watcher still
// treats each as a hint and reads the kernel again before it acts.
type FDBRule struct {
	Name string
	// StateAll and StateNone: every bit of StateAll is set in ndm_state
	// and none of StateNone (both zero: no condition).
	StateAll, StateNone uint16
	// ExtFlags: any of these NDA_FLAGS_EXT bits is set.
	ExtFlags uint32
	// Watched: the entry's port (WatchedPort) or MAC (WatchedMAC) is one
	// the Watchlist names.
	Watched watchedSet
}

type watchedSet uint8

const (
	watchNone watchedSet = iota
	// WatchedPort: the port the entry points at is in Watchlist.Ports.
	WatchedPort
	// WatchedMAC: the entry's MAC is in Watchlist.MACs.
	WatchedMAC
)

// FDBRules are the bridge FDB notifications the watcher reads, in the
// order the socket filter tests them. Before any rule, two conditions hold
// for every neighbour notification kept: it is about a bridge's FDB
// (family AF_BRIDGE: ARP and NDP neighbours are dropped) and not about a
// device's own table (no NTF_SELF: a VXLAN device's remote entries,
// macvlan addresses). Everything else, link notifications included, is
// kept. What the rules leave out is the bulk of a busy segment: dynamic
// entries learned and aged on ports that are not guests', for MACs that
// are not guests'.
var FDBRules = []FDBRule{
	// The hooks' entries, and any static entry a user adds: a guest's
	// entry deleted or moved by hand, or roamed (a static entry that
	// moves stays static). NUD_PERMANENT marks local entries (the
	// bridge's and its ports' own addresses), which no guest has.
	{Name: "static", StateAll: unix.NUD_NOARP, StateNone: unix.NUD_PERMANENT},
	// Locked entries (MAC Authentication Bypass on a locked port): each
	// is a source MAC a port sent from without an entry, which following
	// guests' undeclared MACs needs.
	{Name: "locked", ExtFlags: ntfExtLocked},
	// Any entry on a guest's port: learned there while learning was on
	// by hand, or a guest's entry made dynamic by hand.
	{Name: "guest port", Watched: WatchedPort},
	// Any entry for a guest's MAC, wherever it is: a guest's static entry
	// replaced by hand with a dynamic one on another port.
	{Name: "guest MAC", Watched: WatchedMAC},
}

// Watchlist names the guests' ports and MACs for the rules that ask about
// them. The values are the caller's (who owns the port or MAC); Receive
// only tests for presence. A Watchlist is not changed once handed to
// Notifier.Watch.
type Watchlist struct {
	Ports map[int]string
	MACs  map[[6]byte][]string
}

// NoteKind says what a notification is about.
type NoteKind uint8

const (
	NoteLink NoteKind = iota + 1
	NoteFDB
)

// Note is one notification as Receive hands it over. It is read from the
// socket's buffer without allocating: Name points into that buffer and
// the Note is only valid until the callback returns.
type Note struct {
	Kind NoteKind
	// Deleted: RTM_DELLINK or RTM_DELNEIGH.
	Deleted bool
	// Index is the link, or the port an FDB entry points at (the bridge
	// itself for the bridge's own entries).
	Index int
	// Name is a link's IFLA_IFNAME, without its NUL.
	Name []byte
	// Master is a link's IFLA_MASTER, or an FDB entry's NDA_MASTER (its
	// bridge).
	Master int
	// MAC, Vlan, State (ndm_state), Flags (ndm_flags) and ExtFlags
	// (NDA_FLAGS_EXT) describe an FDB entry.
	MAC      [6]byte
	Vlan     int
	State    uint16
	Flags    uint8
	ExtFlags uint32
	// Rule is the index in FDBRules of the rule that kept an FDB entry's
	// notification.
	Rule int
}

// Offsets in a neighbour notification: the netlink header (16 bytes),
// struct ndmsg (12), then the attributes.
const (
	offType    = 4  // nlmsghdr.nlmsg_type, u16
	offFamily  = 16 // ndmsg.ndm_family, u8
	offIfindex = 20 // ndmsg.ndm_ifindex, s32
	offState   = 24 // ndmsg.ndm_state, u16
	offFlags   = 26 // ndmsg.ndm_flags, u8
	offAttrs   = unix.NLMSG_HDRLEN + unix.SizeofNdMsg
)

// classify returns the index of the first rule of rules that keeps the FDB
// entry n, or -1. It allocates nothing: two map lookups at most.
func classify(rules []FDBRule, n *Note, wl *Watchlist) int {
	for i, r := range rules {
		switch {
		case r.StateAll|r.StateNone != 0 && (n.State&r.StateAll != r.StateAll || n.State&r.StateNone != 0):
		case r.ExtFlags != 0 && n.ExtFlags&r.ExtFlags == 0:
		case r.Watched == WatchedPort && !watchedPort(wl, n.Index):
		case r.Watched == WatchedMAC && !watchedMAC(wl, n.MAC):
		default:
			return i
		}
	}
	return -1
}

func watchedPort(wl *Watchlist, index int) bool {
	if wl == nil {
		return false
	}
	_, ok := wl.Ports[index]
	return ok
}

func watchedMAC(wl *Watchlist, mac [6]byte) bool {
	if wl == nil {
		return false
	}
	_, ok := wl.MACs[mac]
	return ok
}

// parseNote reads one message (header included) into n; false when it is
// neither a link nor a bridge FDB notification, or is malformed.
func parseNote(m []byte, n *Note) bool {
	*n = Note{Rule: -1}
	typ := binary.NativeEndian.Uint16(m[offType:])
	switch typ {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		n.Kind, n.Deleted = NoteLink, typ == unix.RTM_DELLINK
		return parseLinkNote(m[unix.NLMSG_HDRLEN:], n)
	case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
		n.Kind, n.Deleted = NoteFDB, typ == unix.RTM_DELNEIGH
		return parseFDBNote(m, n)
	}
	return false
}

func parseLinkNote(b []byte, n *Note) bool {
	if len(b) < unix.SizeofIfInfomsg {
		return false
	}
	n.Index = int(int32(binary.NativeEndian.Uint32(b[4:8])))
	return nil == eachAttr(b[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		switch {
		case typ == unix.IFLA_IFNAME && len(v) > 0:
			n.Name = v[:len(v)-1]
		case typ == unix.IFLA_MASTER && len(v) >= 4:
			n.Master = int(binary.NativeEndian.Uint32(v))
		}
	})
}

// parseFDBNote reads a bridge's FDB entry; a neighbour of another family,
// or a device's own entry (NTF_SELF), is not one.
func parseFDBNote(m []byte, n *Note) bool {
	if len(m) < offAttrs || m[offFamily] != unix.AF_BRIDGE || m[offFlags]&unix.NTF_SELF != 0 {
		return false
	}
	n.Index = int(int32(binary.NativeEndian.Uint32(m[offIfindex:])))
	n.State = binary.NativeEndian.Uint16(m[offState:])
	n.Flags = m[offFlags]
	mac := false
	err := eachAttr(m[offAttrs:], func(typ uint16, v []byte) {
		switch {
		case typ == unix.NDA_LLADDR && len(v) == 6:
			copy(n.MAC[:], v)
			mac = true
		case typ == unix.NDA_MASTER && len(v) >= 4:
			n.Master = int(binary.NativeEndian.Uint32(v))
		case typ == netlink.NDA_FLAGS_EXT && len(v) >= 4:
			n.ExtFlags = binary.NativeEndian.Uint32(v)
		case typ == unix.NDA_VLAN && len(v) >= 2:
			n.Vlan = int(binary.NativeEndian.Uint16(v))
		}
	})
	return err == nil && mac
}
