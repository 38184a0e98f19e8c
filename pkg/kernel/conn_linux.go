package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// DefaultTimeout bounds every netlink call: a stuck kernel call becomes an
// error instead of a guest start that never returns.
const DefaultTimeout = 5 * time.Second

// dumpRetries is how often a dump interrupted by a concurrent change
// (NLM_F_DUMP_INTR) is tried again.
const dumpRetries = 5

// Conn is an rtnetlink connection in one network namespace.
type Conn struct {
	sock *nl.NetlinkSocket
	// fd is the socket's descriptor (-1 once closed), pid its port ID,
	// seq the sequence number of the last request sent; rbuf is reused for
	// every datagram received (exchange_linux.go).
	fd      int
	pid     uint32
	seq     uint32
	timeout time.Duration
	rbuf    []byte
	byIndex map[int]*model.Link
	// byName and entries hold what Prefetch read, until the next write.
	byName  map[string]*model.Link
	entries map[entryKey][]model.Entry
	// queue holds the writes of a Pipeline call (nil outside one).
	queue []queued
	vlans []int
	// portVlans holds the VLANs of every bridge port, by port index, from
	// the same dump as vlans.
	portVlans map[int][]model.Vlan
	vlansOK   bool
	// sticky: the running kernel honours NTF_STICKY (Linux 4.20+).
	sticky bool
	// received, when set, runs after each datagram exchange reads: a
	// test's point between two datagrams of one answer, where the kernel
	// may change what a dump is listing.
	received func()
}

// Open connects to rtnetlink in namespace ns (netns.None() for the current
// one). Every send and receive is bounded by timeout.
func Open(ns netns.NsHandle, timeout time.Duration) (*Conn, error) {
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink socket: %w", err)
	}
	pid, err := s.GetPid()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("reading the netlink socket's port ID: %w", err)
	}
	_ = s.SetExtAck(true) // kernel error strings, where the kernel has them
	return &Conn{sock: s, fd: s.GetFd(), pid: pid, timeout: timeout, rbuf: make([]byte, receiveBuffer),
		byIndex: map[int]*model.Link{}, sticky: kernelAtLeast(release(), 4, 20)}, nil
}

// receiveBuffer holds the largest datagram the kernel sends: a dump fills
// at most 32 KiB per datagram, single answers are far smaller.
const receiveBuffer = 64 << 10

// release returns the running kernel's release string ("6.1.0-18-amd64").
func release() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelAtLeast reports whether release is major.minor or newer. An
// unreadable release counts as new: a failed write then tells the truth.
func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if n, _ := fmt.Sscanf(release, "%d.%d", &ma, &mi); n != 2 {
		return true
	}
	return ma > major || ma == major && mi >= minor
}

// Close releases the socket.
func (c *Conn) Close() {
	if c.fd >= 0 {
		c.sock.Close()
		c.fd = -1
	}
}

func (c *Conn) request(typ, flags int, data ...nl.NetlinkRequestData) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, flags)
	for _, d := range data {
		req.AddData(d)
	}
	return req
}

// execute sends one request and returns the payloads of its answer.
func (c *Conn) execute(req *nl.NetlinkRequest, resType uint16) ([][]byte, error) {
	r, err := c.exchange(resType, req)
	if err != nil {
		return nil, timeoutError(err)
	}
	return r[0].msgs, r[0].err
}

// timeoutError names a timeout as such.
func timeoutError(err error) error {
	if isTimeout(err) {
		return fmt.Errorf("kernel did not answer within the netlink timeout: %w", err)
	}
	return err
}

// dump runs a dump request, retrying when a concurrent change interrupted it.
func (c *Conn) dump(build func() *nl.NetlinkRequest, resType uint16) ([][]byte, error) {
	var err error
	for range dumpRetries {
		var msgs [][]byte
		msgs, err = c.execute(build(), resType)
		if !errors.Is(err, nl.ErrDumpInterrupted) {
			return msgs, err
		}
	}
	return nil, err
}

