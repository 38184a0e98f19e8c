package kernel

import (
	"net"
	"slices"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// prefetchBatch is how many requests one sendmsg of Prefetch carries. The
// kernel answers them all before the first is read, into the socket's
// receive buffer (rmem_default, 208 KiB on most systems); an answer that
// does not fit is dropped, so a batch stays well below that: 16 link
// answers are about 40 KiB of buffer.
const prefetchBatch = 16

// entryKey names the FDB entries of one MAC on one bridge.
type entryKey struct {
	bridge int
	mac    string
}

// Prefetch reads ahead, in pipelined batches, what planning a guest's
// start asks the kernel one NIC at a time: the device of each port, its
// master, and the FDB entries of each port's MACs on that master. Link and
// Entries then answer from what it read until the next write through this
// connection. It is only a faster way to the same answers: anything it
// cannot read (a missing device, a kernel without FDB get, any error) is
// left for the call itself, which reads it and reports errors as usual.
// ports maps a port name to the MACs to look up on its bridge.
func (c *Conn) Prefetch(ports map[string][]string) {
	if len(ports) < 2 {
		return // one NIC: the calls themselves are as fast
	}
	if c.byName == nil {
		c.byName = map[string]*model.Link{}
		c.entries = map[entryKey][]model.Entry{}
	}
	names := make([]string, 0, len(ports))
	for n := range ports {
		if _, ok := c.byName[n]; !ok {
			names = append(names, n)
		}
	}
	links := prefetchLinks(c, names, func(name string) *nl.NetlinkRequest {
		return c.request(unix.RTM_GETLINK, 0, nl.NewIfInfomsg(unix.AF_UNSPEC),
			nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)), skipStats())
	})
	var masters []int
	for _, l := range links {
		if _, ok := c.byIndex[l.MasterIndex]; l.MasterIndex != 0 && !ok && !slices.Contains(masters, l.MasterIndex) {
			masters = append(masters, l.MasterIndex)
		}
	}
	for _, m := range prefetchLinks(c, masters, func(index int) *nl.NetlinkRequest {
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Index = int32(index)
		return c.request(unix.RTM_GETLINK, 0, msg, skipStats())
	}) {
		c.byIndex[m.Index] = m
	}
	for _, l := range links {
		if m := c.byIndex[l.MasterIndex]; l.MasterIndex != 0 && m != nil {
			l.Master = m.Name
			if l.MasterType == "" {
				l.MasterType = m.Type
			}
		}
		c.byIndex[l.Index] = l
		cp := *l
		c.byName[l.Name] = &cp
	}
	c.prefetchEntries(ports)
}

// prefetchLinks reads the devices keys name (by name or index), pipelined,
// and returns those it read; a device that does not exist, or any error,
// leaves it out.
func prefetchLinks[K string | int](c *Conn, keys []K, build func(K) *nl.NetlinkRequest) []*model.Link {
	var out []*model.Link
	for len(keys) > 0 {
		n := min(len(keys), prefetchBatch)
		reqs := make([]*nl.NetlinkRequest, n)
		for i, k := range keys[:n] {
			reqs[i] = build(k)
		}
		keys = keys[n:]
		replies, err := c.exchange(unix.RTM_NEWLINK, reqs...)
		if err != nil {
			return out
		}
		for _, r := range replies {
			if r.err != nil || len(r.msgs) == 0 {
				continue
			}
			l, err := parseLink(r.msgs[0])
			if err != nil {
				continue
			}
			if l.Type == "bridge" {
				l.StickyCapable = c.sticky
			}
			out = append(out, l)
		}
	}
	return out
}

// prefetchEntries reads, pipelined, the FDB entries of each port's MACs on
// the port's bridge, for VLAN 0 and every VLAN of the bridge's ports, as
// Entries does.
func (c *Conn) prefetchEntries(ports map[string][]string) {
	found, failed := c.askEntries(c.entryGets(ports))
	for key := range c.entries {
		if c.entries[key] != nil {
			continue
		}
		if failed[key] {
			delete(c.entries, key) // Entries asks again, and reports the error
			continue
		}
		c.entries[key] = append([]model.Entry{}, found[key]...)
	}
}

// entryGet is one FDB get of a prefetch: a MAC on a bridge, in one VLAN.
type entryGet struct {
	key entryKey
	hw  net.HardwareAddr
	vid int
}

// entryGets lists the gets that answer Entries for each port's MACs not
// cached yet, and claims their cache keys (nil until answered).
func (c *Conn) entryGets(ports map[string][]string) []entryGet {
	var gets []entryGet
	for name, macs := range ports {
		tap := c.byName[name]
		if tap == nil || tap.MasterIndex == 0 || c.byIndex[tap.MasterIndex] == nil {
			continue
		}
		br := c.byIndex[tap.MasterIndex]
		vids := []int{0}
		if br.VlanFiltering || br.VlanCapable {
			vl, err := c.bridgeVlans()
			if err != nil {
				continue
			}
			vids = append(vids, vl...)
		}
		for _, mac := range macs {
			hw, err := net.ParseMAC(mac)
			key := entryKey{br.Index, mac}
			if _, done := c.entries[key]; err != nil || done {
				continue
			}
			c.entries[key] = nil // claimed: every VLAN of it is asked below
			for _, vid := range vids {
				gets = append(gets, entryGet{key, hw, vid})
			}
		}
	}
	return gets
}

// askEntries sends gets prefetchBatch at a time and collects, per key, the
// entries found and whether any of its gets failed.
func (c *Conn) askEntries(gets []entryGet) (found map[entryKey][]model.Entry, failed map[entryKey]bool) {
	found, failed = map[entryKey][]model.Entry{}, map[entryKey]bool{}
	for len(gets) > 0 {
		n := min(len(gets), prefetchBatch)
		reqs := make([]*nl.NetlinkRequest, n)
		for i, g := range gets[:n] {
			reqs[i] = c.fdbGetRequest(g.key.bridge, g.hw, g.vid)
		}
		replies, err := c.exchange(unix.RTM_NEWNEIGH, reqs...)
		for i, g := range gets[:n] {
			e, err := fdbGetResult(replies, i, err)
			switch {
			case err != nil:
				failed[g.key] = true
			case e != nil && e.Vlan == g.vid:
				found[g.key] = append(found[g.key], *e)
			}
		}
		gets = gets[n:]
	}
	return found, failed
}
