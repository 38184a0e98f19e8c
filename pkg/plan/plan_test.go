package plan

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/test/lab"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeView is the fake kernel with libvirt's networks and port owners
// written down by hand.
type fakeView struct {
	*kerneltest.Kernel
	networks map[string]*model.Network
	owners   map[string]string
}

func (f *fakeView) Network(name string) (*model.Network, error) { return f.networks[name], nil }
func (f *fakeView) PortOwner(port string) (string, error)       { return f.owners[port], nil }

// host is the kernel of the machine the fixtures were captured on: br0 with
// an uplink and t2's taps, virbr0 with t2's NAT tap.
func host() *fakeView {
	on := model.Flags{Learning: true, Flood: true}
	k := kerneltest.T2Host()
	k.Device("br0").VlanCapable = true
	for _, l := range []*model.Link{
		{Name: "virbr0", Index: 3, Type: "bridge", VlanCapable: true},
		{Name: "eno1", Index: 4, Type: "device", Master: "br0", Flags: on},
		{Name: "vnet6", Index: 11, Type: "tuntap", TunMode: "tap", Master: "virbr0", Flags: on},
		{Name: "tapeth6", Index: 13, Type: "tuntap", TunMode: "tap", Flags: on},
	} {
		k.Add(l)
	}
	return &fakeView{
		Kernel: k,
		networks: map[string]*model.Network{
			"default": {Name: "default", Bridge: "virbr0"},
			"hostbr":  {Name: "hostbr", Bridge: "br0"},
		},
		owners: map[string]string{},
	}
}

// link returns the device called name itself, for a case to edit.
func (f *fakeView) link(name string) *model.Link { return f.Device(name) }

func (f *fakeView) add(l *model.Link) *fakeView { f.Add(l); return f }

func fixture(t *testing.T, name string) []byte { return lab.Recorded(t, "libvirt-9.0", name) }