func isTimeout(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EWOULDBLOCK)
}

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (Linux 4.19+; older
// kernels ignore it): link replies without the interface counters, which
// fdbhook never reads and which are most of what the kernel computes and
// copies for a link.
const rtextFilterSkipStats = 1 << 3

func skipStats() *nl.RtAttr {
	return nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats))
}

// Link looks a device up by name; nil when it does not exist. The request
// is the library's LinkByName's, less the interface counters (skipStats).
func (c *Conn) Link(name string) (*model.Link, error) {
	if l, ok := c.byName[name]; ok {
		cp := *l
		return &cp, nil
	}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	return c.getLink(c.request(unix.RTM_GETLINK, 0, msg,
		nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)), skipStats()))
}

// LinkByIndex looks a device up by index; nil when it does not exist.
// Results are cached for the connection's life (one hook run). The
// request is the library's LinkByIndex's, less the interface counters.
func (c *Conn) LinkByIndex(index int) (*model.Link, error) {
	if l, ok := c.byIndex[index]; ok {
		return l, nil
	}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	return c.getLink(c.request(unix.RTM_GETLINK, 0, msg, skipStats()))
}

func (c *Conn) getLink(req *nl.NetlinkRequest) (*model.Link, error) {
	msgs, err := c.execute(req, unix.RTM_NEWLINK)
	if errors.Is(err, unix.ENODEV) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	l, err := parseLink(msgs[0])
	if err != nil {
		return nil, err
	}
	if l.Type == "bridge" {
		l.StickyCapable = c.sticky
	}
	if l.MasterIndex != 0 {
		m, err := c.LinkByIndex(l.MasterIndex)
		if err != nil {
			return nil, fmt.Errorf("looking up master of %s: %w", l.Name, err)
		}
		if m != nil {
			l.Master = m.Name
			if l.MasterType == "" {
				l.MasterType = m.Type
			}
		}
	}
	c.byIndex[l.Index] = l
	return l, nil
}

