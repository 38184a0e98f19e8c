package plan

import (
	"testing"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// mabHost is modernHost on a kernel with MAC Authentication Bypass
// (Linux 6.2+).
func mabHost() *fakeView {
	f := modernHost()
	for _, d := range f.Devices() {
		if l := f.link(d.Name); l.MasterType == "bridge" {
			l.MabCapable = true
		}
	}
	return f
}

// TestReportPlans: undeclared_macs = "report" locks a managed port with
// MAB instead of turning learning off, where the kernel has MAB; where it
// has not, the NIC is managed as always, with a warning and never a
// refusal; locked entries are the report, never deleted.
func TestReportPlans(t *testing.T) {
	start := fixture(t, "qemu-t2-start-begin.xml")
	stopped := fixture(t, "qemu-t2-stopped-end.xml")
	const ns = `xmlns:fdbhook="urn:fdbhook:1"`
	reportCfg := baseConfig + "\n[bridge.br0]\nundeclared_macs = \"report\""
	reporting := func(f *fakeView) {
		f.link("guest-t2-a").Flags = model.Reporting
		f.link("vnet7").Flags = model.Reporting
	}
	locked := model.Entry{MAC: "02:00:00:00:00:66", Port: "guest-t2-a", PortIndex: 10, State: 0x02, NTFlags: model.NTFMaster, FlagsExt: model.NTFExtLocked}
	learned := model.Entry{MAC: "02:00:00:00:00:67", Port: "guest-t2-a", PortIndex: 10, State: 0x02, NTFlags: model.NTFMaster}
	for _, tc := range []struct {
		planCase
		host func() *fakeView
		// flags is what a SetFlags step on guest-t2-a sends (nil: there
		// is none).
		flags *model.Flags
		mab   bool
	}{
		{planCase: planCase{name: "report-config", config: reportCfg, xml: start,
			want: []string{"net0: link set dev guest-t2-a learning on flood off locked on mab on (was learning on flood on locked off mab off)",
				"net2: link set dev vnet7 learning on flood off locked on mab on"}},
			host: mabHost, flags: &model.Reporting, mab: true},
		{planCase: planCase{name: "report-default-unchanged", config: baseConfig, xml: start,
			want: []string{"net0: link set dev guest-t2-a learning off flood off (was learning on flood on)"}},
			host: mabHost, flags: &model.Flags{}, mab: true},
		{planCase: planCase{name: "report-nic-beats-guest", config: baseConfig, xml: edit(start, "<metadata>",
			meta(`<fdbhook:fdb `+ns+` undeclared-macs="report"><fdbhook:interface mac="52:54:00:aa:cc:03" undeclared-macs="ignore"/></fdbhook:fdb>`)),
			want: []string{"dev guest-t2-a learning on flood off locked on mab on", "dev vnet7 learning off flood off (was"}},
			host: mabHost, flags: &model.Reporting, mab: true},
		{planCase: planCase{name: "report-no-mab", config: reportCfg, xml: start,
			want: []string{"warn   guest t2 net0 52:54:00:aa:cc:01 on br0, port guest-t2-a: this kernel has no MAC Authentication Bypass (Linux 6.2+): undeclared MACs cannot be detected",
				"net0: link set dev guest-t2-a learning off flood off (was"}},
			host: modernHost, flags: &model.Flags{}},
		{planCase: planCase{name: "report-keeps-locked-entries", config: reportCfg, xml: start,
			kernel: func(f *fakeView) { f.AddEntry(locked, learned) },
			want:   []string{"fdb del 02:00:00:00:00:67 dev guest-t2-a dynamic master br0 (learned on guest-t2-a before it was locked)"}},
			host: mabHost, flags: &model.Reporting, mab: true},
		{planCase: planCase{name: "report-rerun", config: reportCfg, xml: start, kernel: reporting}, host: mabHost},
		{planCase: planCase{name: "report-back-to-ignore", config: baseConfig, xml: start, kernel: reporting,
			want: []string{"net0: link set dev guest-t2-a learning off flood off locked off mab off (was learning on flood off locked on mab on)"}},
			host: mabHost, flags: &model.Flags{}, mab: true},
		{planCase: planCase{name: "report-stop", stop: true, config: reportCfg, xml: stopped, kernel: func(f *fakeView) {
			reporting(f)
			f.AddEntry(model.Entry{MAC: "52:54:00:aa:cc:01", Port: "guest-t2-a", PortIndex: 10, State: model.NUDNoARP, NTFlags: model.NTFMaster}, locked)
		}, want: []string{"port guest-t2-a: link set dev guest-t2-a learning on flood on locked off mab off (was learning on flood off locked on mab on)"}},
			host: mabHost, flags: &model.Flags{Learning: true, Flood: true}, mab: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.run(t, tc.host())
			checkOrder(t, p)
			var set *Step
			for i, s := range p.Steps {
				if s.Kind == SetFlags && s.Port == "guest-t2-a" {
					set = &p.Steps[i]
				}
				if s.Kind == DelEntry && s.Entry.Locked() {
					t.Errorf("step %q deletes a locked entry: that is the report", s)
				}
			}
			switch {
			case tc.flags == nil && set != nil:
				t.Errorf("step %q, want none on guest-t2-a", set)
			case tc.flags == nil:
			case set == nil:
				t.Errorf("no flags step on guest-t2-a, want %s", tc.flags)
			case set.Flags != *tc.flags || set.WithMab != tc.mab:
				t.Errorf("step %q sends %+v with mab %v, want %+v with mab %v", set, set.Flags, set.WithMab, *tc.flags, tc.mab)
			}
		})
	}
}
