package kernel

import (
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
)

func boolAttr(b bool) []byte {
	if b {
		return []byte{1}
	}
	return []byte{0}
}

// SetPortFlags sets learning, unicast_flood, locked when withLocked and
// mab when withMab of a bridge port in one RTM_SETLINK (IFLA_PROTINFO)
// message, so the port never has one without the others (the kernel
// refuses MAB on a port that does not learn or is not locked, and checks
// that after the whole message). The netlink library has no call that
// sets these together, hence the raw request.
func (c *Conn) SetPortFlags(portIndex int, f model.Flags, withLocked, withMab bool) error {
	msg := nl.NewIfInfomsg(unix.AF_BRIDGE)
	msg.Index = int32(portIndex)
	proto := nl.NewRtAttr(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, nil)
	proto.AddRtAttr(unix.IFLA_BRPORT_LEARNING, boolAttr(f.Learning))
	proto.AddRtAttr(unix.IFLA_BRPORT_UNICAST_FLOOD, boolAttr(f.Flood))
	if withLocked {
		proto.AddRtAttr(unix.IFLA_BRPORT_LOCKED, boolAttr(f.Locked))
	}
	if withMab {
		proto.AddRtAttr(unix.IFLA_BRPORT_MAB, boolAttr(f.Mab))
	}
	return c.write(c.request(unix.RTM_SETLINK, unix.NLM_F_ACK, msg, proto))
}

// forget drops what Prefetch read: a write may change it.
func (c *Conn) forget() { c.byName, c.entries = nil, nil }

// AddPortVlans adds vlans to a bridge port, or updates their pvid and
// untagged flags, in one RTM_SETLINK.
func (c *Conn) AddPortVlans(portIndex int, vlans []model.Vlan) error {
	c.vlansOK = false
	return c.portVlanMsg(unix.RTM_SETLINK, portIndex, vlans)
}

// DelPortVlans removes vlans from a bridge port in one RTM_DELLINK.
func (c *Conn) DelPortVlans(portIndex int, vlans []model.Vlan) error {
	c.vlansOK = false
	return c.portVlanMsg(unix.RTM_DELLINK, portIndex, vlans)
}

// portVlanMsg is a raw request: the netlink library's BridgeVlanAdd and
// BridgeVlanDel send one VLAN per message, and a port must never be left
// between two messages without its new pvid.
func (c *Conn) portVlanMsg(typ, portIndex int, vlans []model.Vlan) error {
	msg := nl.NewIfInfomsg(unix.AF_BRIDGE)
	msg.Index = int32(portIndex)
	spec := nl.NewRtAttr(unix.IFLA_AF_SPEC, nil)
	for _, v := range vlans {
		info := nl.BridgeVlanInfo{Vid: uint16(v.ID)}
		if v.Pvid {
			info.Flags |= nl.BRIDGE_VLAN_INFO_PVID
		}
		if v.Untagged {
			info.Flags |= nl.BRIDGE_VLAN_INFO_UNTAGGED
		}
		spec.AddRtAttr(nl.IFLA_BRIDGE_VLAN_INFO, info.Serialize())
	}
	return c.write(c.request(typ, unix.NLM_F_ACK, msg, spec))
}

// ReplaceEntry adds or replaces an FDB entry on the bridge the port belongs
// to (NTF_MASTER), with `bridge fdb replace` semantics. Vlan 0 means no VLAN
// attribute: on a VLAN-filtering bridge the kernel then writes the entry for
// VLAN 0 and for every VLAN the port has.
func (c *Conn) ReplaceEntry(e model.Entry) error {
	return c.neigh(unix.RTM_NEWNEIGH, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, e)
}

// DeleteEntry deletes an FDB entry. Vlan 0 deletes the entry for VLAN 0 and,
// on a VLAN-filtering bridge, the port's per-VLAN copies.
func (c *Conn) DeleteEntry(e model.Entry) error {
	return c.neigh(unix.RTM_DELNEIGH, 0, e)
}

// neigh sends the message the library's NeighSet (replace) and NeighDel
// send for a bridge FDB entry.
func (c *Conn) neigh(typ, flags int, e model.Entry) error {
	hw, err := net.ParseMAC(e.MAC)
	if err != nil {
		return c.fail(err)
	}
	ntf := e.NTFlags | unix.NTF_MASTER
	ntf &^= unix.NTF_SELF
	req := c.request(typ, flags|unix.NLM_F_ACK,
		&netlink.Ndmsg{Family: unix.AF_BRIDGE, Index: uint32(e.PortIndex), State: uint16(e.State), Flags: uint8(ntf)},
		nl.NewRtAttr(unix.NDA_LLADDR, hw))
	if e.Vlan != 0 {
		req.AddData(nl.NewRtAttr(unix.NDA_VLAN, nl.Uint16Attr(uint16(e.Vlan))))
	}
	return c.write(req)
}

// SetVlanFiltering switches a bridge's vlan_filtering, in one message with
// only that attribute (the library's BridgeSetVlanFiltering sends every
// attribute its Bridge value holds). What turning it on implies for the
// bridge's entries is the plan's business (plan.EnableFiltering).
func (c *Conn) SetVlanFiltering(bridgeIndex int, on bool) error {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(bridgeIndex)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_BR_VLAN_FILTERING, boolAttr(on))
	c.vlansOK = false
	return c.write(c.request(unix.RTM_NEWLINK, unix.NLM_F_ACK, msg, info))
}