func mustConfig(t *testing.T, s string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// edit applies string replacements to a fixture.
func edit(data []byte, pairs ...string) []byte {
	return []byte(strings.NewReplacer(pairs...).Replace(string(data)))
}

const baseConfig = `bridges = ["br0"]
networks = ["hostbr"]`

func TestPlans(t *testing.T) {
	start := fixture(t, "qemu-t2-start-begin.xml")
	stopped := fixture(t, "qemu-t2-stopped-end.xml")
	const optOutGuest = `<metadata><fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1" manage="no"/>`
	const optOutNIC = `<metadata><fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1"><fdbhook:interface mac="52:54:00:AA:CC:03" manage="no"/><fdbhook:interface mac="52:54:00:00:00:99" manage="no"/></fdbhook:fdb>`
	for _, tc := range []planCase{
		{name: "start", config: baseConfig, xml: start, want: []string{
			"do     net0: fdb replace 52:54:00:aa:cc:01 dev guest-t2-a master br0 static\n  do     net0: link set dev guest-t2-a learning off flood off (was learning on flood on)\n",
			"do     net2: fdb replace 52:54:00:aa:cc:03 dev vnet7 master br0 static\n  do     net2: link set dev vnet7 learning off flood off (was learning on flood on)\n",
			"skip   net1 52:54:00:aa:cc:02: network default and bridge virbr0 are not managed"}},
		{name: "start-all-networks", config: `bridges = ["br0"]
networks = ["default", "hostbr"]`, xml: start},
		{name: "start-network-only", config: `networks = ["hostbr"]`, xml: start},
		{name: "start-nothing-listed", config: `bridges = ["br9"]`, xml: start},
		{name: "start-domstatus", config: baseConfig,
			xml: []byte("<domstatus state='running'>" + string(start) + "</domstatus>")},
		{name: "start-uppercase-mac", config: baseConfig,
			xml:  edit(start, "52:54:00:aa:cc:01", "52:54:00:AA:CC:01"),
			want: []string{"fdb replace 52:54:00:aa:cc:01 dev guest-t2-a master br0 static"}},
		// libvirt writes MACs lower case, but input need not be: the NIC's
		// opt-out must still find it, and nothing may be written upper case.
		{name: "start-uppercase-mac-opt-out", config: baseConfig,
			xml:  edit(start, "52:54:00:aa:cc:03", "52:54:00:AA:CC:03", "<metadata>", optOutNIC),
			want: []string{"skip   net2 52:54:00:aa:cc:03: NIC opted out in the guest's metadata (urn:fdbhook:1)"}},
		{name: "start-opt-out-guest", config: baseConfig, xml: edit(start, "<metadata>", optOutGuest),
			want: []string{"skip   net0 52:54:00:aa:cc:01: guest opted out", "skip   net2 52:54:00:aa:cc:03: guest opted out", "(no kernel changes)"}},
		{name: "start-opt-out-nic", config: baseConfig, xml: edit(start, "<metadata>", optOutNIC),
			want: []string{"do     net0: fdb replace 52:54:00:aa:cc:01", "skip   net2 52:54:00:aa:cc:03: NIC opted out"}},
		{name: "start-rerun", want: []string{"fdb replace 52:54:00:aa:cc:01 dev guest-t2-a master br0 static (replaces 52:54:00:aa:cc:01 dev guest-t2-a static)"}, config: baseConfig, xml: start, kernel: func(f *fakeView) {
			f.link("guest-t2-a").Flags = model.Flags{}
			f.link("vnet7").Flags = model.Flags{}
			f.AddEntry(
				model.Entry{MAC: "52:54:00:aa:cc:01", Port: "guest-t2-a", PortIndex: 10, State: model.NUDNoARP, NTFlags: model.NTFMaster},
				model.Entry{MAC: "52:54:00:aa:cc:03", Port: "vnet7", PortIndex: 12, State: model.NUDNoARP, NTFlags: model.NTFMaster})
		}},
		{name: "start-replaces-roamed", want: []string{"fdb replace 52:54:00:aa:cc:01 dev guest-t2-a master br0 static (replaces 52:54:00:aa:cc:01 dev eno1 static)"}, config: baseConfig, xml: start, kernel: func(f *fakeView) {
			f.AddEntry(
				model.Entry{MAC: "52:54:00:aa:cc:01", Port: "eno1", PortIndex: 4, State: model.NUDNoARP, NTFlags: model.NTFMaster},
				model.Entry{MAC: "52:54:00:aa:cc:03", Port: "eno1", PortIndex: 4, State: 0x02, NTFlags: model.NTFMaster})
		}},
		{name: "start-vlan-policy", config: baseConfig + "\n[bridge.br0]\nvlan_filtering = \"enable\"", xml: start,
			want: []string{"plan for t2:\n  do     bridge br0: set vlan_filtering 1\n  do     net0: fdb replace"}},
		// Turning the filter on writes the static entries of other guests'
		// ports on the bridge again, for their VLANs; not the uplink's, a
		// per-VLAN entry's, or another bridge's.
		{name: "start-vlan-policy-extends-entries", config: baseConfig + "\n[bridge.br0]\nvlan_filtering = \"enable\"", xml: start,
			kernel: func(f *fakeView) {
				f.add(&model.Link{Name: "vnet20", Index: 40, Type: "tuntap", TunMode: "tap", Master: "br0", MasterIndex: 2, MasterType: "bridge"})
				f.add(&model.Link{Name: "veth30", Index: 41, Type: "veth", Master: "br0", MasterIndex: 2, MasterType: "bridge"})
				f.AddEntry(
					model.Entry{MAC: "52:54:00:00:00:20", Port: "vnet20", PortIndex: 40, State: model.NUDNoARP, NTFlags: model.NTFMaster | model.NTFSticky},
					model.Entry{MAC: "52:54:00:00:00:20", Port: "vnet20", PortIndex: 40, Vlan: 1, State: model.NUDNoARP, NTFlags: model.NTFMaster},
					model.Entry{MAC: "52:54:00:00:00:21", Port: "veth30", PortIndex: 41, State: model.NUDNoARP, NTFlags: model.NTFMaster},
					model.Entry{MAC: "52:54:00:00:00:22", Port: "vnet20", PortIndex: 40, State: 0x02, NTFlags: model.NTFMaster},
					model.Entry{MAC: "52:54:00:00:00:23", Port: "eno1", PortIndex: 4, State: model.NUDNoARP, NTFlags: model.NTFMaster},
					model.Entry{MAC: "52:54:00:00:00:24", Port: "vnet6", PortIndex: 11, State: model.NUDNoARP, NTFlags: model.NTFMaster})
			},
			want: []string{"bridge br0: fdb replace 52:54:00:00:00:20 dev vnet20 master br0 static sticky (again",
				"bridge br0: fdb replace 52:54:00:00:00:21 dev veth30 master br0 static (again"}},
		{name: "start-vlan-policy-incapable", want: []string{"warn   bridge br0: vlan_filtering = \"enable\" cannot take effect"}, config: baseConfig + "\n[bridge.br0]\nvlan_filtering = \"enable\"", xml: start,
			kernel: func(f *fakeView) { f.link("br0").VlanCapable = false }},
		{name: "start-vlan-policy-already-on", config: baseConfig + "\n[bridge.br0]\nvlan_filtering = \"enable\"", xml: start,
			kernel: func(f *fakeView) { f.link("br0").VlanFiltering = true }},
		{name: "start-mactable-libvirt", want: []string{"skip   net2 52:54:00:aa:cc:03: network hostbr has macTableManager='libvirt'"}, config: baseConfig, xml: start,
			kernel: func(f *fakeView) { f.networks["hostbr"].MacTableLibvirt = true }},
		{name: "start-kernel-disagrees-unmanaged", want: []string{"skip   net0 52:54:00:aa:cc:01: the kernel has guest-t2-a on bridge br1, which is not managed"}, config: `bridges = ["br0"]`, xml: start, kernel: func(f *fakeView) {
			f.add(&model.Link{Name: "br1", Index: 5, Type: "bridge"})
			l := f.link("guest-t2-a")
			l.Master, l.MasterIndex = "br1", 5
		}},
		{name: "start-kernel-disagrees-managed", config: `bridges = ["br0", "br1"]`, xml: start, kernel: func(f *fakeView) {
			f.add(&model.Link{Name: "br1", Index: 5, Type: "bridge"})
			l := f.link("guest-t2-a")
			l.Master, l.MasterIndex = "br1", 5
		}},
		{name: "refuse-missing-device", want: []string{"device vnet7 does not exist", "(refused: nothing is applied)"}, config: baseConfig, xml: start, refusals: 1,
			kernel: func(f *fakeView) { f.link("vnet7").Name = "gone" }},
		{name: "refuse-target-is-bridge", config: baseConfig, refusals: 1,
			xml: edit(start, "<target dev='vnet7'/>", "<target dev='br0'/>")},
		{name: "refuse-target-is-uplink", want: []string{"refuse net2: 52:54:00:aa:cc:03 on br0: eno1 is a physical device, not a guest tap"}, config: baseConfig, refusals: 1,
			xml: edit(start, "<target dev='vnet7'/>", "<target dev='eno1'/>")},
		{name: "refuse-target-kinds", want: []string{"vx0 is a vxlan device, not a guest tap", "bond0 is a bond device, not a guest tap"}, config: baseConfig, refusals: 2,
			xml: edit(start, "<target dev='vnet7'/>", "<target dev='bond0'/>", "<target dev='guest-t2-a'/>", "<target dev='vx0'/>"),
			kernel: func(f *fakeView) {
				f.add(&model.Link{Name: "bond0", Index: 20, Type: "bond", Master: "br0", MasterIndex: 2, MasterType: "bridge"})
				f.add(&model.Link{Name: "vx0", Index: 21, Type: "vxlan", Master: "br0", MasterIndex: 2, MasterType: "bridge"})
			}},
		{name: "refuse-veth-vlan-tun", want: []string{"tun0 is a tun device (not tap), not a guest tap", "veth0 is a veth device, not a guest tap"}, config: baseConfig, refusals: 2,
			xml: edit(start, "<target dev='vnet7'/>", "<target dev='veth0'/>", "<target dev='guest-t2-a'/>", "<target dev='tun0'/>"),
			kernel: func(f *fakeView) {
				f.add(&model.Link{Name: "veth0", Index: 20, Type: "veth", Master: "br0", MasterIndex: 2, MasterType: "bridge"})
				f.add(&model.Link{Name: "tun0", Index: 21, Type: "tuntap", TunMode: "tun", Master: "br0", MasterIndex: 2, MasterType: "bridge"})
			}},
		{name: "refuse-vlan-device", config: baseConfig, refusals: 1,
			xml: edit(start, "<target dev='vnet7'/>", "<target dev='eno1.10'/>"),
			kernel: func(f *fakeView) {
				f.add(&model.Link{Name: "eno1.10", Index: 20, Type: "vlan", Master: "br0", MasterIndex: 2, MasterType: "bridge"})
			}},
		{name: "refuse-not-enslaved", want: []string{"refuse net2: 52:54:00:aa:cc:03 on br0: tap vnet7 is not enslaved to any bridge"}, config: baseConfig, refusals: 1, xml: start, kernel: func(f *fakeView) {
			l := f.link("vnet7")
			l.Master, l.MasterIndex, l.MasterType = "", 0, ""
		}},
		{name: "refuse-ovs-master", config: baseConfig, refusals: 1, xml: start, kernel: func(f *fakeView) {
			f.add(&model.Link{Name: "ovs-system", Index: 30, Type: "openvswitch"})
			l := f.link("vnet7")
			l.Master, l.MasterIndex, l.MasterType = "ovs-system", 30, "openvswitch"
		}},
		{name: "skip-ovs-virtualport", config: baseConfig,
			xml: edit(start, "<target dev='vnet7'/>", "<target dev='vnet7'/><virtualport type='openvswitch'/>")},
		{name: "refuse-duplicate-in-guest", want: []string{"duplicate MAC: NIC net0 of this guest has it on the same bridge"}, config: baseConfig, refusals: 1,
			xml: edit(start, "52:54:00:aa:cc:03", "52:54:00:aa:cc:01")},
		{name: "refuse-duplicate-across-guests", want: []string{"duplicate MAC: it already has a static entry on vnet20, another guest's port"}, config: baseConfig, refusals: 1, xml: start, kernel: func(f *fakeView) {
			f.add(&model.Link{Name: "vnet20", Index: 40, Type: "tuntap", TunMode: "tap", Master: "br0", MasterIndex: 2, MasterType: "bridge"})
			f.AddEntry(model.Entry{MAC: "52:54:00:aa:cc:03", Port: "vnet20", PortIndex: 40, State: model.NUDNoARP, NTFlags: model.NTFMaster})
		}},
		{name: "start-replaces-static-on-veth-uplink", want: []string{"fdb replace 52:54:00:aa:cc:03 dev vnet7 master br0 static (replaces 52:54:00:aa:cc:03 dev up0 static)"}, config: baseConfig, xml: start, kernel: func(f *fakeView) {
			f.add(&model.Link{Name: "up0", Index: 41, Type: "veth", Master: "br0", MasterIndex: 2, MasterType: "bridge"})
			f.AddEntry(model.Entry{MAC: "52:54:00:aa:cc:03", Port: "up0", PortIndex: 41, State: model.NUDNoARP, NTFlags: model.NTFMaster})
		}},
		{name: "refuse-bad-macs", config: baseConfig, refusals: 2,
			xml: edit(start, "52:54:00:aa:cc:01", "01:00:5e:00:00:01", "52:54:00:aa:cc:03", "00:00:00:00:00:00")},
		// At stop libvirt has dropped generated target names (vnet7) but keeps
		// a custom one (guest-t2-a): a start plan from it refuses net2.
		{name: "refuse-no-target", config: baseConfig, refusals: 1, xml: stopped},
		{name: "stop-nothing-left", want: []string{"(no kernel changes)"}, stop: true, config: baseConfig, xml: stopped, kernel: func(f *fakeView) {
			for _, tap := range []string{"guest-t2-a", "vnet6", "vnet7", "tapeth6"} {
				f.Delete(tap) // the kernel deleted t2's taps
			}
		}},
		{name: "stop-roamed-and-persistent", want: []string{"do     fdb del 52:54:00:aa:cc:01 dev eno1 static master br0 (roamed to eno1)", "do     fdb del 52:54:00:aa:cc:03 dev vnet7 vlan 10 static master br0", "do     port vnet7: link set dev vnet7 learning on flood on"}, stop: true, config: baseConfig, xml: stopped, kernel: func(f *fakeView) {
			f.link("vnet7").Flags = model.Flags{}
			f.SetVlans("vnet7", model.Vlan{ID: 10})
			f.SetVlans("eno1", model.Vlan{ID: 5})
			f.AddEntry(
				model.Entry{MAC: "52:54:00:aa:cc:01", Port: "eno1", PortIndex: 4, State: model.NUDNoARP, NTFlags: model.NTFMaster},
				model.Entry{MAC: "52:54:00:aa:cc:03", Port: "vnet7", PortIndex: 12, State: model.NUDNoARP, NTFlags: model.NTFMaster},
				model.Entry{MAC: "52:54:00:aa:cc:03", Port: "vnet7", PortIndex: 12, Vlan: 10, State: model.NUDNoARP, NTFlags: model.NTFMaster},
				// dynamic entries are the kernel's to age out
				model.Entry{MAC: "52:54:00:aa:cc:01", Port: "eno1", PortIndex: 4, Vlan: 5, State: 0x02, NTFlags: model.NTFMaster})
		}},
		{name: "stop-port-of-other-guest", want: []string{"belongs to running guest t3: left alone", "(no kernel changes)"}, stop: true, config: baseConfig, xml: stopped, kernel: func(f *fakeView) {
			f.link("vnet7").Flags = model.Flags{}
			f.owners["vnet7"] = "t3"
			f.AddEntry(
				model.Entry{MAC: "52:54:00:aa:cc:03", Port: "vnet7", PortIndex: 12, State: model.NUDNoARP, NTFlags: model.NTFMaster})
		}},
		{name: "stop-shared-persistent-port", want: []string{"do     fdb del 52:54:00:aa:cc:03 dev vnet7 static master br0", "its flags are left as they are"}, stop: true, config: baseConfig, xml: stopped, kernel: func(f *fakeView) {
			f.link("vnet7").Flags = model.Flags{}
			f.AddEntry(
				model.Entry{MAC: "52:54:00:aa:cc:03", Port: "vnet7", PortIndex: 12, State: model.NUDNoARP, NTFlags: model.NTFMaster},
				model.Entry{MAC: "52:54:00:bb:00:01", Port: "vnet7", PortIndex: 12, State: model.NUDNoARP, NTFlags: model.NTFMaster})
		}},
		{name: "stop-bridge-gone", stop: true, config: `bridges = ["br0", "br7"]
networks = ["hostbr"]`, xml: edit(stopped, "<source bridge='br0'/>", "<source bridge='br7'/>")},
		{name: "stop-unknown-network-bridge", stop: true, config: baseConfig, xml: stopped, kernel: func(f *fakeView) {
			delete(f.networks, "hostbr")
			f.AddEntry(
				model.Entry{MAC: "52:54:00:aa:cc:03", Port: "eno1", PortIndex: 4, State: model.NUDNoARP | 0x02, NTFlags: model.NTFMaster})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, host()) })
	}
}

