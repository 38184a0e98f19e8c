package plan

import (
	"github.com/fdbhook/fdbhook/pkg/model"

	"slices"
	"testing"
)

// modernHost is host() on a kernel with locked ports and sticky entries.
func modernHost() *fakeView {
	f := host()
	for _, d := range f.Devices() {
		switch l := f.link(d.Name); {
		case l.Type == "bridge":
			l.StickyCapable = true
		case l.MasterType == "bridge":
			l.LockCapable = true
		}
	}
	return f
}

// meta wraps fdbhook metadata elements for the t2 fixture's <metadata>.
func meta(fdb string) string { return "<metadata>" + fdb }

func TestFeaturePlans(t *testing.T) {
	start := fixture(t, "qemu-t2-start-begin.xml")
	stopped := fixture(t, "qemu-t2-stopped-end.xml")
	const ns = `xmlns:fdbhook="urn:fdbhook:1"`
	lockCfg := baseConfig + "\n[bridge.br0]\nlock_ports = true"
	stickyCfg := baseConfig + "\n[bridge.br0]\nsticky = true"
	warn := "on_error = \"warn\"\n"
	extra := meta(`<fdbhook:fdb ` + ns + `><fdbhook:interface mac="52:54:00:aa:cc:01"><fdbhook:mac address="00:00:5e:00:01:0a"/><fdbhook:mac address="52:54:00:00:00:77"/></fdbhook:interface></fdbhook:fdb>`)
	vlans := meta(`<fdbhook:fdb ` + ns + `><fdbhook:interface mac="52:54:00:aa:cc:01" pvid="10" vlans="20-22,30"/></fdbhook:fdb>`)
	filtering := func(f *fakeView) { f.link("br0").VlanFiltering = true }
	for _, tc := range []planCase{
		{name: "feature-lock-config", config: lockCfg, xml: start,
			want: []string{"link set dev guest-t2-a learning off flood off locked on (was learning on flood on locked off)",
				"link set dev vnet7 learning off flood off locked on"}},
		{name: "feature-lock-guest-beats-bridge", config: lockCfg, xml: edit(start, "<metadata>",
			meta(`<fdbhook:fdb `+ns+` lock="no"><fdbhook:interface mac="52:54:00:aa:cc:03" lock="yes"/></fdbhook:fdb>`)),
			want: []string{"dev guest-t2-a learning off flood off (was learning on flood on)", "dev vnet7 learning off flood off locked on"}},
		{name: "feature-lock-metadata-only", config: baseConfig, xml: edit(start, "<metadata>",
			meta(`<fdbhook:fdb `+ns+` lock="yes"/>`)),
			want: []string{"dev guest-t2-a learning off flood off locked on", "dev vnet7 learning off flood off locked on"}},
		{name: "feature-lock-left-when-found", config: baseConfig, xml: start, kernel: func(f *fakeView) {
			f.link("vnet7").Flags = model.Flags{Learning: true, Flood: true, Locked: true}
		}, want: []string{"dev vnet7 learning off flood off locked on (was learning on flood on locked on)"}},
		{name: "feature-lock-flushes-learned", config: lockCfg, xml: edit(start, "<metadata>", extra), kernel: func(f *fakeView) {
			f.AddEntry(
				model.Entry{MAC: "02:00:00:00:00:66", Port: "guest-t2-a", PortIndex: 10, State: 0x02, NTFlags: model.NTFMaster},
				model.Entry{MAC: "00:00:5e:00:01:0a", Port: "guest-t2-a", PortIndex: 10, State: 0x02, NTFlags: model.NTFMaster},
				model.Entry{MAC: "02:00:00:00:00:67", Port: "guest-t2-a", PortIndex: 10, State: 0x02, NTFlags: model.NTFMaster | model.NTFExtLearn},
				model.Entry{MAC: "02:00:00:00:00:68", Port: "eno1", PortIndex: 4, State: 0x02, NTFlags: model.NTFMaster})
		}, want: []string{"fdb del 02:00:00:00:00:66 dev guest-t2-a dynamic master br0 (learned on guest-t2-a before it was locked)"}},
		{name: "feature-lock-rerun", config: lockCfg, xml: start, kernel: func(f *fakeView) {
			f.link("guest-t2-a").Flags = model.Flags{Locked: true}
			f.link("vnet7").Flags = model.Flags{Locked: true}
		}},
		{name: "feature-lock-incapable-fail", config: lockCfg, xml: start, kernel: func(f *fakeView) {
			f.link("vnet7").LockCapable = false
		}, refusals: 1, want: []string{"refuse net2: 52:54:00:aa:cc:03 on br0: cannot lock port vnet7"}},
		{name: "feature-lock-incapable-warn", config: warn + lockCfg, xml: start, kernel: func(f *fakeView) {
			f.link("vnet7").LockCapable = false
		}, want: []string{"warn   net2 52:54:00:aa:cc:03 on br0: cannot lock port vnet7", "dev vnet7 learning off flood off (was"}},
		{name: "feature-sticky-config", config: stickyCfg, xml: start,
			want: []string{"52:54:00:aa:cc:01 dev guest-t2-a master br0 static sticky", "52:54:00:aa:cc:03 dev vnet7 master br0 static sticky"}},
		{name: "feature-sticky-nic-beats-guest", config: baseConfig, xml: edit(start, "<metadata>",
			meta(`<fdbhook:fdb `+ns+` sticky="yes"><fdbhook:interface mac="52:54:00:aa:cc:01" sticky="no"/></fdbhook:fdb>`)),
			want: []string{"52:54:00:aa:cc:01 dev guest-t2-a master br0 static\n", "52:54:00:aa:cc:03 dev vnet7 master br0 static sticky"}},
		{name: "feature-sticky-incapable-fail", config: stickyCfg, xml: start, kernel: func(f *fakeView) {
			f.link("br0").StickyCapable = false
		}, refusals: 2, want: []string{"no sticky bridge entries"}},
		{name: "feature-sticky-incapable-warn", config: warn + stickyCfg, xml: start, kernel: func(f *fakeView) {
			f.link("br0").StickyCapable = false
		}, want: []string{"warn   net0 52:54:00:aa:cc:01 on br0: cannot write sticky entries"}},
		{name: "feature-extra-macs", config: lockCfg, xml: edit(start, "<metadata>", extra),
			want: []string{"net0: fdb replace 00:00:5e:00:01:0a dev guest-t2-a master br0 static (extra MAC)",
				"net0: fdb replace 52:54:00:00:00:77 dev guest-t2-a master br0 static (extra MAC)"}},
		{name: "feature-extra-mac-replaces-roamed", config: baseConfig, xml: edit(start, "<metadata>", extra), kernel: func(f *fakeView) {
			f.AddEntry(model.Entry{MAC: "00:00:5e:00:01:0a", Port: "eno1", PortIndex: 4, State: 0x02, NTFlags: model.NTFMaster})
		}, want: []string{"(extra MAC) (replaces 00:00:5e:00:01:0a dev eno1 dynamic)"}},
		{name: "feature-refuse-extra-mac-of-other-guest", config: baseConfig, xml: edit(start, "<metadata>", extra), refusals: 1,
			kernel: func(f *fakeView) {
				f.add(&model.Link{Name: "vnet20", Index: 40, Type: "tuntap", TunMode: "tap", Master: "br0", MasterIndex: 2, MasterType: "bridge"})
				f.AddEntry(model.Entry{MAC: "52:54:00:00:00:77", Port: "vnet20", PortIndex: 40, State: model.NUDNoARP, NTFlags: model.NTFMaster})
			}, want: []string{"duplicate extra MAC 52:54:00:00:00:77: it already has a static entry on vnet20"}},
		{name: "feature-refuse-extra-mac-of-own-nic", config: baseConfig, refusals: 1, xml: edit(start, "<metadata>",
			meta(`<fdbhook:fdb `+ns+`><fdbhook:interface mac="52:54:00:aa:cc:03"><fdbhook:mac address="52:54:00:aa:cc:01"/></fdbhook:interface></fdbhook:fdb>`)),
			want: []string{"duplicate extra MAC 52:54:00:aa:cc:01: NIC net0 of this guest has it"}},
		{name: "feature-vlans", config: baseConfig, xml: edit(start, "<metadata>", vlans), kernel: filtering,
			want: []string{"net0: bridge vlan dev guest-t2-a: exactly vlan 10 pvid untagged, 20, 21, 22, 30"}},
		{name: "feature-vlans-with-policy", config: baseConfig + "\n[bridge.br0]\nvlan_filtering = \"enable\"", xml: edit(start, "<metadata>", vlans),
			want: []string{"set vlan_filtering 1", "exactly vlan 10 pvid untagged"}},
		{name: "feature-vlans-not-filtering-fail", config: baseConfig, xml: edit(start, "<metadata>", vlans), refusals: 1,
			want: []string{"bridge br0 does not filter VLANs"}},
		{name: "feature-vlans-not-filtering-warn", config: warn + baseConfig, xml: edit(start, "<metadata>", vlans),
			want: []string{"warn   net0 52:54:00:aa:cc:01 on br0: cannot give port guest-t2-a VLANs"}},
		{name: "feature-vlans-incapable", config: baseConfig, xml: edit(start, "<metadata>", vlans), refusals: 1,
			kernel: func(f *fakeView) { f.link("br0").VlanCapable = false },
			want:   []string{"no bridge VLAN filtering"}},
		{name: "feature-vlans-network-nic", config: `bridges = ["br0"]
networks = ["hostbr", "default"]`, refusals: 1, kernel: func(f *fakeView) { f.link("virbr0").VlanFiltering = true },
			xml:  edit(start, "<metadata>", meta(`<fdbhook:fdb `+ns+`><fdbhook:interface mac="52:54:00:aa:cc:02" pvid="5"/></fdbhook:fdb>`)),
			want: []string{"type='bridge' NICs only"}},
		{name: "feature-stop-locked-and-extra", stop: true, config: lockCfg, xml: edit(stopped, "<metadata>", extra), kernel: func(f *fakeView) {
			f.link("guest-t2-a").Flags = model.Flags{Locked: true}
			f.AddEntry(
				model.Entry{MAC: "52:54:00:aa:cc:01", Port: "guest-t2-a", PortIndex: 10, State: model.NUDNoARP, NTFlags: model.NTFMaster | model.NTFSticky},
				model.Entry{MAC: "00:00:5e:00:01:0a", Port: "guest-t2-a", PortIndex: 10, State: model.NUDNoARP, NTFlags: model.NTFMaster},
				model.Entry{MAC: "52:54:00:00:00:77", Port: "eno1", PortIndex: 4, State: model.NUDNoARP, NTFlags: model.NTFMaster})
		}, want: []string{"fdb del 52:54:00:aa:cc:01 dev guest-t2-a static sticky master br0",
			"fdb del 00:00:5e:00:01:0a dev guest-t2-a static master br0",
			"fdb del 52:54:00:00:00:77 dev eno1 static master br0 (roamed to eno1)",
			"port guest-t2-a: link set dev guest-t2-a learning on flood on locked off (was learning off flood off locked on)"}},
		// A tap that outlives its guest loses the VLANs the start gave it
		// and gets the bridge's default pvid back.
		{name: "feature-stop-vlans", stop: true, config: baseConfig, xml: edit(stopped, "<metadata>", vlans), kernel: func(f *fakeView) {
			filtering(f)
			f.link("br0").DefaultPvid = 1
			f.link("guest-t2-a").Flags = model.Flags{}
			f.AddEntry(model.Entry{MAC: "52:54:00:aa:cc:01", Port: "guest-t2-a", PortIndex: 10, State: model.NUDNoARP, NTFlags: model.NTFMaster})
		}, want: []string{"port guest-t2-a: bridge vlan del dev guest-t2-a vid 10 pvid untagged, 20, 21, 22, 30 (the stopped guest's VLANs)",
			"port guest-t2-a: bridge vlan add dev guest-t2-a vid 1 pvid untagged (the bridge's default pvid)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.run(t, modernHost())
			checkOrder(t, p)
		})
	}
}

// checkOrder asserts the order the kernel needs: on each port, VLANs before
// entries (so that entries cover every VLAN) and entries before flags (a
// port locked before its entries exist drops the guest's frames).
func checkOrder(t *testing.T, p *Plan) {
	t.Helper()
	last := map[string]StepKind{}
	rank := map[StepKind]int{SetVlans: 0, AddEntry: 1, SetFlags: 2}
	for _, s := range p.Steps {
		if _, ok := rank[s.Kind]; !ok || s.Kind == SetFlags && s.NIC == "port "+s.Port {
			continue
		}
		if k, ok := last[s.Port]; ok && rank[k] > rank[s.Kind] {
			t.Errorf("step %q comes after a %v step on the same port", s, k)
		}
		last[s.Port] = s.Kind
	}
	if slices.ContainsFunc(p.Steps, func(s Step) bool { return s.Kind == SetVlans && len(s.Vlans) == 0 }) {
		t.Errorf("a SetVlans step with no VLANs would strip the port")
	}
}
