package admin

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/plan"
)

// dumpRetries is how often a dump interrupted by a concurrent change
// (NLM_F_DUMP_INTR) is tried again.
const dumpRetries = 5

// LinkReader dumps every network device of one namespace. It is read-only:
// the writes of the admin commands go through package kernel.
type LinkReader struct {
	sock *nl.SocketHandle
}

// OpenLinks connects to rtnetlink in namespace ns (netns.None() for the
// current one); every call is bounded by timeout.
func OpenLinks(ns netns.NsHandle, timeout time.Duration) (*LinkReader, error) {
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := s.SetSendTimeout(&tv); err != nil {
		s.Close()
		return nil, fmt.Errorf("setting netlink send timeout: %w", err)
	}
	if err := s.SetReceiveTimeout(&tv); err != nil {
		s.Close()
		return nil, fmt.Errorf("setting netlink receive timeout: %w", err)
	}
	return &LinkReader{sock: &nl.SocketHandle{Socket: s}}, nil
}

// Close releases the socket.
func (r *LinkReader) Close() { r.sock.Socket.Close() }

// Links returns every device of the namespace, with master names filled in.
func (r *LinkReader) Links() ([]*Link, error) {
	var (
		msgs [][]byte
		err  error
	)
	for range dumpRetries {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: r.sock}
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		msgs, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
		if !errors.Is(err, nl.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dumping links: %w", err)
	}
	out := make([]*Link, 0, len(msgs))
	byIndex := make(map[int]*Link, len(msgs))
	for _, m := range msgs {
		l, err := ParseLink(m)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
		byIndex[l.Index] = l
	}
	for _, l := range out {
		if m := byIndex[l.MasterIndex]; l.MasterIndex != 0 && m != nil {
			l.Master = m.Name
			if l.MasterType == "" {
				l.MasterType = m.Type
			}
		}
	}
	return out, nil
}

// ParseLink reads one RTM_NEWLINK message.
func ParseLink(m []byte) (*Link, error) {
	nlink, err := netlink.LinkDeserialize(nil, m)
	if err != nil {
		return nil, fmt.Errorf("parsing link message: %w", err)
	}
	a := nlink.Attrs()
	l := &Link{Link: plan.Link{Name: a.Name, Index: a.Index, Type: nlink.Type(), MasterIndex: a.MasterIndex},
		Promiscuity: a.Promisc, PromiscFlag: a.RawFlags&unix.IFF_PROMISC != 0}
	// netlink's LinkAttrs has no carrier; read IFLA_CARRIER below. Without
	// the attribute (very old kernels) the running flag stands in for it.
	l.Carrier = a.RawFlags&unix.IFF_LOWER_UP != 0
	switch t := nlink.(type) {
	case *netlink.Tuntap:
		switch t.Mode {
		case netlink.TUNTAP_MODE_TAP:
			l.TunMode = "tap"
		case netlink.TUNTAP_MODE_TUN:
			l.TunMode = "tun"
		}
	case *netlink.Bridge:
		l.VlanFiltering = t.VlanFiltering != nil && *t.VlanFiltering
		// IFLA_BR_VLAN_DEFAULT_PVID is only reported by kernels built with
		// CONFIG_BRIDGE_VLAN_FILTERING.
		l.VlanCapable = t.VlanDefaultPVID != nil
	}
	if len(m) < unix.SizeofIfInfomsg {
		return l, nil
	}
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return nil, fmt.Errorf("parsing attributes of %s: %w", l.Name, err)
	}
	for _, at := range attrs {
		switch at.Attr.Type &^ unix.NLA_F_NESTED {
		case unix.IFLA_CARRIER:
			if len(at.Value) > 0 {
				l.Carrier = at.Value[0] != 0
			}
			continue
		case unix.IFLA_LINKINFO:
		default:
			continue
		}
		info, err := nl.ParseRouteAttr(at.Value)
		if err != nil {
			return nil, fmt.Errorf("parsing link info of %s: %w", l.Name, err)
		}
		var slaveData []byte
		for _, i := range info {
			switch i.Attr.Type &^ unix.NLA_F_NESTED {
			case unix.IFLA_INFO_SLAVE_KIND:
				l.MasterType = unix.ByteSliceToString(i.Value)
			case unix.IFLA_INFO_SLAVE_DATA:
				slaveData = i.Value
			}
		}
		if l.MasterType == "bridge" && slaveData != nil {
			if err := l.parsePort(slaveData); err != nil {
				return nil, fmt.Errorf("parsing bridge port attributes of %s: %w", l.Name, err)
			}
		}
	}
	return l, nil
}

func (l *Link) parsePort(b []byte) error {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return err
	}
	for _, a := range attrs {
		if len(a.Value) < 1 {
			continue
		}
		on := a.Value[0] != 0
		switch a.Attr.Type &^ unix.NLA_F_NESTED {
		case unix.IFLA_BRPORT_LEARNING:
			l.Flags.Learning = on
		case unix.IFLA_BRPORT_UNICAST_FLOOD:
			l.Flags.Flood = on
		case unix.IFLA_BRPORT_LOCKED:
			l.Locked, l.LockedKnown = on, true
		}
	}
	return nil
}
