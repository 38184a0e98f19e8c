package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/model"
)

const cfgBr0 = `bridges = ["br0"]`

func problemKinds(rep *Report) map[string][]string {
	out := map[string][]string{}
	for _, p := range rep.Problems {
		who := p.Port
		if who == "" {
			who = p.Bridge
		}
		out[p.Kind] = append(out[p.Kind], who)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

func TestStatusFlagsEveryProblem(t *testing.T) {
	k, running, defined := world(t)
	st := state(t, k, cfgBr0, running, defined)
	rep, err := Status(st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := problemKinds(rep)
	want := map[string][]string{
		ProblemPortFlags: {"vnet2"},
		ProblemNoEntry:   {"vnet2", "vnet5"},
		ProblemStale:     {"eth0", "vnet9"},
	}
	for kind, ports := range want {
		if !slices.Equal(got[kind], ports) {
			t.Errorf("%s problems on %v, want %v", kind, got[kind], ports)
		}
	}
	for kind := range got {
		if _, ok := want[kind]; !ok {
			t.Errorf("unexpected %s problems: %v", kind, got[kind])
		}
	}
	for _, p := range rep.Problems {
		if p.Kind == ProblemStale && p.Port == "eth0" && p.MAC != macG4 {
			t.Errorf("stale entry on the uplink is %s, want g4's %s", p.MAC, macG4)
		}
		if p.Kind == ProblemNoEntry && p.Port == "vnet5" && !strings.Contains(p.Text, "its static entry is on eth0") {
			t.Errorf("missing entry of g5 does not say where it went: %q", p.Text)
		}
	}
	// One link dump and one FDB dump for the bridge, whatever the guests.
	if k.Count("Links") != 1 || k.Count("BridgeEntries") != 1 {
		t.Errorf("status took %d link dumps and %d FDB dumps, want 1 and 1", k.Count("Links"), k.Count("BridgeEntries"))
	}
	if k.Writes() != 0 {
		t.Errorf("status wrote to the kernel %d times", k.Writes())
	}

	if len(rep.Bridges) != 1 {
		t.Fatalf("%d bridges reported, want 1", len(rep.Bridges))
	}
	br := rep.Bridges[0]
	kinds := map[string]string{}
	for _, p := range br.Ports {
		kinds[p.Name] = p.Kind
		if p.Name == "vnet3" && (p.Managed || !strings.Contains(p.Reason, "opted out")) {
			t.Errorf("vnet3: managed %v, reason %q; want unmanaged, opted out", p.Managed, p.Reason)
		}
		if p.Name == "vnet1" && (!p.Managed || p.Guest != "g1" || p.NIC != "net0") {
			t.Errorf("vnet1: %+v, want g1 net0 managed", p)
		}
	}
	wantKinds := map[string]string{"eth0": manage.KindUplink, "vnet1": manage.KindGuest, "vnet2": manage.KindGuest, "vnet3": manage.KindGuest,
		"vnet5": manage.KindGuest, "vnet8": manage.KindOther, "vnet9": manage.KindOther}
	for name, kind := range wantKinds {
		if kinds[name] != kind {
			t.Errorf("port %s is %q, want %q", name, kinds[name], kind)
		}
	}
	states := map[string]string{}
	for _, e := range br.Entries {
		states[e.MAC+" "+e.Port] = e.State
	}
	wantStates := map[string]string{
		macG1 + " vnet1": manage.EntryOK, macG5 + " eth0": manage.EntryRoamed, macO8 + " vnet8": manage.EntryUnknown,
		macO9 + " vnet9": manage.EntryStale, macG4 + " eth0": manage.EntryStale, macLAN + " eth0": manage.EntryUnknown,
	}
	if len(states) != len(wantStates) {
		t.Errorf("static entries %v, want %v (the bridge's local entry is not static)", states, wantStates)
	}
	for e, s := range wantStates {
		if states[e] != s {
			t.Errorf("entry %s is %q, want %q", e, states[e], s)
		}
	}

	var table bytes.Buffer
	rep.Format(&table)
	for _, want := range []string{"bridge br0 (managed: bridges): vlan_filtering off", "problems (5):",
		"guest port vnet2 (g2 net0) still has learning on flood on"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(raw, &back); err != nil || len(back.Problems) != 5 || back.Bridges[0].Ports[0].Name != "eth0" {
		t.Errorf("JSON does not round-trip (%v): %s", err, raw)
	}
}

func TestStatusIncompleteLiveXMLCallsNoTapStale(t *testing.T) {
	k, running, defined := world(t)
	st := state(t, k, cfgBr0, running, defined)
	st.RunningComplete = false
	rep, err := Status(st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := problemKinds(rep)[ProblemStale]; !slices.Equal(got, []string{"eth0"}) {
		t.Errorf("stale entries on %v; with an unreadable live XML only the uplink's defined-guest entry may be stale", got)
	}
}

// A bridge whose guest ports are all managed: the uplink's promiscuity is
// explained after the kernel's rule.
func TestStatusUplinkPromiscuity(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(k *kerneltest.Kernel)
		problem string // "" when no problem is expected
		count   int    // problems expected when problem is set (default 1)
		note    string
		reason  string // eth0's PromiscReason
	}{
		{name: "vlan filtering unsupported", setup: func(k *kerneltest.Kernel) { k.Device("br0").VlanCapable = false },
			note: "this kernel has no bridge VLAN filtering", reason: PromiscKernel},
		{name: "vlan filtering off", problem: "vlan_filtering is off on br0", reason: PromiscVlanOff},
		{name: "guest port learning", setup: func(k *kerneltest.Kernel) { k.Device("vnet1").Flags = model.Flags{Learning: true} },
			problem: "guest port vnet1 (g1 net0) still has learning on", reason: PromiscGuestsLearning},
		{name: "second learning port", setup: func(k *kerneltest.Kernel) {
			k.Device("br0").VlanFiltering = true
			k.Add(kerneltest.Uplink("eth1", "br0"))
		}, problem: "more than one port learns or floods (eth0, eth1)", count: 2, reason: PromiscPortsLearning},
		{name: "bridge promiscuous", setup: func(k *kerneltest.Kernel) {
			k.Device("br0").VlanFiltering = true
			k.Device("br0").PromiscFlag = true
		}, problem: "bridge br0 itself is in promiscuous mode", reason: PromiscBridge},
		{name: "driver", setup: func(k *kerneltest.Kernel) { k.Device("br0").VlanFiltering = true },
			problem: "driver cannot filter unicast", reason: PromiscDevice},
		{name: "cleared", setup: func(k *kerneltest.Kernel) {
			k.Device("br0").VlanFiltering = true
			k.Device("eth0").Promiscuity = 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := kerneltest.New()
			k.Add(kerneltest.Bridge("br0"))
			k.Add(kerneltest.Uplink("eth0", "br0"))
			k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Managed))
			k.AddStatic(macG1, "vnet1")
			if tc.setup != nil {
				tc.setup(k)
			}
			g1 := domain(t, "g1", nil, "bridge:br0:vnet1:"+macG1)
			rep, err := Status(state(t, k, cfgBr0, []*guest.Guest{g1}, nil), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var problems []string
			for _, p := range rep.Problems {
				problems = append(problems, p.Text)
			}
			if tc.count == 0 {
				tc.count = 1
			}
			switch {
			case tc.problem == "" && len(problems) > 0:
				t.Errorf("problems %q, want none", problems)
			case tc.reason == PromiscGuestsLearning && (len(problems) != 1 || !strings.Contains(problems[0], tc.problem)):
				t.Errorf("problems %q, want one saying %q", problems, tc.problem)
			case tc.reason != PromiscGuestsLearning && tc.problem != "" && (len(problems) != tc.count || rep.Problems[0].Kind != ProblemPromisc || !strings.Contains(problems[0], tc.problem)):
				t.Errorf("problems %q, want %d %s saying %q", problems, tc.count, ProblemPromisc, tc.problem)
			}
			i := slices.IndexFunc(rep.Bridges[0].Ports, func(p PortReport) bool { return p.Name == "eth0" })
			if got := rep.Bridges[0].Ports[i].PromiscReason; got != tc.reason {
				t.Errorf("eth0's promisc_reason %q, want %q", got, tc.reason)
			}
			if tc.note != "" && !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, tc.note) }) {
				t.Errorf("notes %q lack %q", rep.Notes, tc.note)
			}
		})
	}
}

