package admin

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// fakeKernel is a kernel with the FDB semantics fdbhook relies on: a
// replace moves a MAC's entry on a bridge to the new port, a delete of an
// absent entry is ENOENT.
type fakeKernel struct {
	links   []*model.Link
	entries []model.Entry
	// counters, to check the cost of a run
	linkDumps, fdbDumps, writes int
}

func (k *fakeKernel) Links() ([]*model.Link, error) {
	k.linkDumps++
	out := make([]*model.Link, len(k.links))
	for i, l := range k.links {
		c := *l
		out[i] = &c
	}
	return out, nil
}

func (k *fakeKernel) byIndex(i int) *model.Link {
	for _, l := range k.links {
		if l.Index == i {
			return l
		}
	}
	return nil
}

func (k *fakeKernel) bridgeOf(portIndex int) int {
	l := k.byIndex(portIndex)
	switch {
	case l == nil:
		return 0
	case l.Type == "bridge":
		return l.Index
	}
	return l.MasterIndex
}

func (k *fakeKernel) BridgeEntries(br *model.Link) ([]model.Entry, error) {
	k.fdbDumps++
	var out []model.Entry
	for _, e := range k.entries {
		if k.bridgeOf(e.PortIndex) == br.Index {
			e.Port = k.byIndex(e.PortIndex).Name
			out = append(out, e)
		}
	}
	return out, nil
}

func (k *fakeKernel) SetVlanFiltering(bridgeIndex int, on bool) error {
	k.writes++
	k.byIndex(bridgeIndex).VlanFiltering = on
	return nil
}

func (k *fakeKernel) SetPortFlags(portIndex int, f model.Flags, _ bool) error {
	k.writes++
	l := k.byIndex(portIndex)
	if l == nil {
		return unix.ENODEV
	}
	l.Flags = f
	return nil
}

func (k *fakeKernel) ReplaceEntry(e model.Entry) error {
	k.writes++
	br := k.bridgeOf(e.PortIndex)
	if br == 0 {
		return unix.ENODEV
	}
	k.entries = slices.DeleteFunc(k.entries, func(x model.Entry) bool {
		return x.MAC == e.MAC && x.Vlan == e.Vlan && k.bridgeOf(x.PortIndex) == br
	})
	e.Port = ""
	k.entries = append(k.entries, e)
	return nil
}

func (k *fakeKernel) DeleteEntry(e model.Entry) error {
	k.writes++
	n := len(k.entries)
	k.entries = slices.DeleteFunc(k.entries, func(x model.Entry) bool {
		return x.MAC == e.MAC && x.PortIndex == e.PortIndex && (e.Vlan == 0 || x.Vlan == e.Vlan)
	})
	if len(k.entries) == n {
		return unix.ENOENT
	}
	return nil
}

// static returns the static entries for mac, as "port" names.
func (k *fakeKernel) static(mac string) []string {
	var out []string
	for _, e := range k.entries {
		if e.MAC == mac && e.Static() {
			out = append(out, k.byIndex(e.PortIndex).Name)
		}
	}
	slices.Sort(out)
	return out
}

func (k *fakeKernel) port(name string) *model.Link {
	for _, l := range k.links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

func (k *fakeKernel) add(l *model.Link) *model.Link {
	l.Index = len(k.links) + 1
	if m := k.port(l.Master); m != nil {
		l.MasterIndex, l.MasterType = m.Index, "bridge"
	}
	k.links = append(k.links, l)
	return l
}

func (k *fakeKernel) addStatic(mac, port string) {
	k.entries = append(k.entries, model.Entry{MAC: mac, PortIndex: k.port(port).Index, State: model.NUDNoARP, NTFlags: model.NTFMaster})
}

var (
	learning = model.Flags{Learning: true, Flood: true}
	managed  = model.Flags{}
)

func bridge(name string) *model.Link {
	return &model.Link{Name: name, Type: "bridge", VlanCapable: true}
}

func tap(name, master string, f model.Flags) *model.Link {
	return &model.Link{Name: name, Type: "tuntap", TunMode: "tap", Master: master, Flags: f, Promiscuity: 1, Carrier: true}
}

func uplink(name, master string) *model.Link {
	return &model.Link{Name: name, Type: "device", Master: master, Flags: learning, Promiscuity: 1, Carrier: true}
}

// domain writes a running guest's live XML; nics are "type:source:target:mac".
func domain(t *testing.T, name string, optOut []string, nics ...string) *guest.Guest {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "<domstatus state='running' pid='1'><domain type='kvm'><name>%s</name>", name)
	if len(optOut) > 0 {
		b.WriteString(`<metadata><fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1">`)
		for _, m := range optOut {
			fmt.Fprintf(&b, `<fdbhook:interface mac="%s" manage="no"/>`, m)
		}
		b.WriteString(`</fdbhook:fdb></metadata>`)
	}
	b.WriteString("<devices>")
	for i, n := range nics {
		f := strings.Split(n, ":")
		typ, src, target, mac := f[0], f[1], f[2], strings.Join(f[3:], ":")
		fmt.Fprintf(&b, "<interface type='%s'><mac address='%s'/><source bridge='%s'/>", typ, mac, src)
		if target != "" {
			fmt.Fprintf(&b, "<target dev='%s'/>", target)
		}
		fmt.Fprintf(&b, "<alias name='net%d'/></interface>", i)
	}
	b.WriteString("</devices></domain></domstatus>")
	g, err := guest.Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("domain %s: %v", name, err)
	}
	return g
}