// Links returns every device of the namespace from one RTM_GETLINK dump
// (the library's LinkList's, less the interface counters; retried when a
// concurrent change interrupts it), with master names
// filled in. It only reads. Each device also enters the LinkByIndex cache,
// as a copy: callers may change what they get back.
func (c *Conn) Links() ([]*model.Link, error) {
	msgs, err := c.dump(func() *nl.NetlinkRequest {
		return c.request(unix.RTM_GETLINK, unix.NLM_F_DUMP, nl.NewIfInfomsg(unix.AF_UNSPEC), skipStats())
	}, unix.RTM_NEWLINK)
	if err != nil {
		return nil, fmt.Errorf("dumping links: %w", err)
	}
	out := make([]*model.Link, 0, len(msgs))
	byIndex := make(map[int]*model.Link, len(msgs))
	for _, m := range msgs {
		l, err := parseLink(m)
		if err != nil {
			return nil, err
		}
		if l.Type == "bridge" {
			l.StickyCapable = c.sticky
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
		cp := *l
		c.byIndex[l.Index] = &cp
	}
	return out, nil
}

// parseLink reads a link message: a tap or a bridge attribute by
// attribute, any other device through parseLinkLibrary.
func parseLink(m []byte) (*model.Link, error) {
	if len(m) < unix.SizeofIfInfomsg {
		return nil, fmt.Errorf("parsing link message: %d bytes", len(m))
	}
	var a linkAttrs
	if err := a.read(m[unix.SizeofIfInfomsg:]); err != nil {
		return nil, err
	}
	var l *model.Link
	switch a.kind {
	case "tun", "bridge":
		l = a.link(nl.DeserializeIfInfomsg(m))
	default:
		var err error
		if l, err = parseLinkLibrary(m); err != nil {
			return nil, err
		}
	}
	if err := a.port(l); err != nil {
		return nil, err
	}
	return l, nil
}

// parseLinkLibrary reads a link message with the netlink library's
// LinkDeserialize, which names every kind of device as the library does
// (Type). parseLink reads taps and bridges, the devices a hook run reads
// by the dozen, itself: LinkDeserialize decodes each of a link message's
// some 50 attributes into Go values, 6 KB of them for a 1.5 KB message, and
// the hook needs nine (bench/results.md, section 5).
func parseLinkLibrary(m []byte) (*model.Link, error) {
	nlink, err := netlink.LinkDeserialize(nil, m)
	if err != nil {
		return nil, fmt.Errorf("parsing link message: %w", err)
	}
	a := nlink.Attrs()
	l := &model.Link{Name: a.Name, Index: a.Index, Type: nlink.Type(), MasterIndex: a.MasterIndex,
		Promiscuity: a.Promisc, PromiscFlag: a.RawFlags&unix.IFF_PROMISC != 0,
		// IFLA_CARRIER, read by linkAttrs.port, overrides this where the
		// kernel has it.
		Carrier:     a.RawFlags&unix.IFF_LOWER_UP != 0,
		PeerNetnsID: a.NetNsID}
	switch t := nlink.(type) {
	case *netlink.Tuntap:
		l.TunMode = tunMode(t.Mode)
	case *netlink.Bridge:
		l.VlanFiltering = t.VlanFiltering != nil && *t.VlanFiltering
		// IFLA_BR_VLAN_DEFAULT_PVID is only reported by kernels built with
		// CONFIG_BRIDGE_VLAN_FILTERING.
		l.VlanCapable = t.VlanDefaultPVID != nil
		if t.VlanDefaultPVID != nil {
			l.DefaultPvid = int(*t.VlanDefaultPVID)
		}
	}
	return l, nil
}

func tunMode(m netlink.TuntapMode) string {
	switch m {
	case netlink.TUNTAP_MODE_TAP:
		return "tap"
	case netlink.TUNTAP_MODE_TUN:
		return "tun"
	}
	return ""
}

// linkAttrs are the attributes of a link message fdbhook reads.
type linkAttrs struct {
	name            string
	master, promisc int
	carrier         []byte // IFLA_CARRIER, when the kernel sends it
	kind, slaveKind string
	data, slaveData []byte
}

// read walks the top-level attributes and the link info.
func (a *linkAttrs) read(b []byte) error {
	var info []byte
	err := eachAttr(b, func(typ uint16, val []byte) {
		switch {
		case typ == unix.IFLA_IFNAME && len(val) > 0:
			a.name = string(val[:len(val)-1]) // as LinkDeserialize: less the NUL
		case typ == unix.IFLA_MASTER && len(val) >= 4:
			a.master = int(binary.NativeEndian.Uint32(val))
		case typ == unix.IFLA_PROMISCUITY && len(val) >= 4:
			a.promisc = int(binary.NativeEndian.Uint32(val))
		case typ == unix.IFLA_CARRIER && len(val) > 0:
			a.carrier = val
		case typ == unix.IFLA_LINKINFO:
			info = val
		}
	})
	if err != nil || info == nil {
		return err
	}
	if err := eachAttr(info, func(typ uint16, val []byte) {
		switch {
		case typ == unix.IFLA_INFO_KIND && len(val) > 0:
			a.kind = string(val[:len(val)-1])
		case typ == unix.IFLA_INFO_DATA:
			a.data = val
		case typ == unix.IFLA_INFO_SLAVE_KIND:
			a.slaveKind = unix.ByteSliceToString(val)
		case typ == unix.IFLA_INFO_SLAVE_DATA:
			a.slaveData = val
		}
	}); err != nil {
		return fmt.Errorf("parsing link info of %s: %w", a.name, err)
	}
	return nil
}

// link is a tap's or a bridge's Link, as parseLinkLibrary reads it.
func (a *linkAttrs) link(msg *nl.IfInfomsg) *model.Link {
	l := &model.Link{Name: a.name, Index: int(msg.Index), MasterIndex: a.master,
		Promiscuity: a.promisc, PromiscFlag: msg.Flags&unix.IFF_PROMISC != 0,
		Carrier: msg.Flags&unix.IFF_LOWER_UP != 0, PeerNetnsID: -1} // a tap or bridge has no peer
	switch a.kind {
	case "tun":
		l.Type = "tuntap" // the library's name for the kind
		_ = eachAttr(a.data, func(typ uint16, val []byte) {
			if typ == unix.IFLA_TUN_TYPE && len(val) > 0 {
				l.TunMode = tunMode(netlink.TuntapMode(val[0]))
			}
		})
	case "bridge":
		l.Type = "bridge"
		_ = eachAttr(a.data, func(typ uint16, val []byte) {
			switch {
			case typ == unix.IFLA_BR_VLAN_FILTERING && len(val) > 0:
				l.VlanFiltering = val[0] == 1
			case typ == unix.IFLA_BR_VLAN_DEFAULT_PVID && len(val) >= 2:
				l.VlanCapable, l.DefaultPvid = true, int(binary.NativeEndian.Uint16(val))
			}
		})
	}
	return l
}

// port adds what the library does not read: the carrier, and the master's
// kind and, on a bridge port, the port's flags.
func (a *linkAttrs) port(l *model.Link) error {
	if a.carrier != nil {
		l.Carrier = a.carrier[0] != 0
	}
	l.MasterType = a.slaveKind
	if a.slaveKind == "bridge" && a.slaveData != nil {
		var err error
		l.Flags, l.LockCapable, l.MabCapable, err = parsePortFlags(a.slaveData)
		if err != nil {
			return fmt.Errorf("parsing bridge port flags of %s: %w", l.Name, err)
		}
	}
	return nil
}

// eachAttr calls f for every netlink attribute in b, in order, with its
// type less NLA_F_NESTED. It allocates nothing: a link message has some 50
// attributes, and parsing them into a slice (nl.ParseRouteAttr) cost more
// than the rest of reading a link.
func eachAttr(b []byte, f func(typ uint16, val []byte)) error {
	for len(b) >= unix.SizeofRtAttr {
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		if n < unix.SizeofRtAttr || n > len(b) {
			return fmt.Errorf("netlink attribute of %d bytes in %d", n, len(b))
		}
		f(binary.NativeEndian.Uint16(b[2:4])&^unix.NLA_F_NESTED, b[unix.SizeofRtAttr:n])
		b = b[min(nlmAlign(n), len(b)):]
	}
	return nil
}

// parsePortFlags reads a bridge port's flags from its slave data, and
// whether the kernel reports IFLA_BRPORT_LOCKED (5.18+) and IFLA_BRPORT_MAB
// (6.2+) at all: a kernel that reports one can set it.
func parsePortFlags(b []byte) (f model.Flags, lockCapable, mabCapable bool, err error) {
	err = eachAttr(b, func(typ uint16, val []byte) {
		if len(val) < 1 {
			return
		}
		switch typ {
		case unix.IFLA_BRPORT_LEARNING:
			f.Learning = val[0] != 0
		case unix.IFLA_BRPORT_UNICAST_FLOOD:
			f.Flood = val[0] != 0
		case unix.IFLA_BRPORT_LOCKED:
			f.Locked = val[0] != 0
			lockCapable = true
		case unix.IFLA_BRPORT_MAB:
			f.Mab = val[0] != 0
			mabCapable = true
		}
	})
	return f, lockCapable, mabCapable, err
}

// Entries returns the FDB entries for mac on bridge for VLAN 0 and, when the
// kernel has bridge VLAN support, for every VLAN configured on any bridge
// port. Each lookup is an RTM_GETNEIGH "get" (kernel 5.3+), so the cost does
// not grow with the size of the FDB.
func (c *Conn) Entries(bridge *model.Link, mac string) ([]model.Entry, error) {
	if e, ok := c.entries[entryKey{bridge.Index, mac}]; ok {
		var out []model.Entry // nil when none, as below
		return c.named(append(out, e...))
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return nil, err
	}
	vids := []int{0}
	// A kernel with bridge VLAN support gives every port VLAN 1 (or the
	// bridge's default pvid), and an add without a VLAN writes an entry for
	// each of the port's VLANs even while vlan_filtering is 0.
	if bridge.VlanFiltering || bridge.VlanCapable {
		vl, err := c.bridgeVlans()
		if err != nil {
			return nil, fmt.Errorf("reading VLANs of bridge ports: %w", err)
		}
		vids = append(vids, vl...)
	}
	var out []model.Entry
	for _, vid := range vids {
		e, err := c.fdbGet(bridge.Index, hw, vid)
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			return c.entriesByDump(bridge, mac)
		}
		if err != nil {
			return nil, err
		}
		if e != nil && e.Vlan == vid {
			out = append(out, *e)
		}
	}
	return c.named(out)
}