// planCase is one row of the plan tables: a guest's XML, a config and
// edits to a fake host, and what the plan made from them must hold.
type planCase struct {
	name   string
	stop   bool
	config string
	xml    []byte
	kernel func(*fakeView)
	// guest, when set, edits the parsed guest (what the run directory
	// adds: followed MACs).
	guest func(*guest.Guest)
	// refusals is the number of refusals the plan must have.
	refusals int
	// want are substrings the formatted plan must contain, so that a
	// golden file rewritten with -update cannot silently lose them.
	want []string
}

// run makes tc's start (or stop) plan against v, once tc.kernel has
// edited it, checks its refusals, wanted lines and safety, compares it with
// the golden file testdata/TC.NAME, and returns it.
func (tc planCase) run(t *testing.T, v *fakeView) *Plan {
	t.Helper()
	g, err := guest.Parse(tc.xml)
	if err != nil {
		t.Fatal(err)
	}
	if tc.kernel != nil {
		tc.kernel(v)
	}
	if tc.guest != nil {
		tc.guest(g)
	}
	cfg := mustConfig(t, tc.config)
	var p *Plan
	if tc.stop {
		p, err = Stop(cfg, g, v)
	} else {
		p, err = Start(cfg, g, v)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Refusals) != tc.refusals {
		t.Errorf("%d refusals, want %d: %v", len(p.Refusals), tc.refusals, p.Refusals)
	}
	out := p.Format()
	for _, w := range tc.want {
		if !strings.Contains(out, w) {
			t.Errorf("plan lacks %q:\n%s", w, out)
		}
	}
	checkSafety(t, p, v)
	golden(t, tc.name, out)
	return p
}

