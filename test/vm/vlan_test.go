//go:build vm

package vm

import (
	"sort"
	"strings"
	"testing"
)

// TestPerVLANEntries checks that on a vlan_filtering bridge the guest's
// static entry exists for every VLAN its port carries when the hook runs
// (pvid 1 untagged and tagged VLAN 10) and for no VLAN (VLAN 0), and that
// nothing is left once the tap is gone and "stopped end" has run.
func TestPerVLANEntries(t *testing.T) {
	n := newNS(t, "vlan")
	n.ip("link add br0 type bridge vlan_filtering 1")
	n.ip("link set dev br0 up")
	const tap, mac = "fdbttap0", "52:54:00:fd:b1:01"
	n.addTap(tap, "br0")
	n.bridge("vlan add dev " + tap + " vid 1 pvid untagged master")
	n.bridge("vlan add dev " + tap + " vid 10 master")

	// The port's VLANs, read through netlink and through bridge vlan.
	vl, err := n.h.BridgeVlanList()
	if err != nil {
		t.Fatalf("netlink: bridge vlan list: %v", err)
	}
	var vids []int
	for _, v := range vl[int32(n.link(tap).Attrs().Index)] {
		vids = append(vids, int(v.Vid))
		if v.Vid == 1 && (!v.PortVID() || !v.EngressUntag()) {
			t.Fatalf("VLAN 1 on %s is not pvid untagged: flags %#x", tap, v.Flags)
		}
	}
	sort.Ints(vids)
	if len(vids) != 2 || vids[0] != 1 || vids[1] != 10 {
		t.Fatalf("%s VLANs (netlink) = %v, want [1 10]", tap, vids)
	}
	if out := n.bridge("vlan show dev " + tap); !strings.Contains(out, "1 PVID Egress Untagged") || !strings.Contains(out, " 10") {
		t.Fatalf("bridge vlan show dev %s:\n%s\nwant VLAN 1 PVID Egress Untagged and VLAN 10", tap, out)
	}

	cfg := writeConfig(t, `bridges = ["br0"]
`)
	dom := domain{
		Name: "fdbt-vlan",
		UUID: "5d4c1b0e-0000-4000-8000-0000000000a1",
		ID:   21,
		NICs: []nic{{MAC: mac, Bridge: "br0", Tap: tap}},
	}
	n.qemuHookOK(cfg, dom, "start", "begin")

	got := masterEntries(n.fdbBoth(mac), "br0")
	for _, vid := range []int{0, 1, 10} {
		want := fdbEntry{MAC: mac, Dev: tap, Vlan: vid, Master: "br0", Flags: "static"}
		if !hasEntry(got, want) {
			t.Errorf("missing %v; bridge entries for %s: %v", want, mac, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("bridge entries for %s = %v, want exactly VLAN 0, 1 and 10 on %s", mac, got, tap)
	}
	if l, f := n.portFlags(tap); l || f {
		t.Errorf("%s after the hook: learning=%v flood=%v, want both off", tap, l, f)
	}

	// Stop as libvirt does it: QEMU exits, the tap is deleted, then the
	// hook runs with XML that no longer names the tap.
	n.ip("link del dev " + tap)
	stopped := dom
	stopped.ID = 0
	stopped.NICs = []nic{{MAC: mac, Bridge: "br0"}}
	n.qemuHookOK(cfg, stopped, "stopped", "end")
	if es := n.fdbBoth(mac); len(es) != 0 {
		t.Errorf("entries for %s left after stopped end: %v", mac, es)
	}
	if out := n.bridge("fdb show"); strings.Contains(out, mac) {
		t.Errorf("bridge fdb show still lists %s:\n%s", mac, out)
	}
}
