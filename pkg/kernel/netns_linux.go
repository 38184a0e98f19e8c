package kernel

import (
	"encoding/binary"
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// netnsaNsid and netnsaPid are NETNSA_NSID and NETNSA_PID (linux/net_namespace.h).
const (
	netnsaNsid = 1
	netnsaPid  = 2
	// rtgenmsgLen is struct rtgenmsg padded to NLMSG_ALIGNTO.
	rtgenmsgLen = (unix.SizeofRtGenmsg + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
)

// NetnsIDOfPid returns the id this connection's network namespace gives
// the network namespace of process pid (RTM_GETNSID), or -1 when it gives
// it none. A veth whose peer lives in that namespace names the same id as
// its IFLA_LINK_NETNSID (Link.PeerNetnsID): that is how a container's veth
// is told from any other.
func (c *Conn) NetnsIDOfPid(pid int) (int, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("network namespace id of pid %d: not a process id", pid)
	}
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, uint32(pid))
	req := c.request(unix.RTM_GETNSID, 0, nl.NewRtGenMsg(), nl.NewRtAttr(netnsaPid, b))
	msgs, err := c.execute(req, unix.RTM_NEWNSID)
	if err != nil {
		return 0, fmt.Errorf("network namespace id of pid %d: %w", pid, err)
	}
	for _, m := range msgs {
		if len(m) < rtgenmsgLen {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[rtgenmsgLen:])
		if err != nil {
			return 0, fmt.Errorf("network namespace id of pid %d: %w", pid, err)
		}
		for _, a := range attrs {
			if a.Attr.Type == netnsaNsid && len(a.Value) >= 4 {
				return int(int32(binary.NativeEndian.Uint32(a.Value))), nil
			}
		}
	}
	return 0, fmt.Errorf("network namespace id of pid %d: the kernel's answer has no id", pid)
}
