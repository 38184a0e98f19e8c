package admin

import (
	"bytes"
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

func TestReconcileFixesWhatStatusFlags(t *testing.T) {
	k, running, defined := world(t)
	res, err := manage.Reconcile(state(t, k, cfgBr0, running, defined), k, false)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	FormatResult(&out, res)
	t.Log("\n" + out.String())
	if res.Failed != 0 {
		t.Errorf("%d guests failed", res.Failed)
	}
	for mac, want := range map[string][]string{
		macG1: {"vnet1"}, macG2: {"vnet2"}, macG3: nil, macG5: {"vnet5"},
		macG4: nil, macO9: nil, // stale: deleted
		macO8: {"vnet8"}, macLAN: {"eth0"}, // unknown: left alone
	} {
		if got := k.Static(mac); !slices.Equal(got, want) {
			t.Errorf("static entries for %s on %v, want %v", mac, got, want)
		}
	}
	for name, want := range map[string]model.Flags{
		"vnet1": kerneltest.Managed, "vnet2": kerneltest.Managed, "vnet5": kerneltest.Managed,
		"vnet3": kerneltest.Learning, // opted out: untouched
		"vnet9": kerneltest.Learning, // no guest owns it and its stale entry is gone: back to defaults
		"vnet8": kerneltest.Managed,  // its entry was left alone, so are its flags
		"eth0":  kerneltest.Learning,
	} {
		if got := k.Device(name).Flags; got != want {
			t.Errorf("%s has %s, want %s", name, got, want)
		}
	}
	if k.Count("Links") != 1 || k.Count("BridgeEntries") != 1 {
		t.Errorf("reconcile took %d link dumps and %d FDB dumps, want 1 and 1", k.Count("Links"), k.Count("BridgeEntries"))
	}
	// After reconcile, status finds nothing left to do.
	rep, err := Status(state(t, k, cfgBr0, running, defined), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// All but the uplink's promiscuity, which needs vlan_filtering.
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemPromisc || !strings.Contains(rep.Problems[0].Text, "vlan_filtering is off") {
		t.Errorf("status after reconcile: %+v", rep.Problems)
	}
	// A second reconcile changes nothing.
	writes := k.Writes()
	res, err = manage.Reconcile(state(t, k, cfgBr0, running, defined), k, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range res.Guests {
		if len(g.Changes) > 0 {
			t.Errorf("second reconcile: guest %s changes %v", g.Guest, g.Changes)
		}
	}
	if slices.ContainsFunc(res.Entries, func(e manage.EntryResult) bool { return e.Action != "left alone" }) {
		t.Errorf("second reconcile cleaned again: %+v", res.Entries)
	}
	// Re-adding the same entries (replace) is what start does on a rerun.
	if k.Writes()-writes > 3 {
		t.Errorf("second reconcile wrote %d times; want only the replaces of the 3 managed entries", k.Writes()-writes)
	}
}

func TestReconcileDryRunChangesNothing(t *testing.T) {
	k, running, defined := world(t)
	before := k.State()
	res, err := manage.Reconcile(state(t, k, cfgBr0, running, defined), k, true)
	if err != nil {
		t.Fatal(err)
	}
	if k.Writes() != 0 || k.State() != before {
		t.Errorf("dry run wrote %d times", k.Writes())
	}
	var out bytes.Buffer
	FormatResult(&out, res)
	for _, want := range []string{"dry run: nothing is changed", "would delete stale " + macO9, "guest g2: ok: net0 on vnet2; would change:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry-run report lacks %q:\n%s", want, out.String())
		}
	}
}

// Two running guests with one MAC on one bridge: the first gets it, the
// second is refused as a start would refuse it, and nothing of its plan is
// applied. The snapshot must see the first guest's entry without a dump.
func TestReconcileDuplicateMACAcrossGuests(t *testing.T) {
	for _, dry := range []bool{false, true} {
		k := kerneltest.New()
		k.Add(kerneltest.Bridge("br0"))
		k.Add(kerneltest.Uplink("eth0", "br0"))
		k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
		k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Learning))
		running := []*guest.Guest{
			domain(t, "a", nil, "bridge:br0:vnet1:"+macG1),
			domain(t, "b", nil, "bridge:br0:vnet2:"+macG1),
		}
		res, err := manage.Reconcile(state(t, k, cfgBr0, running, nil), k, dry)
		if err != nil {
			t.Fatal(err)
		}
		if res.Failed != 1 || res.Guests[1].Err == nil || !strings.Contains(res.Guests[1].Err.Error(), "duplicate MAC") {
			t.Fatalf("dry %v: failed %d, guest b: %v; want b refused for a duplicate MAC", dry, res.Failed, res.Guests[1].Err)
		}
		if dry {
			continue
		}
		if got := k.Static(macG1); !slices.Equal(got, []string{"vnet1"}) {
			t.Errorf("entries for the shared MAC on %v, want only guest a's vnet1", got)
		}
		if k.Device("vnet2").Flags != kerneltest.Learning {
			t.Errorf("refused guest b's port changed to %s", k.Device("vnet2").Flags)
		}
	}
}

