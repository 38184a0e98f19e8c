package plan

import (
	"testing"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// TestFollowPlans: undeclared_macs = "follow" gives a port the flags of
// report mode; the MACs the NIC follows get static entries on its port
// (replacing their locked entries) and are removed at its stop like extra
// MACs; a NIC that reached follow_max gets MAB off, its port locked.
func TestFollowPlans(t *testing.T) {
	start := fixture(t, "qemu-t2-start-begin.xml")
	stopped := fixture(t, "qemu-t2-stopped-end.xml")
	followCfg := baseConfig + "\n[bridge.br0]\nundeclared_macs = \"follow\""
	const nic0, followed = "52:54:00:aa:cc:01", "02:00:00:00:00:66"
	follows := func(full bool) func(*guest.Guest) {
		return func(g *guest.Guest) { g.SetFollowed(nic0, []string{followed}, full) }
	}
	locked := model.Entry{MAC: followed, Port: "guest-t2-a", PortIndex: 10, State: 0x02, NTFlags: model.NTFMaster, FlagsExt: model.NTFExtLocked}
	for _, tc := range []struct {
		planCase
		flags *model.Flags
		// entry: the plan writes the followed MAC's static entry.
		entry bool
	}{
		{planCase: planCase{name: "follow-config", config: followCfg, xml: start,
			want: []string{"net0: link set dev guest-t2-a learning on flood off locked on mab on (was learning on flood on locked off mab off)"}},
			flags: &model.Reporting},
		{planCase: planCase{name: "follow-followed", config: followCfg, xml: start, guest: follows(false),
			kernel: func(f *fakeView) { f.AddEntry(locked) },
			want:   []string{"net0: fdb replace 02:00:00:00:00:66 dev guest-t2-a master br0 static (followed MAC)"}},
			flags: &model.Reporting, entry: true},
		{planCase: planCase{name: "follow-full", config: followCfg, xml: start, guest: follows(true),
			kernel: func(f *fakeView) { f.link("guest-t2-a").Flags = model.Reporting },
			want:   []string{"net0: link set dev guest-t2-a learning off flood off locked on mab off (was learning on flood off locked on mab on)"}},
			flags: &model.Flags{Locked: true}, entry: true},
		{planCase: planCase{name: "follow-stop", stop: true, config: followCfg, xml: stopped, guest: follows(false), kernel: func(f *fakeView) {
			f.link("guest-t2-a").Flags = model.Reporting
			f.AddEntry(model.Entry{MAC: followed, Port: "guest-t2-a", PortIndex: 10, State: model.NUDNoARP, NTFlags: model.NTFMaster})
		}, want: []string{"fdb del 02:00:00:00:00:66 dev guest-t2-a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.run(t, mabHost())
			checkOrder(t, p)
			var set *Step
			entry := false
			for i, s := range p.Steps {
				if s.Kind == SetFlags && s.Port == "guest-t2-a" {
					set = &p.Steps[i]
				}
				if s.Kind == AddEntry && s.MAC == followed && s.Port == "guest-t2-a" {
					entry = true
				}
			}
			if tc.flags != nil && (set == nil || set.Flags != *tc.flags) {
				t.Errorf("flags step %v, want %s", set, tc.flags)
			}
			if !tc.stop && entry != tc.entry {
				t.Errorf("entry for %s written: %v, want %v", followed, entry, tc.entry)
			}
		})
	}
}