type noNetworks struct{}

func (noNetworks) Network(string) (*model.Network, error) { return nil, nil }

func state(t *testing.T, k *fakeKernel, cfgText string, running, defined []*guest.Guest) *State {
	t.Helper()
	cfg, err := config.Parse([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Path = "/etc/fdbhook/fdbhook.toml"
	snap, err := Take(k)
	if err != nil {
		t.Fatal(err)
	}
	return &State{Config: cfg, Kernel: snap, Networks: noNetworks{}, Running: running, RunningComplete: true, Defined: defined}
}

const (
	macG1  = "52:54:00:00:00:01"
	macG2  = "52:54:00:00:00:02"
	macG3  = "52:54:00:00:00:03"
	macG4  = "52:54:00:00:00:04" // defined, not running
	macG5  = "52:54:00:00:00:05"
	macO8  = "52:54:00:00:00:08"
	macO9  = "52:54:00:00:00:09"
	macLAN = "00:11:22:33:44:55"
)

// world is a host with every case status must tell apart on br0:
//   - g1 fully managed on vnet1;
//   - g2 on vnet2 still learning, without its entry;
//   - g3 on vnet3 opted out in its metadata, learning;
//   - g5 on vnet5 with flags off, but its entry roamed to the uplink;
//   - tap vnet9 that no guest owns, no process holding it, with an entry;
//   - tap vnet8 that no guest owns but a process holds open, with an entry;
//   - on the uplink: an entry for g4 (defined, not running) and one for a
//     LAN host nobody knows.
func world(t *testing.T) (*fakeKernel, []*guest.Guest, []*guest.Guest) {
	k := &fakeKernel{}
	k.add(&model.Link{Name: "lo", Type: "device"})
	k.add(bridge("br0"))
	k.add(uplink("eth0", "br0"))
	k.add(tap("vnet1", "br0", managed))
	k.add(tap("vnet2", "br0", learning))
	k.add(tap("vnet3", "br0", learning))
	k.add(tap("vnet5", "br0", managed))
	k.add(tap("vnet8", "br0", managed))
	v9 := k.add(tap("vnet9", "br0", managed))
	v9.Carrier = false
	k.addStatic(macG1, "vnet1")
	k.addStatic(macG5, "eth0")
	k.addStatic(macO8, "vnet8")
	k.addStatic(macO9, "vnet9")
	k.addStatic(macG4, "eth0")
	k.addStatic(macLAN, "eth0")
	// the bridge's own address: local, never reported
	k.entries = append(k.entries, model.Entry{MAC: "02:00:00:00:00:b0", PortIndex: k.port("br0").Index, State: model.NUDPermanent, NTFlags: model.NTFMaster})
	running := []*guest.Guest{
		domain(t, "g1", nil, "bridge:br0:vnet1:"+macG1),
		domain(t, "g2", nil, "bridge:br0:vnet2:"+macG2),
		domain(t, "g3", []string{macG3}, "bridge:br0:vnet3:"+macG3),
		domain(t, "g5", nil, "bridge:br0:vnet5:"+macG5),
	}
	defined := append(slices.Clone(running), domain(t, "g4", nil, "bridge:br0::"+macG4))
	return k, running, defined
}
