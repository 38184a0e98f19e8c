//go:build vm

package vm

import (
	"fmt"
	"testing"
)

// TestPromiscuity checks the claim the whole product rests on: once every
// guest port of a vlan_filtering bridge has learning and flood off, the
// kernel takes promiscuous mode off the one port that still learns (the
// uplink), and puts it back as soon as a second port learns again.
//
// The uplink is a bond over a veth: veth has no IFF_UNICAST_FLT, so the
// kernel never clears its promiscuity, but a bond has it. The bridge starts
// with vlan_filtering 0 and the configuration asks the hook to enable it.
func TestPromiscuity(t *testing.T) {
	n := newNS(t, "promisc")
	n.ip("link add br0 type bridge vlan_filtering 0")
	n.ip("link add fdbtveth0 type veth peer name fdbtveth1")
	n.ip("link add bond0 type bond mode active-backup")
	n.ip("link set dev fdbtveth0 master bond0")
	n.ip("link set dev bond0 master br0")
	for _, d := range []string{"fdbtveth0", "fdbtveth1", "bond0", "br0"} {
		n.ip("link set dev " + d + " up")
	}
	const guests = 4
	doms := make([]domain, guests)
	for i := range doms {
		tap := fmt.Sprintf("fdbttap%d", i)
		n.addTap(tap, "br0")
		doms[i] = domain{
			Name: fmt.Sprintf("fdbt-g%d", i),
			UUID: fmt.Sprintf("5d4c1b0e-0000-4000-8000-00000000000%d", i),
			ID:   10 + i,
			NICs: []nic{{MAC: fmt.Sprintf("52:54:00:fd:b0:%02x", i), Bridge: "br0", Tap: tap}},
		}
		if l, f := n.portFlags(tap); !l || !f {
			t.Fatalf("%s starts with learning=%v flood=%v, want both on", tap, l, f)
		}
	}
	cfg := writeConfig(t, `bridges = ["br0"]
on_error = "fail"

[bridge.br0]
vlan_filtering = "enable"
`)

	if n.vlanFiltering("br0") {
		t.Fatal("br0 has vlan_filtering 1 before the hook")
	}
	before := n.promiscuity("bond0")
	if before != 1 {
		t.Fatalf("bond0 promiscuity before the hook = %d, want 1 (a bridge port)", before)
	}

	for i, d := range doms {
		n.qemuHookOK(cfg, d, "start", "begin")
		if i == 0 && !n.vlanFiltering("br0") {
			t.Fatal(`br0 vlan_filtering is 0 after the first guest started; the config says vlan_filtering = "enable"`)
		}
		if i < guests-1 {
			// vlan_filtering is on, but the uplink and at least one guest
			// port still learn: the kernel must keep the uplink promiscuous.
			if p := n.promiscuity("bond0"); p != 1 {
				t.Fatalf("bond0 promiscuity after %d of %d guests = %d, want 1", i+1, guests, p)
			}
		}
	}

	if !n.vlanFiltering("br0") {
		t.Fatal(`br0 vlan_filtering is 0 after the hook; the config says vlan_filtering = "enable"`)
	}
	for _, d := range doms {
		tap, mac := d.NICs[0].Tap, d.NICs[0].MAC
		if l, f := n.portFlags(tap); l || f {
			t.Errorf("%s after the hook: learning=%v flood=%v, want both off", tap, l, f)
		}
		want := fdbEntry{MAC: mac, Dev: tap, Master: "br0", Flags: "static"}
		if !hasEntry(masterEntries(n.fdbBoth(mac), "br0"), want) {
			t.Errorf("no %v after the hook; entries: %v", want, n.fdbBoth(mac))
		}
	}
	after := n.promiscuity("bond0")
	if after != 0 {
		t.Errorf("bond0 promiscuity after the hook = %d, want 0", after)
	}
	// With the uplink no longer promiscuous, the bridge writes its static
	// entries into the uplink's unicast filter.
	for _, d := range doms {
		mac := d.NICs[0].MAC
		want := fdbEntry{MAC: mac, Dev: "bond0", Flags: "permanent self"}
		if es := n.fdbBoth(mac); after == 0 && !hasEntry(es, want) {
			t.Errorf("%s is not in bond0's unicast filter; entries: %v", mac, es)
		}
	}

	relearnTap := doms[2].NICs[0].Tap
	n.bridge("link set dev " + relearnTap + " learning on")
	if l, _ := n.portFlags(relearnTap); !l {
		t.Fatalf("%s learning still off after 'bridge link set ... learning on'", relearnTap)
	}
	relearn := n.promiscuity("bond0")
	if relearn != 1 {
		t.Errorf("bond0 promiscuity after %s learns again = %d, want 1", relearnTap, relearn)
	}
	t.Logf("promiscuity before=%d after=%d relearn=%d", before, after, relearn)
}

func hasEntry(es []fdbEntry, want fdbEntry) bool {
	for _, e := range es {
		if e == want {
			return true
		}
	}
	return false
}