func (c *Conn) fdbGet(bridgeIndex int, hw net.HardwareAddr, vid int) (*model.Entry, error) {
	r, err := c.exchange(unix.RTM_NEWNEIGH, c.fdbGetRequest(bridgeIndex, hw, vid))
	return fdbGetResult(r, 0, timeoutError(err))
}

// fdbGetRequest is an FDB "get" of one MAC on a bridge, for one VLAN (0:
// none). A raw request: the netlink library has no call for it.
func (c *Conn) fdbGetRequest(bridgeIndex int, hw net.HardwareAddr, vid int) *nl.NetlinkRequest {
	req := c.request(unix.RTM_GETNEIGH, 0,
		&netlink.Ndmsg{Family: unix.AF_BRIDGE, Flags: unix.NTF_MASTER},
		nl.NewRtAttr(unix.NDA_LLADDR, hw),
		nl.NewRtAttr(unix.NDA_MASTER, nl.Uint32Attr(uint32(bridgeIndex))))
	if vid != 0 {
		req.AddData(nl.NewRtAttr(unix.NDA_VLAN, nl.Uint16Attr(uint16(vid))))
	}
	return req
}

// fdbGetResult is the entry answered to the i-th FDB get of an exchange
// that returned replies and err; nil when there is none.
func fdbGetResult(replies []reply, i int, err error) (*model.Entry, error) {
	if err != nil {
		return nil, err
	}
	r := replies[i]
	if errors.Is(r.err, unix.ENOENT) {
		return nil, nil
	}
	if r.err != nil || len(r.msgs) == 0 {
		return nil, r.err
	}
	e, _, err := parseEntry(r.msgs[0])
	return e, err
}

