package testbed

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/test/lab"
)

// Lab is one network namespace and a netlink handle in it. Every device a
// benchmark creates lives there; nothing is created in the host's namespace.
type Lab struct {
	NS netns.NsHandle
	H  *netlink.Handle
}

// Current returns a Lab on the process's own network namespace, which must
// be the named namespace name (/run/netns/NAME, as `ip netns exec NAME`
// runs a command in): a guard against building bridges in the host's
// namespace by accident.
func Current(name string) (*Lab, error) {
	var self, named unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return nil, err
	}
	if err := unix.Stat("/run/netns/"+name, &named); err != nil {
		return nil, fmt.Errorf("network namespace %q: %w", name, err)
	}
	if self.Dev != named.Dev || self.Ino != named.Ino {
		return nil, fmt.Errorf("not running in network namespace %q: run under 'ip netns exec %s'", name, name)
	}
	ns, err := netns.Get()
	if err != nil {
		return nil, err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, err
	}
	return &Lab{NS: ns, H: h}, nil
}

// New creates a fresh, unnamed network namespace. It disappears when Close
// releases the last reference to it, also when the process dies.
func New() (*Lab, error) {
	ns, err := lab.NewNetNS()
	if err != nil {
		return nil, err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, err
	}
	return &Lab{NS: ns, H: h}, nil
}

// Close releases the handle and the namespace handle; a namespace New made
// ends with it.
func (l *Lab) Close() {
	l.H.Close()
	l.NS.Close()
}

// Do runs f on an OS thread that is inside the lab's namespace: opening
// /dev/net/tun and fork-exec take the namespace of the calling thread.
func (l *Lab) Do(f func() error) error { return lab.InNS(l.NS, f) }

// Bridge creates bridge name (STP off, the kernel's default) and sets it up.
func (l *Lab) Bridge(name string) (netlink.Link, error) {
	if err := l.H.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		return nil, fmt.Errorf("creating bridge %s: %w", name, err)
	}
	br, err := l.H.LinkByName(name)
	if err != nil {
		return nil, err
	}
	return br, l.H.LinkSetUp(br)
}

// tunOpen creates (or attaches to) tap name through /dev/net/tun the way
// QEMU and libvirt do, from a thread in the lab's namespace.
func (l *Lab) tunOpen(name string, persist bool) (*os.File, error) {
	var f *os.File
	err := l.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("opening /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF %s: %w", name, err)
		}
		if persist {
			if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
				unix.Close(fd)
				return fmt.Errorf("TUNSETPERSIST %s: %w", name, err)
			}
		}
		// A non-blocking fd becomes a pollable *os.File: reads wait in the
		// runtime's poller and Close or a deadline interrupts them.
		f = os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
		return nil
	})
	return f, err
}

// enslave puts link on bridge and sets it up.
func (l *Lab) enslave(name string, bridge netlink.Link) (netlink.Link, error) {
	link, err := l.H.LinkByName(name)
	if err != nil {
		return nil, err
	}
	if err := l.H.LinkSetMasterByIndex(link, bridge.Attrs().Index); err != nil {
		return nil, fmt.Errorf("enslaving %s to %s: %w", name, bridge.Attrs().Name, err)
	}
	if err := l.H.LinkSetUp(link); err != nil {
		return nil, err
	}
	return l.H.LinkByName(name)
}

// Taps creates persistent taps (no process holds them, as after libvirt
// created them and before QEMU runs) and enslaves them to bridge.
func (l *Lab) Taps(bridge netlink.Link, names []string) ([]netlink.Link, error) {
	out := make([]netlink.Link, 0, len(names))
	for _, n := range names {
		f, err := l.tunOpen(n, true)
		if err != nil {
			return nil, err
		}
		f.Close()
		link, err := l.enslave(n, bridge)
		if err != nil {
			return nil, err
		}
		out = append(out, link)
	}
	return out, nil
}

// HeldTap creates tap name, enslaves it to bridge and returns the open
// queue, as QEMU holds it: the tap has carrier while the file is open, and
// every frame the bridge sends to the port can be read from the file.
func (l *Lab) HeldTap(bridge netlink.Link, name string) (*os.File, netlink.Link, error) {
	f, err := l.tunOpen(name, false)
	if err != nil {
		return nil, nil, err
	}
	link, err := l.enslave(name, bridge)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, link, nil
}

// Veth creates a veth pair, puts inner on bridge, and sets both up. outer
// is the far end of the uplink, where test traffic comes from.
func (l *Lab) Veth(bridge netlink.Link, inner, outer string) (in, out netlink.Link, err error) {
	if err := l.H.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: inner}, PeerName: outer}); err != nil {
		return nil, nil, fmt.Errorf("creating veth %s/%s: %w", inner, outer, err)
	}
	if in, err = l.enslave(inner, bridge); err != nil {
		return nil, nil, err
	}
	if out, err = l.H.LinkByName(outer); err != nil {
		return nil, nil, err
	}
	return in, out, l.H.LinkSetUp(out)
}

// Link looks a device up by name.
func (l *Lab) Link(name string) (netlink.Link, error) { return l.H.LinkByName(name) }

// Reset undoes what a start hook does to a guest's ports: learning and
// flooding back on (the kernel's defaults) and the static entry for the
// guest's MAC gone. Absent entries are fine.
func (l *Lab) Reset(nics []NIC) error {
	for _, n := range nics {
		link, err := l.H.LinkByName(n.Tap)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Tap, err)
		}
		if err := l.H.LinkSetLearning(link, true); err != nil {
			return fmt.Errorf("%s: learning on: %w", n.Tap, err)
		}
		if err := l.H.LinkSetFlood(link, true); err != nil {
			return fmt.Errorf("%s: flood on: %w", n.Tap, err)
		}
		if err := l.DelEntry(link, n.MAC); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s: deleting %s: %w", n.Tap, n.MAC, err)
		}
	}
	return nil
}

func fdbNeigh(port netlink.Link, mac string) (*netlink.Neigh, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return nil, err
	}
	return &netlink.Neigh{LinkIndex: port.Attrs().Index, Family: unix.AF_BRIDGE,
		Flags: netlink.NTF_MASTER, State: netlink.NUD_NOARP, HardwareAddr: hw}, nil
}

// StaticEntry writes the static FDB entry mac on port (bridge fdb replace
// MAC dev PORT master static).
func (l *Lab) StaticEntry(port netlink.Link, mac string) error {
	n, err := fdbNeigh(port, mac)
	if err != nil {
		return err
	}
	return l.H.NeighSet(n)
}

// DelEntry deletes the FDB entry for mac on port.
func (l *Lab) DelEntry(port netlink.Link, mac string) error {
	n, err := fdbNeigh(port, mac)
	if err != nil {
		return err
	}
	return l.H.NeighDel(n)
}
