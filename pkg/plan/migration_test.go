package plan

import (
	"github.com/fdbhook/fdbhook/pkg/model"

	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/guest"
)

// TestIncoming turns start plans of the t2 fixture into incoming-migration
// plans and checks every step they keep, and that no entry is written.
func TestIncoming(t *testing.T) {
	start := fixture(t, "qemu-t2-start-begin.xml")
	vlans := meta(`<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1"><fdbhook:interface mac="52:54:00:aa:cc:01" pvid="10" vlans="20"/></fdbhook:fdb>`)
	extra := meta(`<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1"><fdbhook:interface mac="52:54:00:aa:cc:01"><fdbhook:mac address="00:00:5e:00:01:0a"/></fdbhook:interface></fdbhook:fdb>`)
	for _, tc := range []struct {
		name    string
		config  string
		xml     []byte
		kernel  func(*fakeView)
		watcher bool
		want    []string // every step of the incoming plan, in order
	}{
		{name: "no watcher: learning on, flood off", config: baseConfig, xml: start, want: []string{
			"net0: link set dev guest-t2-a learning on flood off (was learning on flood on)",
			"net2: link set dev vnet7 learning on flood off (was learning on flood on)"}},
		{name: "watcher: learning on, flood off too", config: baseConfig, xml: start, watcher: true, want: []string{
			"net0: link set dev guest-t2-a learning on flood off (was learning on flood on)",
			"net2: link set dev vnet7 learning on flood off (was learning on flood on)"}},
		{name: "ports already learning, not flooding: nothing", config: baseConfig, xml: start, watcher: true,
			kernel: func(f *fakeView) {
				f.link("guest-t2-a").Flags = model.Flags{Learning: true}
				f.link("vnet7").Flags = model.Flags{Learning: true}
			}},
		{name: "no watcher, ports already quiet: learning back on", config: baseConfig, xml: start,
			kernel: func(f *fakeView) { f.link("guest-t2-a").Flags = model.Flags{}; f.link("vnet7").Flags = model.Flags{} },
			want: []string{"net0: link set dev guest-t2-a learning on flood off (was learning off flood off)",
				"net2: link set dev vnet7 learning on flood off (was learning off flood off)"}},
		{name: "lock_ports: not locked yet", config: baseConfig + "\n[bridge.br0]\nlock_ports = true", xml: start,
			kernel: func(f *fakeView) {
				f.link("guest-t2-a").LockCapable = true
				f.link("vnet7").LockCapable = true
			}, watcher: true, want: []string{
				"net0: link set dev guest-t2-a learning on flood off (was learning on flood on)",
				"net2: link set dev vnet7 learning on flood off (was learning on flood on)"}},
		{name: "a port found locked stays locked", config: baseConfig, xml: start,
			kernel: func(f *fakeView) { f.link("vnet7").Flags = model.Flags{Learning: true, Flood: true, Locked: true} },
			want: []string{"net0: link set dev guest-t2-a learning on flood off (was learning on flood on)",
				"net2: link set dev vnet7 learning on flood off locked on (was learning on flood on locked on)"}},
		{name: "extra MACs: one flags step per port", config: baseConfig, xml: edit(start, "<metadata>", extra), watcher: true,
			want: []string{"net0: link set dev guest-t2-a learning on flood off (was learning on flood on)",
				"net2: link set dev vnet7 learning on flood off (was learning on flood on)"}},
		{name: "vlan policy and port VLANs stay", config: baseConfig + "\n[bridge.br0]\nvlan_filtering = \"enable\"",
			xml: edit(start, "<metadata>", vlans), watcher: true, want: []string{
				"bridge br0: set vlan_filtering 1",
				"net0: bridge vlan dev guest-t2-a: exactly vlan 10 pvid untagged, 20 (other VLANs of the port removed)",
				"net0: link set dev guest-t2-a learning on flood off (was learning on flood on)",
				"net2: link set dev vnet7 learning on flood off (was learning on flood on)"}},
		{name: "roamed entry on the uplink is left alone", config: baseConfig, xml: start, watcher: true,
			kernel: func(f *fakeView) {
				f.AddEntry(model.Entry{MAC: "52:54:00:aa:cc:01", Port: "eno1", PortIndex: 4, State: model.NUDNoARP, NTFlags: model.NTFMaster})
			}, want: []string{"net0: link set dev guest-t2-a learning on flood off (was learning on flood on)",
				"net2: link set dev vnet7 learning on flood off (was learning on flood on)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := host()
			if tc.kernel != nil {
				tc.kernel(v)
			}
			g, err := guest.Read(strings.NewReader(string(tc.xml)))
			if err != nil {
				t.Fatal(err)
			}
			sp, err := Start(mustConfig(t, tc.config), g, v)
			if err != nil {
				t.Fatal(err)
			}
			if len(sp.Refusals) > 0 {
				t.Fatalf("start plan refused: %v", sp.Refusals)
			}
			p, err := Incoming(sp, v, tc.watcher)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range p.Steps {
				if s.Kind == AddEntry || s.Kind == DelEntry {
					t.Errorf("incoming plan writes an entry: %s", s)
				}
				if s.Kind == SetFlags && !s.Flags.Learning {
					t.Errorf("learning off before the resume (watcher=%v): %s", tc.watcher, s)
				}
				if s.Kind == SetFlags && s.Flags.Flood {
					t.Errorf("flooding left on: %s", s)
				}
				got = append(got, s.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("steps:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if len(tc.want) > 0 && !strings.Contains(p.Format(), "incoming live migration") {
				t.Errorf("the dry run does not say why there are no entries:\n%s", p.Format())
			}
			if len(p.Skips) != len(sp.Skips) {
				t.Errorf("skips %d, start plan had %d", len(p.Skips), len(sp.Skips))
			}
		})
	}
}
