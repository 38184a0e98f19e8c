package kernel

import (
	"fmt"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// The benchmarks below put this package's calls beside the netlink
// library's Handle calls for the same work, in a namespace with a bridge
// and benchPorts ports: go test -bench . ./pkg/kernel (root). They are
// why the connection sends its own requests (exchange_linux.go).

const benchPorts = 64

func benchLab(b *testing.B) (*lab, []int) {
	l := newLab(b)
	return l, l.addPorts(b, benchPorts)
}

// BenchmarkEntryWrite: one static entry per port written, as a start
// does: ReplaceEntry one by one, the same writes pipelined, and the
// library's NeighSet.
func BenchmarkEntryWrite(b *testing.B) {
	l, idx := benchLab(b)
	entry := func(i int) model.Entry {
		return model.Entry{MAC: portMAC(i), PortIndex: idx[i], State: model.NUDNoARP, NTFlags: model.NTFMaster}
	}
	b.Run("conn", func(b *testing.B) {
		for range b.N {
			for i := range idx {
				if err := l.c.ReplaceEntry(entry(i)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("conn-pipelined", func(b *testing.B) {
		for range b.N {
			for _, err := range l.c.Pipeline(func() {
				for i := range idx {
					_ = l.c.ReplaceEntry(entry(i))
				}
			}) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("library-NeighSet", func(b *testing.B) {
		for range b.N {
			for i, port := range idx {
				hw, _ := net.ParseMAC(portMAC(i))
				n := &netlink.Neigh{LinkIndex: port, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER,
					State: netlink.NUD_NOARP, HardwareAddr: hw}
				if err := l.h.NeighSet(n); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkPortFlags: learning and flooding off on every port: one message
// per port, pipelined, and the library's two calls per port (it has none
// that sets both in one message).
func BenchmarkPortFlags(b *testing.B) {
	l, idx := benchLab(b)
	b.Run("conn", func(b *testing.B) {
		for range b.N {
			for _, port := range idx {
				if err := l.c.SetPortFlags(port, model.Flags{}, false, false); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("conn-pipelined", func(b *testing.B) {
		for range b.N {
			for _, err := range l.c.Pipeline(func() {
				for _, port := range idx {
					_ = l.c.SetPortFlags(port, model.Flags{}, false, false)
				}
			}) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("library-LinkSetLearning+Flood", func(b *testing.B) {
		for range b.N {
			for _, port := range idx {
				p := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: port}}
				if err := l.h.LinkSetLearning(p, false); err != nil {
					b.Fatal(err)
				}
				if err := l.h.LinkSetFlood(p, false); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkPortLookup: every port by name, as planning a start needs them:
// one by one, read ahead (Prefetch, pipelined), one dump of every link
// (Links), and the library's LinkByName and LinkList.
func BenchmarkPortLookup(b *testing.B) {
	l, idx := benchLab(b)
	names := make([]string, len(idx))
	ports := map[string][]string{}
	for i := range idx {
		names[i] = fmt.Sprintf("fdbtp%d", i)
		ports[names[i]] = nil
	}
	b.Run("conn-Link", func(b *testing.B) {
		for range b.N {
			l.c.byIndex = map[int]*model.Link{l.br.Attrs().Index: {Name: "br0", Type: "bridge"}}
			for _, n := range names {
				if p, err := l.c.Link(n); err != nil || p == nil {
					b.Fatal(n, err)
				}
			}
		}
	})
	b.Run("conn-Prefetch", func(b *testing.B) {
		for range b.N {
			l.c.forget()
			l.c.byIndex = map[int]*model.Link{l.br.Attrs().Index: {Name: "br0", Type: "bridge"}}
			l.c.Prefetch(ports)
			for _, n := range names {
				if p, err := l.c.Link(n); err != nil || p == nil {
					b.Fatal(n, err)
				}
			}
		}
	})
	b.Run("conn-Links", func(b *testing.B) {
		for range b.N {
			if all, err := l.c.Links(); err != nil || len(all) < len(names) {
				b.Fatal(len(all), err)
			}
		}
	})
	b.Run("library-LinkByName", func(b *testing.B) {
		for range b.N {
			for _, n := range names {
				if _, err := l.h.LinkByName(n); err != nil {
					b.Fatal(n, err)
				}
			}
		}
	})
	b.Run("library-LinkList", func(b *testing.B) {
		for range b.N {
			if all, err := l.h.LinkList(); err != nil || len(all) < len(names) {
				b.Fatal(len(all), err)
			}
		}
	})
}

// BenchmarkEntryLookup: the entries of one MAC per port, by FDB get: one
// by one, and read ahead (Prefetch). The library has no FDB get.
func BenchmarkEntryLookup(b *testing.B) {
	l, idx := benchLab(b)
	br, err := l.c.Link("br0")
	if err != nil {
		b.Fatal(err)
	}
	ports := map[string][]string{}
	for i := range idx {
		ports[fmt.Sprintf("fdbtp%d", i)] = []string{portMAC(i)}
	}
	b.Run("conn-Entries", func(b *testing.B) {
		for range b.N {
			for i := range idx {
				if _, err := l.c.Entries(br, portMAC(i)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("conn-Prefetch", func(b *testing.B) {
		l.c.Prefetch(ports) // the links; each round below reads the entries again
		for range b.N {
			l.c.entries = map[entryKey][]model.Entry{}
			l.c.prefetchEntries(ports)
			for i := range idx {
				if _, err := l.c.Entries(br, portMAC(i)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkBridgeVlans: the VLANs of every bridge port, one dump: this
// package's and the library's BridgeVlanList.
func BenchmarkBridgeVlans(b *testing.B) {
	l, _ := benchLab(b)
	b.Run("conn", func(b *testing.B) {
		for range b.N {
			c := l.c
			c.vlansOK = false
			if _, err := c.bridgeVlans(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("library-BridgeVlanList", func(b *testing.B) {
		for range b.N {
			if _, err := l.h.BridgeVlanList(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