// userHZ is the unit of NDA_CACHEINFO's times (clock_t, USER_HZ ticks a
// second: 100 on every Linux architecture fdbhook builds for).
const userHZ = 100

// parseEntry parses an FDB entry and returns the bridge it belongs to (its
// NDA_MASTER; 0 for a device's own "self" entries). The kernel does not
// set NTF_MASTER in what it reports, only NDA_MASTER: the entry gets the
// flag here, as `bridge fdb` shows "master".

func parseEntry(m []byte) (*model.Entry, int, error) {
	n, err := netlink.NeighDeserialize(m)
	if err != nil {
		return nil, 0, fmt.Errorf("parsing FDB entry: %w", err)
	}
	e := &model.Entry{MAC: n.HardwareAddr.String(), PortIndex: n.LinkIndex, Vlan: n.Vlan,
		State: n.State, NTFlags: n.Flags, FlagsExt: n.FlagsExt}
	if e.Locked() {
		e.Updated = time.Duration(n.Updated) * time.Second / userHZ
	}
	if n.MasterIndex != 0 {
		e.NTFlags |= unix.NTF_MASTER
	}
	return e, n.MasterIndex, nil
}

// entriesByDump is the fallback for kernels without FDB "get".
func (c *Conn) entriesByDump(bridge *model.Link, mac string) ([]model.Entry, error) {
	all, err := c.BridgeEntries(bridge)
	if err != nil {
		return nil, err
	}
	var out []model.Entry
	for _, e := range all {
		if e.MAC == mac {
			out = append(out, e)
		}
	}
	return out, nil
}

// BridgeEntries dumps every FDB entry of bridge (kernel-filtered by bridge).
func (c *Conn) BridgeEntries(bridge *model.Link) ([]model.Entry, error) {
	return c.fdbDump(bridge.Index, 0)
}

// PortEntries dumps the FDB entries of bridge that point at port.
func (c *Conn) PortEntries(bridge, port *model.Link) ([]model.Entry, error) {
	return c.fdbDump(bridge.Index, port.Index)
}