// TestLockedPortsInStatusAndCleanUp: a locked port shows its lock in the
// LOCKED column, not in a port-flags problem's text; and reconcile leaves
// an orphan tap that learns and floods as it is, locked or not, while
// giving a locked one with learning off its defaults back.
func TestLockedPortsInStatusAndCleanUp(t *testing.T) {
	k, running, defined := world(t)
	v2 := k.Device("vnet2")
	v2.LockCapable, v2.Flags.Locked = true, true
	rep, err := Status(state(t, k, cfgBr0, running, defined), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rep.Problems, func(p Problem) bool { return p.Kind == ProblemPortFlags })
	if want := "guest port vnet2 (g2 net0) still has learning on flood on: run reconcile"; i < 0 || rep.Problems[i].Text != want {
		t.Errorf("port-flags problems %+v, want one saying %q", rep.Problems, want)
	}
	for _, br := range rep.Bridges {
		for _, p := range br.Ports {
			if p.Name == "vnet2" && (p.Locked == nil || !*p.Locked) {
				t.Errorf("vnet2 reported with locked %v, want on", p.Locked)
			}
		}
	}

	k, running, defined = world(t)
	for i, was := range []model.Flags{{Learning: true, Flood: true, Locked: true}, {Locked: true}} {
		name := fmt.Sprintf("fdbto%d", i+1)
		p := k.Add(kerneltest.Tap(name, "br0", was))
		p.Carrier, p.LockCapable = false, true
		k.AddStatic(fmt.Sprintf("52:54:00:00:01:%02x", i+1), name)
	}
	res, err := manage.Reconcile(state(t, k, cfgBr0, running, defined), k, false)
	if err != nil {
		t.Fatal(err)
	}
	for tap, want := range map[string]model.Flags{
		"fdbto1": {Learning: true, Flood: true, Locked: true},
		"fdbto2": kerneltest.Learning,
	} {
		if got := k.Device(tap).Flags; got != want {
			var out bytes.Buffer
			FormatResult(&out, res)
			t.Errorf("orphan tap %s has %s after reconcile, want %s:\n%s", tap, got, want, out.String())
		}
	}
}