// Hundreds of guests and thousands of entries: one link dump and one FDB
// dump per bridge, whatever the number of guests.
func TestReconcileScales(t *testing.T) {
	k := kerneltest.New()
	k.Add(kerneltest.Bridge("br0"))
	k.Add(kerneltest.Bridge("br1"))
	k.Add(kerneltest.Uplink("eth0", "br0"))
	k.Add(kerneltest.Uplink("eth1", "br1"))
	var running []*guest.Guest
	for i := range 400 {
		mac0, mac1 := fmt.Sprintf("52:54:00:01:%02x:%02x", i>>8, i&255), fmt.Sprintf("52:54:00:02:%02x:%02x", i>>8, i&255)
		t0, t1 := fmt.Sprintf("vnet%d", 2*i), fmt.Sprintf("vnet%d", 2*i+1)
		k.Add(kerneltest.Tap(t0, "br0", kerneltest.Learning))
		k.Add(kerneltest.Tap(t1, "br1", kerneltest.Learning))
		if i%2 == 0 {
			k.AddStatic(mac0, t0) // half of them managed already
		}
		running = append(running, domain(t, fmt.Sprintf("g%03d", i), nil, "bridge:br0:"+t0+":"+mac0, "bridge:br1:"+t1+":"+mac1))
	}
	for i := range 4000 { // the LAN behind the uplinks
		k.AddEntry(model.Entry{MAC: fmt.Sprintf("00:16:3e:%02x:%02x:%02x", i>>16, (i>>8)&255, i&255),
			PortIndex: k.Device("eth0").Index, State: 0x02, NTFlags: model.NTFMaster})
	}
	st := state(t, k, `bridges = ["br0", "br1"]`, running, nil)
	start := time.Now()
	res, err := manage.Reconcile(st, k, false)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("reconcile of %d guests, %d entries: %s, %d link dumps, %d FDB dumps, %d writes", len(running), len(k.AllEntries()), took, k.Count("Links"), k.Count("BridgeEntries"), k.Writes())
	if res.Failed != 0 {
		t.Errorf("%d guests failed", res.Failed)
	}
	if k.Count("Links") != 1 || k.Count("BridgeEntries") != 2 {
		t.Errorf("%d link dumps, %d FDB dumps; want 1 and 2 (one per bridge)", k.Count("Links"), k.Count("BridgeEntries"))
	}
	if got := k.Device("vnet799").Flags; got != kerneltest.Managed {
		t.Errorf("last guest's port has %s", got)
	}
	if took > 5*time.Second {
		t.Errorf("reconcile took %s", took)
	}
}

func TestReconcileEnablesConfiguredVlanFiltering(t *testing.T) {
	k := kerneltest.New()
	k.Add(kerneltest.Bridge("br0"))
	k.Add(kerneltest.Uplink("eth0", "br0"))
	k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Managed))
	k.AddStatic(macG1, "vnet1")
	running := []*guest.Guest{domain(t, "g1", nil, "bridge:br0:vnet1:"+macG1)}
	cfg := cfgBr0 + "\n[bridge.br0]\nvlan_filtering = \"enable\"\n"
	rep, err := Status(state(t, k, cfg, running, nil), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kinds := problemKinds(rep); len(kinds[ProblemVlan]) != 1 {
		t.Errorf("status problems %v, want %s", kinds, ProblemVlan)
	}
	if _, err := manage.Reconcile(state(t, k, cfg, running, nil), k, false); err != nil {
		t.Fatal(err)
	}
	if !k.Device("br0").VlanFiltering {
		t.Error("reconcile left vlan_filtering off")
	}
}

// TestReconcileLockedPorts: reconcile decides on a port's locked flag and
// the kernel's lock and sticky support as a guest start does: a port
// someone else locked stays locked, lock_ports locks where the kernel can
// and refuses where it cannot.
func TestReconcileLockedPorts(t *testing.T) {
	const cfgLock = "bridges = [\"br0\"]\n[bridge.br0]\nlock_ports = true\nsticky = true\n"
	for _, tc := range []struct {
		name, cfg   string
		was         model.Flags
		lockCapable bool
		want        model.Flags
		refused     string
	}{
		{name: "locked by someone else", cfg: cfgBr0, was: model.Flags{Learning: true, Flood: true, Locked: true},
			lockCapable: true, want: model.Flags{Locked: true}},
		{name: "lock_ports", cfg: cfgLock, was: kerneltest.Learning, lockCapable: true, want: model.Flags{Locked: true}},
		{name: "lock_ports, kernel without locked ports", cfg: cfgLock, was: kerneltest.Learning, want: kerneltest.Learning,
			refused: "this kernel has no locked bridge ports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := kerneltest.New()
			br := k.Add(kerneltest.Bridge("br0"))
			br.StickyCapable = true
			k.Add(kerneltest.Uplink("eth0", "br0"))
			p := k.Add(kerneltest.Tap("vnet1", "br0", tc.was))
			p.LockCapable = tc.lockCapable
			running := []*guest.Guest{domain(t, "g1", nil, "bridge:br0:vnet1:"+macG1)}
			res, err := manage.Reconcile(state(t, k, tc.cfg, running, running), k, false)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			FormatResult(&out, res)
			t.Log("\n" + out.String())
			switch {
			case tc.refused == "" && res.Failed != 0:
				t.Errorf("guest failed: %v", res.Guests[0].Err)
			case tc.refused != "" && (res.Failed != 1 || !strings.Contains(res.Guests[0].Err.Error(), tc.refused)):
				t.Errorf("failed %d, guest %v; want it refused: %s", res.Failed, res.Guests[0].Err, tc.refused)
			}
			if got := k.Device("vnet1").Flags; got != tc.want {
				t.Errorf("vnet1 has %s, want %s", got, tc.want)
			}
		})
	}
}