// fdbDump is a raw request: the library's NeighList dumps the FDB of every
// bridge and filters in user space, where this request has the kernel
// filter by bridge (and port), which matters on a bridge with 10000
// entries.
func (c *Conn) fdbDump(bridgeIndex, portIndex int) ([]model.Entry, error) {
	msgs, err := c.dump(func() *nl.NetlinkRequest {
		// An ifinfomsg with IFLA_MASTER is the form the kernel filters by
		// bridge (and by port, through ifi_index), as `bridge fdb show br`.
		msg := nl.NewIfInfomsg(unix.AF_BRIDGE)
		msg.Index = int32(portIndex)
		return c.request(unix.RTM_GETNEIGH, unix.NLM_F_DUMP, msg,
			nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(bridgeIndex))))
	}, unix.RTM_NEWNEIGH)
	if err != nil {
		return nil, err
	}
	out := make([]model.Entry, 0, len(msgs))
	for _, m := range msgs {
		e, master, err := parseEntry(m)
		if err != nil {
			return nil, err
		}
		if master != bridgeIndex || e.NTFlags&unix.NTF_SELF != 0 || (portIndex != 0 && e.PortIndex != portIndex) {
			continue
		}
		out = append(out, *e)
	}
	return c.named(out)
}

// named fills in port names.
func (c *Conn) named(entries []model.Entry) ([]model.Entry, error) {
	for i := range entries {
		l, err := c.LinkByIndex(entries[i].PortIndex)
		if err != nil {
			return nil, err
		}
		if l != nil {
			entries[i].Port = l.Name
		} else {
			entries[i].Port = fmt.Sprintf("if%d", entries[i].PortIndex)
		}
	}
	return entries, nil
}

// bridgeVlans returns the VLAN IDs configured on any bridge port, sorted,
// from the dump the library's BridgeVlanList sends, kept per port.
func (c *Conn) bridgeVlans() ([]int, error) {
	if c.vlansOK {
		return c.vlans, nil
	}
	msgs, err := c.dump(func() *nl.NetlinkRequest {
		return c.request(unix.RTM_GETLINK, unix.NLM_F_DUMP, nl.NewIfInfomsg(unix.AF_BRIDGE),
			nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(uint32(nl.RTEXT_FILTER_BRVLAN))))
	}, unix.RTM_NEWLINK)
	if err != nil {
		return nil, err
	}
	seen := map[int]bool{}
	c.vlans, c.portVlans = nil, map[int][]model.Vlan{}
	for _, m := range msgs {
		if len(m) < unix.SizeofIfInfomsg {
			continue
		}
		port := int(nl.DeserializeIfInfomsg(m).Index)
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
		if err != nil {
			return nil, err
		}
		for _, a := range attrs {
			if a.Attr.Type&^unix.NLA_F_NESTED != unix.IFLA_AF_SPEC {
				continue
			}
			spec, err := nl.ParseRouteAttr(a.Value)
			if err != nil {
				return nil, err
			}
			for _, s := range spec {
				if s.Attr.Type == nl.IFLA_BRIDGE_VLAN_INFO && len(s.Value) >= 4 {
					info := nl.DeserializeBridgeVlanInfo(s.Value)
					seen[int(info.Vid)] = true
					c.portVlans[port] = append(c.portVlans[port], model.Vlan{ID: int(info.Vid),
						Pvid:     info.Flags&nl.BRIDGE_VLAN_INFO_PVID != 0,
						Untagged: info.Flags&nl.BRIDGE_VLAN_INFO_UNTAGGED != 0})
				}
			}
		}
	}
	for v := range seen {
		c.vlans = append(c.vlans, v)
	}
	for _, vl := range c.portVlans {
		sort.Slice(vl, func(i, j int) bool { return vl[i].ID < vl[j].ID })
	}
	sort.Ints(c.vlans)
	c.vlansOK = true
	return c.vlans, nil
}

// PortVlans returns the VLANs of a bridge port, sorted by ID (none on a
// bridge that does not filter VLANs, or a kernel without VLAN filtering).
func (c *Conn) PortVlans(portIndex int) ([]model.Vlan, error) {
	if _, err := c.bridgeVlans(); err != nil {
		return nil, fmt.Errorf("reading VLANs of bridge ports: %w", err)
	}
	return append([]model.Vlan{}, c.portVlans[portIndex]...), nil
}