// checkSafety asserts the rule no golden file may break: a start plan only
// writes to bridged taps, and an entry extended to the VLANs when the
// filter is turned on may also be on a container's veth. What is a tap or a
// veth is judged from the device kinds the fake host declares (kind
// "tuntap" in mode "tap", or "veth", enslaved to a device the host declares
// as a bridge), never with Link.IsTap or IsGuestPort: those are the code
// under test, and a planner that took a veth for a tap would be judged by
// its own mistake.
func checkSafety(t *testing.T, p *Plan, v *fakeView) {
	t.Helper()
	for _, s := range p.Steps {
		if s.Kind == EnableVlanFiltering || s.Kind == DelEntry {
			continue
		}
		l, _ := v.LinkByIndex(s.PortIndex)
		ok := l != nil && l.Name == s.Port && (declaredBridged(v, l, "tap") || s.Kind == ExtendEntry && declaredBridged(v, l, "veth"))
		if !ok {
			t.Errorf("step %q writes to %+v, which is not a bridged tap", s, l)
		}
	}
}

// declaredBridged reports whether the fake host declares l as a device of
// kind ("tap": a tuntap in tap mode; "veth") whose master is a bridge.
func declaredBridged(v *fakeView, l *model.Link, kind string) bool {
	switch {
	case kind == "tap" && (l.Type != "tuntap" || l.TunMode != "tap"):
		return false
	case kind == "veth" && l.Type != "veth":
		return false
	}
	for _, m := range v.Devices() {
		if m.Index == l.MasterIndex {
			return m.Type == "bridge" && m.Name == l.Master
		}
	}
	return false
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/plan -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("plan differs from %s (go test ./pkg/plan -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}