// TestStatusReportsUndeclaredMACs: on a managed guest port in report mode
// (learning on, flood off, locked, MAB), the locked entries are listed as
// the guest NIC's undeclared MACs, in the table and in --json, and are no
// problem; nor are the port's flags.
func TestStatusReportsUndeclaredMACs(t *testing.T) {
	k, running, defined := world(t)
	v1 := k.Device("vnet1")
	v1.LockCapable, v1.MabCapable, v1.Flags = true, true, model.Reporting
	const nested = "02:aa:00:00:00:01"
	k.Learn("vnet1", nested) // a nested guest's frame: the kernel locks its MAC
	k.AddEntry(model.Entry{MAC: "00:00:5e:00:01:0a", Port: "vnet1", State: 0x02, NTFlags: model.NTFMaster,
		FlagsExt: model.NTFExtLocked, Updated: 42 * time.Second})
	rep, err := Status(state(t, k, cfgBr0+"\n[bridge.br0]\nundeclared_macs = \"report\"", running, defined), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		if p.Port == "vnet1" {
			t.Errorf("problem on vnet1: %s", p.Text)
		}
	}
	i := slices.IndexFunc(rep.Bridges[0].Ports, func(p PortReport) bool { return p.Name == "vnet1" })
	want := []UndeclaredMAC{{MAC: "00:00:5e:00:01:0a", LastSeen: 42}, {MAC: nested}}
	if got := rep.Bridges[0].Ports[i].Undeclared; !slices.Equal(got, want) {
		t.Errorf("vnet1's undeclared MACs %+v, want %+v", got, want)
	}
	var out bytes.Buffer
	rep.Format(&out)
	for _, w := range []string{"vnet1  guest   tap     on        off    on+mab  1        g1 net0",
		"undeclared MACs (2)", "00:00:5e:00:01:0a  vnet1  -     g1 net0  42s ago", nested + "  vnet1  -     g1 net0  -"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("status lacks %q:\n%s", w, out.String())
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"undeclared_macs":[{"mac":"00:00:5e:00:01:0a","last_seen_seconds":42},{"mac":"`+nested+`"}]`) {
		t.Errorf("--json lacks vnet1's undeclared MACs:\n%s", js)
	}
}

// TestStatusShowsFollowedMACs: the MACs a guest NIC follows are listed as
// such, in the table and in --json, with their static entries ok (not
// unknown on the guest's port), and a NIC past follow_max is said to be.
func TestStatusShowsFollowedMACs(t *testing.T) {
	k, running, defined := world(t)
	v1 := k.Device("vnet1")
	v1.LockCapable, v1.MabCapable, v1.Flags = true, true, model.Flags{Locked: true}
	const nested = "02:aa:00:00:00:01"
	k.AddStatic(nested, "vnet1")
	running[0].SetFollowed(macG1, []string{nested}, true)
	rep, err := Status(state(t, k, cfgBr0+"\n[bridge.br0]\nundeclared_macs = \"follow\"", running, defined), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		if p.Port == "vnet1" || p.MAC == nested {
			t.Errorf("problem: %s", p.Text)
		}
	}
	for _, e := range rep.Bridges[0].Entries {
		if e.MAC == nested && e.State != manage.EntryOK {
			t.Errorf("the followed MAC's entry is %s, want ok", e.State)
		}
	}
	var out bytes.Buffer
	rep.Format(&out)
	for _, w := range []string{"followed MACs (1)", nested + "  vnet1  g1 net0", "g1 net0 on vnet1 sent from more MACs than follow_max"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("status lacks %q:\n%s", w, out.String())
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"followed_macs":["`+nested+`"],"follow_max_reached":true`) {
		t.Errorf("--json lacks vnet1's followed MACs:\n%s", js)
	}
}

// TestReconcileRestoresOrphanReportingPort: a tap a report-mode guest left
// behind (learning on, flood off, locked, MAB, its locked entries) is
// given the defaults back by reconcile's clean-up, MAB off included, which
// takes its locked entries with it.
func TestReconcileRestoresOrphanReportingPort(t *testing.T) {
	k, running, defined := world(t)
	p := k.Add(kerneltest.Tap("fdbto1", "br0", model.Reporting))
	p.Carrier, p.LockCapable, p.MabCapable = false, true, true
	k.AddStatic("52:54:00:00:01:01", "fdbto1")
	k.Learn("fdbto1", "02:aa:00:00:00:02")
	res, err := manage.Reconcile(state(t, k, cfgBr0, running, defined), k, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Device("fdbto1").Flags; got != kerneltest.Learning {
		var out bytes.Buffer
		FormatResult(&out, res)
		t.Errorf("orphan tap fdbto1 has %s after reconcile, want %s:\n%s", got.WordsMab(true, true), kerneltest.Learning, out.String())
	}
	for _, e := range k.AllEntries() {
		if e.Port == "fdbto1" {
			t.Errorf("entry %s left on the orphan tap", e)
		}
	}
}
