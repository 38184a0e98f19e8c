package plan

import (
	"github.com/fdbhook/fdbhook/pkg/model"

	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
)

// FuzzStart drives arbitrary domain XML through parsing and both planners
// against the fixture host: no panic, and no plan may ever write to a port
// that is not a bridged tap (judged from the host's declared kinds).
func FuzzStart(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "libvirt-9.0", "qemu-*.xml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`<domstatus><domain><name>x</name><metadata><f:fdb xmlns:f="urn:fdbhook:1"><f:interface mac="52:54:00:00:00:01" manage="no"/></f:fdb></metadata><devices><interface type="bridge"><mac address="52:54:00:00:00:01"/><source bridge="br0"/><target dev="br0"/></interface></devices></domain></domstatus>`))
	if start, err := os.ReadFile(filepath.Join("..", "..", "testdata", "libvirt-9.0", "qemu-t2-start-begin.xml")); err == nil {
		f.Add([]byte(strings.Replace(string(start), "<metadata>", `<metadata><f:fdb xmlns:f="urn:fdbhook:1" lock="no" sticky="yes"><f:interface mac="52:54:00:aa:cc:01" lock="yes" pvid="10" vlans="20-22"><f:mac address="00:00:5e:00:01:0a"/></f:interface><f:interface mac="52:54:00:aa:cc:03"><f:mac address="52:54:00:aa:cc:01"/></f:interface></f:fdb>`, 1)))
	}
	// Targets that name the host's bridged non-taps: the oracle must see
	// them refused, however the planner judges device kinds.
	if start, err := os.ReadFile(filepath.Join("..", "..", "testdata", "libvirt-9.0", "qemu-t2-start-begin.xml")); err == nil {
		for _, dev := range []string{"veth0", "tun0", "bond0", "eno1", "br0"} {
			f.Add([]byte(strings.Replace(string(start), "<target dev='vnet7'/>", "<target dev='"+dev+"'/>", 1)))
		}
	}
	cfg, err := config.Parse([]byte(baseConfig + "\n[bridge.br0]\nvlan_filtering = \"enable\"\nlock_ports = true"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := guest.Parse(data)
		if err != nil {
			if !strings.Contains(err.Error(), guest.ErrInput.Error()) {
				t.Fatalf("parse error without ErrInput: %v", err)
			}
			return
		}
		v := fuzzHost()
		p, err := Start(cfg, g, v)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		checkSafety(t, p, v)
		checkOrder(t, p)
		if _, err := Stop(cfg, g, v); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		_ = p.Format()
	})
}

// fuzzHost is modernHost with a bridged veth, tun and bond beside the taps.
func fuzzHost() *fakeView {
	f := modernHost()
	f.add(&model.Link{Name: "veth0", Index: 50, Type: "veth", Master: "br0", MasterIndex: 2, MasterType: "bridge", LockCapable: true})
	f.add(&model.Link{Name: "tun0", Index: 51, Type: "tuntap", TunMode: "tun", Master: "br0", MasterIndex: 2, MasterType: "bridge", LockCapable: true})
	f.add(&model.Link{Name: "bond0", Index: 52, Type: "bond", Master: "br0", MasterIndex: 2, MasterType: "bridge", LockCapable: true})
	return f
}
