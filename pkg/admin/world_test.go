package admin

import (
	"slices"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/test/lab"
)

// domain is a running guest's live XML, parsed; nics are
// "type:source:target:mac".
func domain(t *testing.T, name string, optOut []string, nics ...string) *guest.Guest {
	t.Helper()
	d := lab.Domain{Name: name, OptOut: optOut}
	for _, n := range nics {
		f := strings.Split(n, ":")
		d.NICs = append(d.NICs, lab.NIC{Type: f[0], Bridge: f[1], Target: f[2], MAC: strings.Join(f[3:], ":"), Alias: "-"})
	}
	g, err := guest.Parse([]byte(d.Live(lab.Status{Pid: 1})))
	if err != nil {
		t.Fatalf("domain %s: %v", name, err)
	}
	return g
}

type noNetworks struct{}

func (noNetworks) Network(string) (*model.Network, error) { return nil, nil }

func state(t *testing.T, k *kerneltest.Kernel, cfgText string, running, defined []*guest.Guest) *manage.State {
	t.Helper()
	cfg, err := config.Parse([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Path = "/etc/fdbhook/fdbhook.toml"
	snap, err := manage.Take(k)
	if err != nil {
		t.Fatal(err)
	}
	return &manage.State{Config: cfg, Kernel: snap, Networks: noNetworks{}, Running: running, RunningComplete: true, Defined: defined}
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
func world(t *testing.T) (*kerneltest.Kernel, []*guest.Guest, []*guest.Guest) {
	k := kerneltest.New()
	k.Add(&model.Link{Name: "lo", Type: "device"})
	k.Add(kerneltest.Bridge("br0"))
	k.Add(kerneltest.Uplink("eth0", "br0"))
	k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Managed))
	k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Learning))
	k.Add(kerneltest.Tap("vnet3", "br0", kerneltest.Learning))
	k.Add(kerneltest.Tap("vnet5", "br0", kerneltest.Managed))
	k.Add(kerneltest.Tap("vnet8", "br0", kerneltest.Managed))
	v9 := k.Add(kerneltest.Tap("vnet9", "br0", kerneltest.Managed))
	v9.Carrier = false
	k.AddStatic(macG1, "vnet1")
	k.AddStatic(macG5, "eth0")
	k.AddStatic(macO8, "vnet8")
	k.AddStatic(macO9, "vnet9")
	k.AddStatic(macG4, "eth0")
	k.AddStatic(macLAN, "eth0")
	// the bridge's own address: local, never reported
	k.AddEntry(model.Entry{MAC: "02:00:00:00:00:b0", PortIndex: k.Device("br0").Index, State: model.NUDPermanent, NTFlags: model.NTFMaster})
	running := []*guest.Guest{
		domain(t, "g1", nil, "bridge:br0:vnet1:"+macG1),
		domain(t, "g2", nil, "bridge:br0:vnet2:"+macG2),
		domain(t, "g3", []string{macG3}, "bridge:br0:vnet3:"+macG3),
		domain(t, "g5", nil, "bridge:br0:vnet5:"+macG5),
	}
	defined := append(slices.Clone(running), domain(t, "g4", nil, "bridge:br0::"+macG4))
	return k, running, defined
}
