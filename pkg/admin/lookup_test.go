package admin

import (
	"slices"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/manage"
)

// TestCleanStaleLookingUp: with LookUp, cleaning deletes exactly the
// stale entries the dump finds (g4's on the uplink, vnet9's) and gives
// vnet9 its defaults back, reading the unowned taps' entries and the
// defined guests' MACs instead of dumping the FDB; only the entries no
// guest could own are no longer listed as left alone.
func TestCleanStaleLookingUp(t *testing.T) {
	k, running, defined := world(t)
	st := state(t, k, cfgBr0, running, defined)
	st.Kernel.LookUp()
	res, err := manage.CleanStale(st, k, false)
	if err != nil {
		t.Fatal(err)
	}
	var deleted, left []string
	for _, e := range res.Entries {
		switch e.Action {
		case "deleted":
			deleted = append(deleted, e.Step.Entry.MAC+" "+e.Step.Entry.Port)
		case "left alone":
			left = append(left, e.Step.Entry.MAC+" "+e.Step.Entry.Port)
		}
	}
	slices.Sort(deleted)
	if want := []string{macG4 + " eth0", macO9 + " vnet9"}; !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	if want := []string{macO8 + " vnet8"}; !slices.Equal(left, want) {
		t.Errorf("left alone %v, want %v (the LAN host's entry is not read)", left, want)
	}
	for mac, want := range map[string][]string{macG4: nil, macO9: nil, macO8: {"vnet8"}, macLAN: {"eth0"}, macG1: {"vnet1"}} {
		if got := k.Static(mac); !slices.Equal(got, want) {
			t.Errorf("static entries for %s on %v, want %v", mac, got, want)
		}
	}
	if f := k.Device("vnet9").Flags; f != kerneltest.Learning {
		t.Errorf("vnet9 has %s, want its defaults back", f)
	}
	if n := k.Count("BridgeEntries"); n != 0 {
		t.Errorf("%d FDB dumps, want none", n)
	}
}
